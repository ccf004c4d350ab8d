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
from strawberry.extensions import DisableIntrospection, MaskErrors, MaxTokensLimiter

from resolvers.errors import Denied
from schema.account import AccountMutations
from schema.account_settings import AccountSettingsMutations
from schema.admin import AdminMutations, AdminQueries
from schema.admins import AdminsMutations, AdminsQueries
from schema.api_keys import ApiKeyMutations, ApiKeyQueries
from schema.applications import ApplicationMutations, ApplicationQueries
from schema.audit import AuditQueries
from schema.email_sign_in import EmailSignInMutations
from schema.errors import EXCEPTION_HANDLERS
from schema.passkeys import PasskeyMutations
from schema.policies import PolicyMutations, PolicyQueries
from schema.privacy import PrivacyMutations
from schema.profile import ProfileMutations, ProfileQueries
from schema.recovery import RecoveryMutations
from schema.security import SecurityMutations
from schema.sessions import SessionMutations, SessionQueries
from schema.social import SocialMutations, SocialQueries
from schema.templates import TemplateMutations, TemplateQueries
from schema.validation import (
    MAX_VALIDATION_ERRORS,
    BoundedParserCache,
    DocumentLimits,
    DocumentValidation,
    DocumentValidator,
    MaxDocumentCharacters,
)

logger = logging.getLogger("gateway.errors")

DENIAL_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable. Please try again in a few seconds."


def database_unavailable(error: BaseException | None) -> bool:
    """The database could not be reached in time (down, failing over, overloaded): worth a retry, not a bug."""
    return isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError) and error.timeout)


@strawberry.type
class Query(
    SessionQueries,
    AdminQueries,
    TemplateQueries,
    PolicyQueries,
    ApplicationQueries,
    ProfileQueries,
    AdminsQueries,
    ApiKeyQueries,
    AuditQueries,
    SocialQueries,
):
    pass


@strawberry.type
class Mutation(
    AccountMutations,
    SessionMutations,
    RecoveryMutations,
    AdminMutations,
    TemplateMutations,
    SecurityMutations,
    PolicyMutations,
    ApplicationMutations,
    ProfileMutations,
    AdminsMutations,
    ApiKeyMutations,
    AccountSettingsMutations,
    PasskeyMutations,
    EmailSignInMutations,
    PrivacyMutations,
    SocialMutations,
):
    pass


SUGGESTION = "Did you mean"


class ErrorPolicy(MaskErrors):
    """Validation errors and denials pass; everything else is masked and logged with an id.

    With ``hide_suggestions`` (production) no message keeps a "Did you mean ...?" hint, which would
    name schema members the client did not know. graphql-core leaves them out already (validation and
    execution get ``hide_suggestions``); this is the backstop for any path that still adds one, and it
    logs a warning when it had to act.
    """

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        super().__init__()
        self.hide_suggestions = hide_suggestions

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = self._policy(errors)
        if self.hide_suggestions:
            document = self.execution_context.query or ""
            processed = [without_unwritten_names(without_suggestion(error), document) for error in processed]
        return processed

    def _policy(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            original = error.original_error
            if isinstance(original, Denied):
                processed.append(GraphQLError(original.message, nodes=error.nodes, path=error.path,
                                              extensions={**original.extensions, "code": original.code}))
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


def without_suggestion(error: GraphQLError) -> GraphQLError:
    if SUGGESTION not in error.message:
        return error
    logger.warning("a suggestion reached the error policy and was removed: %.100s", error.message.split(SUGGESTION)[0])
    return GraphQLError(error.message.split(SUGGESTION)[0].rstrip(), nodes=error.nodes, path=error.path,
                        original_error=error.original_error, extensions=error.extensions)


QUOTED_NAME = re.compile(r"'([$@A-Za-z_][\w.$@!\[\]]*)'")
HIDDEN_NAME = "'…'"


def without_unwritten_names(error: GraphQLError, document: str) -> GraphQLError:
    """In production, a request-level error names only what the client wrote itself.

    graphql-core's messages quote schema names the client never typed ("Cannot query field 'x' on
    type 'Customer'", "Field 'SessionCreateInput.password' of required type 'String!' was not
    provided"); with introspection off those are how a schema is mapped. Every quoted name that does
    not appear in the document is replaced by '…'. Errors raised while resolving (they have a path)
    are the gateway's own messages and pass as they are.
    """
    if error.path is not None:
        return error
    message = QUOTED_NAME.sub(lambda m: m.group(0) if m.group(1) in document else HIDDEN_NAME, error.message)
    if message == error.message:
        return error
    return GraphQLError(message, nodes=error.nodes, path=error.path, original_error=error.original_error,
                        extensions=error.extensions)


SUBMITTED_VALUE = re.compile(r"got invalid value .*? at", re.DOTALL)


class GatewaySchema(strawberry.Schema):
    """Logs refused documents by their message only, cut short; hides suggestions during execution.

    Strawberry's default logs ``str(error)``, which prints the offending source lines: most of a
    2000-token document would land in the log, at ERROR level, for every malformed request.
    Errors raised while resolving are not logged here: ErrorPolicy logs the unexpected ones with their id.

    ``hide_suggestions`` reaches graphql-core's ``execute`` (variable values are coerced there:
    ``{"input": {"identifer": ...}}`` would be answered "Did you mean 'identifier'?") through
    Strawberry's ``_get_custom_context_kwargs``, the keyword arguments it adds to that call
    (a private hook: tests/security/test_production.py pins it).
    """

    def __init__(self, *args, hide_suggestions: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def _get_custom_context_kwargs(self, operation_extensions=None, *, sync: bool = False) -> dict:
        return {**super()._get_custom_context_kwargs(operation_extensions, sync=sync),
                "hide_suggestions": self.hide_suggestions, "max_coercion_errors": MAX_VALIDATION_ERRORS}

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        for error in errors:
            if error.original_error is None or error.path is None:
                # A variable of the wrong type is echoed in the message: keep its place, drop its value.
                message = SUBMITTED_VALUE.sub("got an invalid value at", error.message).split(";")[0].split(": ")[0]
                logger.info("graphql request refused: %.200s", message)


def build_schema(*, production: bool = False, max_depth: int = 12, max_aliases: int = 15, max_directives: int = 50,
                 max_tokens: int = 2000, max_characters: int = 32_768,
                 extra_extensions: Sequence = ()) -> strawberry.Schema:
    """``extra_extensions`` (e.g. the gateway's metrics) come last, so they see the errors as sent.

    Production hides the schema: no introspection, and no "Did you mean ...?" in any message
    (validation, variable coercion, and ErrorPolicy as the backstop).
    """
    # Factories, not instances: Strawberry builds fresh extensions per request. The validator (and its
    # cache) is built once here; the parser cache is module-level (Strawberry's).
    validator = DocumentValidator(DocumentLimits(max_depth=max_depth, max_aliases=max_aliases,
                                                 max_directives=max_directives), hide_suggestions=production)
    extensions = [
        partial(MaxDocumentCharacters, max_characters),
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        BoundedParserCache,
        partial(DocumentValidation, validator),
        partial(ErrorPolicy, hide_suggestions=production),
    ]
    if production:
        extensions.append(DisableIntrospection)
    extensions.extend(extra_extensions)
    return GatewaySchema(query=Query, mutation=Mutation, extensions=extensions, exception_handlers=EXCEPTION_HANDLERS,
                         hide_suggestions=production)
