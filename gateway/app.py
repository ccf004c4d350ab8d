"""The ASGI application: GraphQL endpoint, link landing pages, health checks."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import uuid
from pathlib import Path

from cross_web import HTTPException
from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from gateway.config import Settings
from gateway.runtime import Runtime, UnknownApplication
from gateway.security_headers import SecurityHeaders
from resolvers import registration
from resolvers.context import Clock, Context, RequestMeta
from resolvers.errors import DomainError
from resolvers.sessions import authenticate
from schema.root import build_schema

logger = logging.getLogger("gateway")

PAGES = SandboxedEnvironment(loader=FileSystemLoader(Path(__file__).parent / "templates" / "pages"),
                             autoescape=select_autoescape(default=True))


def client_ip(request: Request, trusted_proxies: frozenset[str]) -> str | None:
    peer = request.client.host if request.client else None
    if peer in trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if hop not in trusted_proxies:
                with contextlib.suppress(ValueError):
                    return str(ipaddress.ip_address(hop))
    return peer


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class GatewayGraphQL(GraphQL):
    def __init__(self, runtime: Runtime, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.trusted = frozenset(p.strip() for p in runtime.settings.trusted_proxies.split(",") if p.strip())

    async def get_context(self, request: Request, response: Response) -> Context:
        return await request_context(self.runtime, request, self.trusted, token=bearer_token(request))


async def request_context(runtime: Runtime, request: Request, trusted: frozenset[str],
                          token: str | None = None) -> Context:
    principal = await authenticate(runtime.rules, runtime.clock, token) if token else None
    meta = RequestMeta(ip_address=client_ip(request, trusted), user_agent=request.headers.get("user-agent"),
                       request_id=request.headers.get("x-request-id") or uuid.uuid4().hex)
    try:
        return await runtime.context(client_id=request.headers.get("x-application-id"), principal=principal,
                                     request=meta)
    except UnknownApplication:
        raise HTTPException(400, "Unknown application: check the X-Application-Id header.") from None


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    settings.check()
    runtime = Runtime(settings, clock)
    schema = build_schema(production=settings.is_production, max_depth=settings.graphql_max_depth,
                          max_aliases=settings.graphql_max_aliases, max_tokens=settings.graphql_max_tokens)
    graphql_app = GatewayGraphQL(runtime, schema=schema, graphql_ide=None if settings.is_production else "graphiql",
                                 allow_queries_via_get=True)
    trusted = graphql_app.trusted

    def page(name: str, status: int = 200, **variables) -> HTMLResponse:
        return HTMLResponse(PAGES.get_template(name).render(**variables), status_code=status)

    async def activate(request: Request) -> Response:
        ctx = await request_context(runtime, request, trusted)
        try:
            await registration.activate(ctx, request.query_params.get("token", ""))
            activated = True
        except DomainError:
            activated = False
        return page("activate.html", 200 if activated else 400, title="Account activation",
                    application_name=ctx.application.name, activated=activated)

    async def activate_resend(request: Request) -> Response:
        ctx = await request_context(runtime, request, trusted)
        form = await request.form()
        with contextlib.suppress(DomainError):
            await registration.resend_activation(ctx, str(form.get("email", ""))[:320])
        return page("activate.html", title="Account activation", application_name=ctx.application.name,
                    activated=False, resent=True)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await runtime.client.admin.command("ping")
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

    app = Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            Route("/activate", activate, methods=["GET"]),
            Route("/activate/resend", activate_resend, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(SecurityHeaders, production=settings.is_production)
    return app
