"""Assembles the root Query and Mutation, the extensions and the error policy."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from functools import partial

import strawberry
from graphql import GraphQLError
from pymongo.errors import ConnectionFailure, PyMongoError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.config import StrawberryConfig

from resolvers.errors import Denied
from schema.account import AccountMutations
from schema.admin import AdminMutations, AdminQueries
from schema.errors import EXCEPTION_HANDLERS
from schema.recovery import RecoveryMutations
from schema.sessions import SessionMutations, SessionQueries
from schema.templates import TemplateMutations, TemplateQueries

logger = logging.getLogger("gateway.errors")

DENIAL_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable. Please try again in a few seconds."


def database_unavailable(error: BaseException | None) -> bool:
    """The database could not be reached in time (down, failing over, overloaded): worth a retry, not a bug."""
    return isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError) and error.timeout)


@strawberry.type
class Query(SessionQueries, AdminQueries, TemplateQueries):
    pass


@strawberry.type
class Mutation(AccountMutations, SessionMutations, RecoveryMutations, AdminMutations, TemplateMutations):
    pass


class ErrorPolicy(MaskErrors):
    """Validation errors and denials pass; everything else is masked and logged with an id."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            original = error.original_error
            if isinstance(original, Denied):
                processed.append(GraphQLError(original.message, nodes=error.nodes, path=error.path,
                                              extensions={"code": original.code}))
            elif error.path is None or original is None or (error.extensions or {}).get("code") in DENIAL_CODES:
                # No path: a request-level error (syntax, validation, variable coercion) that describes the input.
                processed.append(error)
            elif database_unavailable(original):
                logger.warning("database unavailable at %s: %s", error.path, type(original).__name__)
                processed.append(GraphQLError(UNAVAILABLE_MESSAGE, nodes=error.nodes, path=error.path,
                                              extensions={"code": "SERVICE_UNAVAILABLE"}))
            else:
                error_id = uuid.uuid4().hex[:16]
                logger.error("unexpected error %s at %s", error_id, error.path, exc_info=original)
                processed.append(GraphQLError(self.error_message, nodes=error.nodes, path=error.path,
                                              extensions={"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}))
        return processed


SUBMITTED_VALUE = re.compile(r"got invalid value .*? at", re.DOTALL)


class GatewaySchema(strawberry.Schema):
    """Logs refused documents by their message only, cut short.

    Strawberry's default logs ``str(error)``, which prints the offending source lines: most of a
    2000-token document would land in the log, at ERROR level, for every malformed request.
    Errors raised while resolving are not logged here: ErrorPolicy logs the unexpected ones with their id.
    """

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        for error in errors:
            if error.original_error is None or error.path is None:
                # A variable of the wrong type is echoed in the message: keep its place, drop its value.
                message = SUBMITTED_VALUE.sub("got an invalid value at", error.message).split(";")[0].split(": ")[0]
                logger.info("graphql request refused: %.200s", message)


def build_schema(*, production: bool = False, max_depth: int = 12, max_aliases: int = 15,
                 max_tokens: int = 2000, extra_extensions: Sequence = ()) -> strawberry.Schema:
    """``extra_extensions`` (e.g. the gateway's metrics) come last, so they see the errors as sent."""
    # Factories, not instances: Strawberry builds fresh extensions per request (the caches are module-level).
    # The limit rules are built once, so the validation cache (keyed by the rule classes) hits.
    limit_rules = [depth_validator(max_depth, None), alias_validator(max_aliases)]
    extensions = [
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(ParserCache, maxsize=512),
        partial(AddValidationRules, limit_rules),
        partial(ValidationCache, maxsize=512),
        ErrorPolicy,
    ]
    if production:
        extensions.append(DisableIntrospection)
    extensions.extend(extra_extensions)
    return GatewaySchema(
        query=Query, mutation=Mutation, extensions=extensions, exception_handlers=EXCEPTION_HANDLERS,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
