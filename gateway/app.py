"""The ASGI application: GraphQL endpoint, health checks, and the hosted pages of gateway/pages/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from functools import lru_cache

import orjson
from cross_web import HTTPException
from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.types.unset import UNSET

from gateway import exports, oauth, observability, pages
from gateway.client_ip import TrustedProxies, resolve_client_ip
from gateway.config import Settings
from gateway.http_guard import HttpGuard, graphql_refusal
from gateway.runtime import Runtime, UnknownApplication
from gateway.security_headers import SecurityHeaders
from resolvers import api_keys
from resolvers.context import Clock, Context, RequestMeta
from resolvers.sessions import authenticate
from schema.root import UNAVAILABLE_MESSAGE, build_schema, database_unavailable

logger = logging.getLogger("gateway")

READY_TIMEOUT_SECONDS = 1.0


def preferred_locale(header: str | None) -> str | None:
    """The first language tag of Accept-Language, as ``en`` or ``fr-CA``; None when absent or odd."""
    first = (header or "").split(",")[0].split(";")[0].strip()
    language, _, region = first.partition("-")
    if not (2 <= len(language) <= 3 and language.isalpha()):
        return None
    if region and len(region) == 2 and region.isalpha():
        return f"{language.lower()}-{region.upper()}"
    return language.lower()


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class GatewayGraphQL(GraphQL):
    def __init__(self, runtime: Runtime, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.trusted = TrustedProxies.parse(runtime.settings.trusted_proxies)

    async def get_context(self, request: Request, response: Response) -> Context:
        return await request_context(self.runtime, request, self.trusted, token=bearer_token(request))

    def encode_json(self, data: object) -> bytes:
        """The response body, by orjson (a few times faster than json.dumps, UTF-8 rather than \\u escapes);
        by json.dumps for what orjson refuses (a string with a lone surrogate, an integer beyond 64 bits)."""
        try:
            return orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError
            return json.dumps(data, separators=(",", ":")).encode()

    def decode_json(self, data: str | bytes) -> object:
        """The parsed body; JSONDecodeError (which the view answers 400) for anything json.loads refuses.

        Besides bad syntax that is: bytes that are not UTF-8 (lone surrogates included), nesting deeper
        than the interpreter's recursion limit (RecursionError), integers longer than Python's
        4300-digit conversion limit (ValueError).
        """
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise json.JSONDecodeError(type(exc).__name__, "", 0) from None
        if not isinstance(decoded, dict):  # a string, number, null or (batched) array is not one request
            raise json.JSONDecodeError("the body must be a JSON object", "", 0)
        return decoded

    async def run(self, request, context=UNSET, root_value=UNSET):
        """Strawberry's HTTP refusals (unparsable JSON, unknown application, ...) in GraphQL's error shape."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            if request.scope["type"] != "http":
                raise
            return Response(graphql_refusal(exc.reason), status_code=exc.status_code, media_type="application/json")


async def database_error(request: Request, exc: Exception) -> Response:
    """A database error outside GraphQL execution (authentication, application look-up, pages).

    Unreachable or timed out: HTTP 503 with Retry-After, GraphQL-shaped (extensions.code
    SERVICE_UNAVAILABLE) on /graphql. Any other database error stays a 500.
    """
    if not database_unavailable(exc):
        raise exc
    logger.warning("database unavailable at %s: %s", request.url.path, type(exc).__name__)
    headers = {"retry-after": "5"}
    if request.url.path.rstrip("/").endswith("/graphql"):
        return JSONResponse({"data": None, "errors": [{"message": UNAVAILABLE_MESSAGE,
                                                        "extensions": {"code": "SERVICE_UNAVAILABLE"}}]},
                            status_code=503, headers=headers)
    return PlainTextResponse(UNAVAILABLE_MESSAGE, status_code=503, headers=headers)


REMEMBERED_FORWARDED_CHARACTERS = 256  # longer X-Forwarded-For lines are resolved, not remembered


@lru_cache(maxsize=4096)
def _remembered_client_ip(peer: str | None, forwarded: tuple[str, ...], trusted: TrustedProxies) -> str | None:
    return resolve_client_ip(peer, forwarded, trusted)


def _client_ip(request: Request, trusted: TrustedProxies) -> str | None:
    """``client_ip.resolve_client_ip``, remembered for up to 4096 (peer, ``X-Forwarded-For``) pairs: parsing
    addresses with ``ipaddress`` costs a signed-in request tens of µs, and a client sends the same ones each
    time. Only short header values are remembered, so the cache stays small whatever clients send."""
    peer = request.client.host if request.client else None
    forwarded = tuple(request.headers.getlist("x-forwarded-for"))
    if sum(map(len, forwarded)) > REMEMBERED_FORWARDED_CHARACTERS:
        return resolve_client_ip(peer, forwarded, trusted)
    return _remembered_client_ip(peer, forwarded, trusted)


def request_meta(request: Request, trusted: TrustedProxies) -> RequestMeta:
    ip_address = _client_ip(request, trusted)
    return RequestMeta(ip_address=ip_address, user_agent=request.headers.get("user-agent"),
                       request_id=observability.current_request_id()
                       or observability.accepted_request_id(request.headers.get("x-request-id")),
                       locale=preferred_locale(request.headers.get("accept-language")))


async def request_context(runtime: Runtime, request: Request, trusted: TrustedProxies,
                          token: str | None = None) -> Context:
    # A partner API key (gwk_…) or a session token (gwc_…, gwa_…).
    check = api_keys.authenticate if api_keys.is_api_key(token) else authenticate
    principal = await check(runtime.rules, runtime.clock, token) if token else None
    try:
        ctx = await runtime.context(client_id=request.headers.get("x-application-id"), principal=principal,
                                    request=request_meta(request, trusted))
    except UnknownApplication:
        raise HTTPException(400, "Unknown application: check the X-Application-Id header.") from None
    if principal is None and api_keys.is_api_key(token):
        await api_keys.record_refusal(ctx, token)  # a dead partner key still in use is worth knowing
    return ctx


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    settings.check()
    runtime = Runtime(settings, clock)
    schema = build_schema(production=settings.is_production, max_depth=settings.graphql_max_depth,
                          max_aliases=settings.graphql_max_aliases, max_directives=settings.graphql_max_directives,
                          max_tokens=settings.graphql_max_tokens,
                          max_characters=settings.graphql_max_document_characters,
                          observe=observability.observe_operation)
    observability.count_sign_ins(schema)
    graphql_app = GatewayGraphQL(runtime, schema=schema, graphql_ide=None if settings.is_production else "graphiql",
                                 allow_queries_via_get=True)
    trusted = graphql_app.trusted

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Bounded: a stopped or unreachable database must not hold the probe for the full client timeout.
        try:
            await asyncio.wait_for(runtime.client.admin.command("ping"), READY_TIMEOUT_SECONDS)
        except Exception:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    def meta(request: Request) -> RequestMeta:
        return request_meta(request, trusted)

    kit = pages.PageKit(runtime, meta)  # templates, languages, CSRF and browser sessions of every page
    app = Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            *pages.routes(kit),
            *exports.routes(runtime, meta=meta),
            *oauth.routes(runtime, meta=meta, kit=kit),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", observability.metrics_endpoint(
                settings.metrics_token.get_secret_value() if settings.metrics_token else None,
                production=settings.is_production), methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={PyMongoError: database_error},
    )
    app.state.runtime = runtime
    app.add_middleware(HttpGuard, max_body_bytes=settings.max_body_bytes)  # inside SecurityHeaders: refusals get them
    app.add_middleware(SecurityHeaders, production=settings.is_production)
    app.add_middleware(observability.RequestIdMiddleware)  # outermost: every log line of the request has its id
    return app
