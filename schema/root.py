"""Assembles the root Query and Mutation, the extensions and the error policy."""

from __future__ import annotations

import logging
import uuid
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
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
            else:
                error_id = uuid.uuid4().hex[:16]
                logger.error("unexpected error %s at %s", error_id, error.path, exc_info=original)
                processed.append(GraphQLError(self.error_message, nodes=error.nodes, path=error.path,
                                              extensions={"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}))
        return processed


def build_schema(*, production: bool = False, max_depth: int = 12, max_aliases: int = 15,
                 max_tokens: int = 2000) -> strawberry.Schema:
    # Factories, not instances: Strawberry builds fresh extensions per request (the caches are module-level).
    extensions = [
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(ParserCache, maxsize=512),
        partial(QueryDepthLimiter, max_depth=max_depth),
        partial(MaxAliasesLimiter, max_alias_count=max_aliases),
        partial(ValidationCache, maxsize=512),
        ErrorPolicy,
    ]
    if production:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query, mutation=Mutation, extensions=extensions, exception_handlers=EXCEPTION_HANDLERS,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
