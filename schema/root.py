"""Assembles the root Query and Mutation, the extensions and the error policy."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial

import strawberry
from graphql import GraphQLError, parse
from graphql.validation import NoSchemaIntrospectionCustomRule
from pymongo.errors import ConnectionFailure, PyMongoError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

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
    CACHEABLE_CHARACTERS,
    MAX_VALIDATION_ERRORS,
    DocumentLimits,
    DocumentValidator,
    cached_parse,
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


MASKED_MESSAGE = "Unexpected error."

# ``observe(execution_context, seconds)``: called once per operation that ran (the gateway's metrics).
Observer = Callable[[ExecutionContext, float], None]


class Pipeline(SchemaExtension):
    """Everything the gateway adds to Strawberry's request, in one extension with two hooks.

    Strawberry wraps each hook of each extension in a context manager per request (a few µs each; a
    ``resolve`` hook adds a call to every field). Six extensions, a dozen hooks, cost a signed-in
    ``me`` about a tenth of its CPU; this one does their work:

    - **parse**: a document longer than ``max_characters`` is refused before anything parses it (the
      token limit does not bound a comment or a string: a 1 MiB comment is a handful of tokens, yet
      parsing it on the event loop takes about 0.3 s); the token limit (``max_tokens``) is set for
      graphql-core's parser; documents up to ``CACHEABLE_CHARACTERS`` come from the LRU parse cache
      (``cached_parse``), longer ones are parsed each time. Then the document is validated here (the ``DocumentValidator``: limits, then graphql-core's rules, cached
      by source text) with the request's rules, plus ``NoSchemaIntrospectionCustomRule`` in
      production. Setting ``pre_execution_errors`` tells Strawberry validation has run (it still
      checks the operation type before answering with them).
    - **operation** (after it): the error policy, then ``observe`` (the gateway's metrics), so that
      it sees the errors as sent.

    **Error policy**: validation errors and denials pass; everything else is masked and logged with an
    id. With ``hide_suggestions`` (production) no message keeps a "Did you mean ...?" hint, which would
    name schema members the client did not know. graphql-core leaves them out already (validation and
    execution get ``hide_suggestions``); this is the backstop for any path that still adds one, and it
    logs a warning when it had to act.
    """

    error_message = MASKED_MESSAGE

    def __init__(self, validator: DocumentValidator, *, max_characters: int, max_tokens: int,
                 hide_suggestions: bool = False, introspection: bool = True, observe: Observer | None = None) -> None:
        self.validator = validator
        self.max_characters = max_characters
        self.max_tokens = max_tokens
        self.hide_suggestions = hide_suggestions
        self.extra_rules = () if introspection else (NoSchemaIntrospectionCustomRule,)
        self.observe = observe

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result = context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)
        if self.observe is not None:
            self.observe(context, time.perf_counter() - started)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        if len(query) > self.max_characters:
            raise GraphQLError(f"The document is too long: at most {self.max_characters} characters.",
                               extensions={"code": "BAD_REQUEST"})
        context.parse_options["max_tokens"] = self.max_tokens
        if query:  # no query: Strawberry answers that itself
            parse_document = cached_parse if len(query) <= CACHEABLE_CHARACTERS else parse
            context.graphql_document = parse_document(query, **context.parse_options)
            context.pre_execution_errors = self.validator(context.schema._schema, context.graphql_document,
                                                          context.validation_rules + self.extra_rules, query)
        yield

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
    Errors raised while resolving are not logged here: the error policy (:class:`Pipeline`) logs the unexpected ones with their id.

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
                 observe: Observer | None = None) -> strawberry.Schema:
    """The schema with its one extension (:class:`Pipeline`). ``observe`` (e.g. the gateway's metrics)
    is called after the error policy, so it sees the errors as sent.

    Production hides the schema: no introspection, and no "Did you mean ...?" in any message
    (validation, variable coercion, and the error policy as the backstop).
    """
    # A factory, not an instance: Strawberry builds the extension afresh per request. The validator
    # (and its cache) is built once here; the parser cache is module-level (Strawberry's).
    validator = DocumentValidator(DocumentLimits(max_depth=max_depth, max_aliases=max_aliases,
                                                 max_directives=max_directives), hide_suggestions=production)
    pipeline = partial(Pipeline, validator, max_characters=max_characters, max_tokens=max_tokens,
                       hide_suggestions=production, introspection=not production, observe=observe)
    return GatewaySchema(query=Query, mutation=Mutation, extensions=[pipeline], exception_handlers=EXCEPTION_HANDLERS,
                         hide_suggestions=production)
