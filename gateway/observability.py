"""Observability: request ids, structured (JSON) logs without secrets, and Prometheus metrics.

- ``RequestIdMiddleware`` (pure ASGI, so contextvars reach the handlers and the deferred work they
  start) takes a safe ``X-Request-Id`` from the caller or makes one, keeps it in a contextvar for
  every log line written during the request, and echoes it back as a response header.
- ``configure_logging`` installs one handler on the root logger, JSON or text, that stamps each
  line with the request id and blanks secrets (session tokens, ``token=`` query values) whatever
  logger wrote them, uvicorn's access log included. The only exception is the development outbox,
  whose purpose is to log activation and reset links (it cannot run in production: SMTP is
  mandatory there).
- Metrics, served at ``/metrics`` in the Prometheus text format: GraphQL requests and latency by
  operation (the first root field, a bounded set), sign-in outcomes, HTTP responses by route,
  and the depth of the mail queue and its dead letters (read from the outbox at scrape time).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import re
import sys
import traceback
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway import pages

# -- request ids ---------------------------------------------------------------------------------

_request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def current_request_id() -> str | None:
    return _request_id.get()


def accepted_request_id(value: str | None) -> str:
    """The caller's request id when it is safe to log and echo (short, plain characters), else a new one."""
    if value and SAFE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


KNOWN_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/metrics", *pages.PATHS})

HTTP_RESPONSES = Counter("gateway_http_responses_total", "HTTP responses by route and status code.",
                         ["path", "status"])


_children: dict[tuple, Any] = {}


def labelled(metric, *labels):
    """``metric.labels(*labels)``, kept: prometheus_client checks the labels and takes a lock on every
    call. Every label set here is bounded (known paths, status codes, root fields, outcomes)."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*(str(label) for label in labels))
    return child


class RequestIdMiddleware:
    """Outermost middleware: one id per request, in the log context and the X-Request-Id response header."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accepted_request_id(incoming)
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                labelled(HTTP_RESPONSES, path, message["status"]).inc()
            await send(message)

        token = _request_id.set(request_id)
        # On an exception the id stays set, so the server's error and access lines that follow carry it
        # (servers run each request in its own task, so it goes no further).
        await self.app(scope, receive, send_with_id)
        _request_id.reset(token)


# -- logs ----------------------------------------------------------------------------------------

# Session tokens (gwc_/gwa_ + 43 url-safe characters) and the values of secret-bearing query
# parameters (emailed links carry ?token=...).
SESSION_TOKEN = re.compile(r"\b(gw[ac]_)[A-Za-z0-9_\-]{8,}")
SECRET_PARAMETER = re.compile(r"(?i)\b((?:token|password|secret|code)=)[^&\s\"'<>]+")
SECRET_PATH = re.compile(r"(/me/export/)[^/\s\"'<>?]+")  # data export downloads carry their token in the path
DEV_OUTBOX_LOGGER = "gateway.mail"


def redact(text: str) -> str:
    text = SESSION_TOKEN.sub(r"\1[redacted]", text)
    text = SECRET_PATH.sub(r"\1[redacted]", text)
    return SECRET_PARAMETER.sub(r"\1[redacted]", text)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class _Redacting:
    production: bool

    def _keep_links(self, record: logging.LogRecord) -> bool:
        # The development outbox logs links on purpose; nowhere else, and never in production.
        return not self.production and record.name == DEV_OUTBOX_LOGGER


class TextFormatter(_Redacting, logging.Formatter):
    def __init__(self, production: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
        self.production = production

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        text = super().format(record)
        return text if self._keep_links(record) else redact(text)


class JsonFormatter(_Redacting, logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and the exception if any."""

    def __init__(self, production: bool = False) -> None:
        super().__init__()
        self.production = production

    def format(self, record: logging.LogRecord) -> str:
        keep = self._keep_links(record)
        clean = (lambda s: s) if keep else redact
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": clean(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            entry.update(client=client, method=method, path=clean(str(path)), status=status)
        if record.exc_info:
            entry["exception"] = clean("".join(traceback.format_exception(*record.exc_info)).rstrip())
        elif record.exc_text:
            entry["exception"] = clean(record.exc_text)
        if record.stack_info:
            entry["stack"] = clean(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text", *, production: bool = False, stream=None) -> logging.Handler:
    """One handler on the root logger; uvicorn's loggers propagate to it (serve passes log_config=None)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(production) if fmt == "json" else TextFormatter(production))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


# -- metrics -------------------------------------------------------------------------------------

GRAPHQL_REQUESTS = Counter("gateway_graphql_requests_total",
                           "GraphQL operations by root field, operation type and outcome (ok or error).",
                           ["operation", "type", "outcome"])
GRAPHQL_LATENCY = Histogram("gateway_graphql_request_duration_seconds",
                            "Time to parse, validate and execute a GraphQL operation, by root field.",
                            ["operation"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LOGINS = Counter("gateway_logins_total", "Sign-in attempts by kind (customer, admin) and outcome.",
                 ["kind", "outcome"])
MAIL_QUEUE = Gauge("gateway_mail_queue_depth", "Emails waiting in the outbox to be sent (pending or sending).")
MAIL_DEAD_LETTERS = Gauge("gateway_mail_dead_letters", "Emails in the outbox that will never be sent "
                          "(their links expired before delivery, or their body could not be decrypted).")

ANONYMOUS = "anonymous"
MAX_LABEL = 64
LOGIN_FIELDS = {"sessionCreate": "customer", "adminSessionCreate": "admin"}
LOGIN_OUTCOMES = {
    "SessionCreated": "success",
    "InvalidCredentialsError": "invalid_credentials",
    "AccountNotActivatedError": "not_activated",
    "RateLimitedError": "rate_limited",
    "InvalidInputError": "invalid_input",
    "MfaRequired": "mfa_required",
}


def _selected_operation(document, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == operation_name), None)


def operation_label(execution_context) -> tuple[str, str]:
    """(root field, operation type) of the operation that ran.

    The label is the first root field when the schema has it, because that set is bounded by the
    schema; a client-chosen operationName is not, so it never becomes a label. Introspection is
    ``introspection``; anything else (unparsable, unknown field, fragment at the root) is ``anonymous``.
    """
    document = execution_context.graphql_document
    if document is None:
        return ANONYMOUS, "unknown"
    try:
        operation = _selected_operation(document, execution_context.operation_name)
    except Exception:
        operation = None
    if operation is None:
        return ANONYMOUS, "unknown"
    kind = operation.operation.value
    first = next((s for s in operation.selection_set.selections if isinstance(s, FieldNode)), None)
    if first is None:
        return ANONYMOUS, kind
    name = first.name.value
    if name.startswith("__"):
        return ("introspection" if name in ("__schema", "__type") else ANONYMOUS), kind
    graphql_schema = execution_context.schema._schema
    root = {"query": graphql_schema.query_type, "mutation": graphql_schema.mutation_type,
            "subscription": graphql_schema.subscription_type}.get(kind)
    if root is None or name not in root.fields:
        return ANONYMOUS, kind
    return name[:MAX_LABEL], kind


_labels: dict[tuple[str | None, str | None], tuple[str, str]] = {}
MAX_REMEMBERED_LABELS = 1024
REMEMBERED_LABEL_CHARACTERS = 4096  # longer documents are labelled each time (the cache stays under 4 MiB)


def observe_operation(execution_context, seconds: float) -> None:
    """Counts and times one GraphQL operation (``schema.root.Pipeline`` calls it once per operation).

    The label of a document is remembered by its text and operation name (the same text always
    parses to the same document), for up to ``MAX_REMEMBERED_LABELS`` documents of at most
    ``REMEMBERED_LABEL_CHARACTERS``."""
    query = execution_context.query
    if query is not None and len(query) > REMEMBERED_LABEL_CHARACTERS:
        label = operation_label(execution_context)
    else:
        key = (query, execution_context.operation_name)
        label = _labels.get(key)
        if label is None:
            label = operation_label(execution_context)
            if len(_labels) >= MAX_REMEMBERED_LABELS:
                _labels.clear()
            _labels[key] = label
    operation, kind = label
    result = execution_context.result
    outcome = "error" if result is not None and getattr(result, "errors", None) else "ok"
    labelled(GRAPHQL_REQUESTS, operation, kind, outcome).inc()
    labelled(GRAPHQL_LATENCY, operation).observe(seconds)


def count_sign_ins(schema) -> None:
    """Counts sign-in outcomes where they happen: around the resolvers of the sign-in mutations
    (``LOGIN_FIELDS``), so no other field pays for it (a schema extension's ``resolve`` hook runs on
    every field of every query)."""
    mutation = schema._schema.mutation_type
    for field_name, kind in LOGIN_FIELDS.items():
        field = mutation.fields.get(field_name) if mutation is not None else None
        if field is not None and field.resolve is not None:
            field.resolve = _counted(field.resolve, kind)


def _counted(resolve: Callable, kind: str) -> Callable:
    async def counted(root: Any, info, *args, **kwargs) -> Any:
        try:
            result = resolve(root, info, *args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            labelled(LOGINS, kind, "error").inc()
            raise
        labelled(LOGINS, kind, LOGIN_OUTCOMES.get(type(result).__name__, "other")).inc()
        return result

    return counted


async def refresh_mail_queue(timeout: float = 1.0) -> None:
    """Read the outbox depth and dead letters; on a database hiccup keep the last values rather than fail
    the scrape."""
    from stores import outbox

    try:
        MAIL_QUEUE.set(await asyncio.wait_for(outbox.pending_count(), timeout))
        MAIL_DEAD_LETTERS.set(await asyncio.wait_for(outbox.dead_count(), timeout))
    except Exception:
        logging.getLogger("gateway.metrics").warning("mail queue depth not refreshed: database unavailable")


def metrics_endpoint(token: str | None = None, timeout: float = 1.0, *, production: bool = False):
    """The /metrics handler; with a token, scrapers must send ``Authorization: Bearer <token>`` (else 401).

    Without a token it is open in development, and off in production (404, and a warning now, at
    start-up, saying how to turn it on): the metrics describe traffic and sign-in outcomes, which an
    unauthenticated caller on a public gateway should not see.
    """
    if token is None and production:
        logging.getLogger("gateway.metrics").warning(
            "GET /metrics is disabled in production without a token: set GATEWAY_METRICS_TOKEN and scrape "
            "with 'Authorization: Bearer <token>' to enable it")

        async def disabled(request: Request) -> Response:
            return PlainTextResponse("Not Found", status_code=404)

        return disabled

    async def metrics(request: Request) -> Response:
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return PlainTextResponse("Unauthorized", status_code=401, headers={"www-authenticate": "Bearer"})
        await refresh_mail_queue(timeout)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return metrics
