"""Static assets of the pages (``gateway/static``) and each application's brand stylesheet.

Everything a page loads is served by the gateway (no external fonts, scripts or styles), so the
Content-Security-Policy can allow ``'self'`` alone for scripts and styles. URLs carry a content hash
(``?v=``): a request with the current hash may be cached for a year (``immutable``); any other is
answered ``no-cache``, so a changed colour or script is fetched at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.pages.kit import BRAND_STYLESHEET, STATIC, PageKit, asset_version, brand_stylesheet
from gateway.runtime import UnknownApplication

ASSETS = {"pages.css": "text/css; charset=utf-8", "pages.js": "text/javascript; charset=utf-8",
          "passkey-sign-in.js": "text/javascript; charset=utf-8",  # WebAuthn on the sign-in page (sign_in_methods.py)
          "portal.js": "text/javascript; charset=utf-8"}  # the account portal (portal.py)
IMMUTABLE = "public, max-age=31536000, immutable"

PATHS = frozenset(f"/assets/{name}" for name in ASSETS)


def _cached(request: Request, version: str) -> dict[str, str]:
    return {"cache-control": IMMUTABLE if request.query_params.get("v") == version else "no-cache"}


def routes(kit: PageKit) -> list[Route]:
    def asset(name: str, media_type: str) -> Route:
        content = (STATIC / name).read_bytes()

        async def endpoint(request: Request) -> Response:
            return Response(content, media_type=media_type, headers=_cached(request, asset_version(name)))
        return Route(f"/assets/{name}", endpoint, methods=["GET"])

    async def brand(request: Request) -> Response:
        """``/assets/brand/<clientId>.css``: the application's colours as CSS custom properties."""
        client_id = request.path_params["client_id"][:100]
        try:
            application, _ = await kit.runtime.application(client_id)
        except UnknownApplication:
            return PlainTextResponse("Unknown application.", status_code=404)
        css, version = brand_stylesheet(application.branding.primary_color, application.branding.accent_color)
        return Response(css, media_type="text/css; charset=utf-8", headers=_cached(request, version))

    return [*(asset(name, media_type) for name, media_type in ASSETS.items()),
            Route(BRAND_STYLESHEET.replace("{client_id}", "{client_id:str}"), brand, methods=["GET"])]
