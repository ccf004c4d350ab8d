"""Social sign-in over HTTP: the browser's two stops at the gateway, and the provider's network side.

Routes (the rules are in ``resolvers/social.py``):

- ``GET /oauth/start/<provider>?token=…`` (the ``authorizationUrl`` of ``socialSignInStart`` and
  ``linkedIdentityAdd``): binds the flow to this browser and redirects to the provider.
- ``GET|POST /oauth/callback/<provider>`` (POST: ``response_mode=form_post``, Apple's): the provider's
  answer; redirects to the application's ``redirectUrl`` with ``grant``, ``linked`` or ``error``, or shows
  a page when there is nowhere safe to send the browser (``oauth_refused.html``, 400).

**The binding cookie** ties a flow to the browser that opened its start URL (RFC 6749 10.12), so that a
callback carried to another browser (login CSRF: an attacker's own code and state) is refused. It is a
random 256-bit value (``__Secure-gw_oauth``, or ``gw_oauth`` on an http development URL), ``HttpOnly``,
``Path=/oauth``, no expiry; ``SameSite=None`` on https so that a provider's form POST carries it
(``Lax`` on http, where ``None`` needs ``Secure``). Flows keep only its SHA-256. Starlette's
``SessionMiddleware`` (what Authlib's Starlette integration keeps its state in) is not used: the state
lives in a MongoDB flow document that one conditional write uses up (so a replayed callback fails on
every instance, even two at once), where a cookie session is read and then cleared.

**The provider's network side** (:class:`OAuthClient`, ``resolvers.social.IdentityProviderClient``) uses
Authlib's Starlette client (``StarletteOAuth2App``): it builds the authorization request (``state``,
``nonce``, PKCE S256), exchanges the code, and validates the ID token (signature against the provider's
JWKS, then issuer, audience, expiry and issued-at with :data:`LEEWAY_SECONDS`, nonce, ``azp``,
``at_hash``) against the gateway's clock. Discovery documents and JWKS are fetched here only (never on
the path of other requests), with a time-out (``GATEWAY_OIDC_HTTP_TIMEOUT_SECONDS``) and a size limit
(``GATEWAY_OIDC_MAX_RESPONSE_BYTES``), without following redirects, and kept for
``GATEWAY_OIDC_METADATA_CACHE_SECONDS``; a JWKS is fetched again for an unknown key id at most once a
minute. Every provider URL must be ``https://`` (``http://`` only on a loopback host).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import warnings
from collections.abc import Callable
from typing import Any

import authlib.deprecate

with warnings.catch_warnings():
    # Authlib would rather run on httpx2 and warns when it falls back to httpx, which it supports.
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import oauth2_client as _authlib_http
    from authlib.integrations.starlette_client import StarletteOAuth2App
    from authlib.integrations.starlette_client.integration import StarletteIntegration
    from authlib.oidc.core import CodeIDToken
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.config import Settings
from gateway.pages.i18n import N_, negotiate
from gateway.pages.kit import Page, PageKit
from gateway.runtime import Runtime, UnknownApplication
from resolvers import social
from resolvers.context import Context, RequestMeta
from resolvers.errors import RateLimited
from resolvers.identity_providers import DISCOVERY_SUFFIX, PRESETS, provider_url_allowed
from resolvers.social import ProviderIdentity, ProviderRefused, Refusal
from stores.documents import IdentityProviderDocument, IdentityProviderType

logger = logging.getLogger("gateway.oauth")

http = _authlib_http.httpx2  # the HTTP library Authlib's clients are built on (httpx2, or httpx)

START_ROUTE = "/oauth/start/{provider}"
CALLBACK_ROUTE = "/oauth/callback/{provider}"
COOKIE_PATH = "/oauth"
COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
LEEWAY_SECONDS = 60  # clock skew allowed on exp, iat and nbf
JWKS_REFRESH_SECONDS = 60  # an unknown key id fetches the JWKS again at most this often
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
FORM_MAX_FIELDS = 10
FORM_MAX_FIELD_BYTES = 8192
CACHE_ENTRIES = 256


class ResponseTooLarge(Exception):
    pass


class BoundedTransport(http.AsyncBaseTransport):
    """Reads every provider response whole, decoded, up to ``max_bytes`` (ResponseTooLarge past it), and asks
    for no compression (so a small body cannot inflate)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.inner = http.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        request.headers["accept-encoding"] = "identity"
        raw = await self.inner.handle_async_request(request)
        probe = http.Response(raw.status_code, headers=raw.headers, stream=raw.stream, request=request)
        body = bytearray()
        try:
            async for chunk in probe.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise ResponseTooLarge(f"{request.url.host}: over {self.max_bytes} bytes")
        finally:
            await probe.aclose()
        headers = [(k, v) for k, v in raw.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return http.Response(raw.status_code, headers=headers, content=bytes(body), request=request,
                             extensions=raw.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()


class GatewayOAuth2App(StarletteOAuth2App):
    """Authlib's Starlette client for one provider, whose JWKS comes from the gateway's bounded cache."""

    def __init__(self, *args, jwks: Callable[[bool], Any], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._jwks = jwks

    async def fetch_jwk_set(self, force: bool = False):
        return await self._jwks(force)


def id_token_claims(now: int, access_token: str | None):
    """Authlib's ID token rules (``CodeIDToken``: nonce, ``azp``, ``at_hash``...) checked at the gateway's
    ``now`` (Authlib would read the system clock), with the access token for ``at_hash``."""
    class GatewayIDToken(CodeIDToken):
        def validate(self, now_=None, leeway=0):
            if access_token:
                self.params["access_token"] = access_token
            super().validate(now=now, leeway=leeway)
    return GatewayIDToken


def expected_issuer(discovery_url: str) -> str:
    """OpenID Connect Discovery 4.3: the issuer is the discovery URL without ``/.well-known/openid-configuration``."""
    return discovery_url[: -len(DISCOVERY_SUFFIX)] if discovery_url.endswith(DISCOVERY_SUFFIX) else discovery_url


def issuer_option(provider: IdentityProviderDocument, metadata_issuer: str) -> dict[str, Any]:
    """The ``iss`` rule for ID tokens. Microsoft's multi-tenant metadata names ``…/{tenantid}/v2.0``: the
    token's issuer must be that with its own ``tid``."""
    if provider.type == IdentityProviderType.MICROSOFT and "{tenantid}" in metadata_issuer:
        def same_tenant(claims, value) -> bool:
            tid = claims.get("tid")
            return isinstance(tid, str) and bool(tid) and value == metadata_issuer.replace("{tenantid}", tid)
        return {"essential": True, "validate": same_tenant}
    return {"essential": True, "values": [metadata_issuer]}


class OAuthClient:
    """``resolvers.social.IdentityProviderClient`` over Authlib, with bounded, cached metadata (see the module)."""

    def __init__(self, settings: Settings) -> None:
        self.timeout = http.Timeout(settings.oidc_http_timeout_seconds)
        self.max_bytes = settings.oidc_max_response_bytes
        self.cache_seconds = settings.oidc_metadata_cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}  # url -> (fetched at, document)
        self._locks: dict[str, asyncio.Lock] = {}

    def _client_kwargs(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "transport": BoundedTransport(self.max_bytes), "follow_redirects": False}

    # -- fetching, bounded and cached --------------------------------------------------------------
    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> Any:
        if not provider_url_allowed(url):
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "url")
        try:
            async with http.AsyncClient(**self._client_kwargs()) as client:
                response = await client.get(url, headers={"accept": "application/json", **(headers or {})})
            response.raise_for_status()
            return response.json()
        except ResponseTooLarge as exc:
            logger.warning("identity provider response too large: %s", exc)
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "too_large") from None
        except http.TimeoutException:
            logger.warning("identity provider timed out: %s", url)
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "timeout") from None
        except (http.HTTPError, ValueError) as exc:
            logger.warning("identity provider request failed: %s: %s", url, type(exc).__name__)
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "http") from None

    async def _cached(self, url: str, fetch: Callable[[], Any], *, max_age: float) -> Any:
        """The document at ``url``, fetched at most once at a time, kept ``max_age`` seconds."""
        cached = self._cache.get(url)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._cache.get(url)
            if cached is not None and time.monotonic() - cached[0] < max_age:
                return cached[1]
            document = await fetch()
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
                self._locks = {url: lock}
            self._cache[url] = (time.monotonic(), document)
            return document

    async def metadata(self, provider: IdentityProviderDocument) -> dict[str, Any]:
        """The provider's metadata: its discovery document, checked (issuer, endpoints, algorithms); for an
        OAuth 2 provider (GitHub), its preset endpoints."""
        if provider.discovery_url is None:
            return {"authorization_endpoint": provider.authorization_endpoint,
                    "token_endpoint": provider.token_endpoint, "userinfo_endpoint": provider.userinfo_endpoint,
                    "token_endpoint_auth_methods_supported": ["client_secret_post"]}

        async def fetch() -> dict[str, Any]:
            document = await self._get_json(provider.discovery_url)
            return self._checked_metadata(provider, document)

        return await self._cached(provider.discovery_url, fetch, max_age=self.cache_seconds)

    @staticmethod
    def _checked_metadata(provider: IdentityProviderDocument, document: Any) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "metadata")
        issuer = document.get("issuer")
        template = provider.type == IdentityProviderType.MICROSOFT and isinstance(issuer, str) and "{tenantid}" in issuer
        if not isinstance(issuer, str) or (not template and issuer != expected_issuer(provider.discovery_url)):
            logger.warning("identity provider %s: issuer %r does not match its discovery URL", provider.id, issuer)
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str) or not provider_url_allowed(document[name]):
                logger.warning("identity provider %s: %s missing or not https", provider.id, name)
                raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, name)
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in ASYMMETRIC_ALGORITHMS if alg in offered] or ["RS256"]
        keep = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                "token_endpoint_auth_methods_supported")
        return {**{k: document[k] for k in keep if k in document},
                "id_token_signing_alg_values_supported": algorithms}

    async def jwks(self, uri: str, force: bool) -> dict[str, Any]:
        """The provider's keys; ``force`` (a token signed by an unknown key id) fetches again, at most once
        per :data:`JWKS_REFRESH_SECONDS`."""
        async def fetch() -> dict[str, Any]:
            document = await self._get_json(uri)
            if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "jwks")
            return document

        return await self._cached(uri, fetch, max_age=JWKS_REFRESH_SECONDS if force else self.cache_seconds)

    # -- Authlib ------------------------------------------------------------------------------------
    def _app(self, provider: IdentityProviderDocument, client_secret: str | None,
             metadata: dict[str, Any]) -> GatewayOAuth2App:
        offered = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if client_secret is None:
            auth_method = "none"  # a public client: PKCE alone
        elif "client_secret_basic" in offered:
            auth_method = "client_secret_basic"
        else:
            auth_method = "client_secret_post"
        preset = PRESETS[provider.type]
        app = GatewayOAuth2App(
            StarletteIntegration(provider.id), provider.name, client_id=provider.client_id,
            client_secret=client_secret, authorize_params=dict(preset.authorize_params) or None,
            client_kwargs={"scope": " ".join(provider.scopes), "code_challenge_method": "S256",
                           "token_endpoint_auth_method": auth_method, **self._client_kwargs()},
            jwks=lambda force: self.jwks(metadata["jwks_uri"], force))
        app.server_metadata = dict(metadata)
        return app

    async def authorization_url(self, provider: IdentityProviderDocument, client_secret: str | None, *,
                                redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        metadata = await self.metadata(provider)
        app = self._app(provider, client_secret, metadata)
        extra = {"nonce": nonce} if provider.discovery_url is not None else {}
        created = await app.create_authorization_url(redirect_uri, state=state, code_verifier=code_verifier, **extra)
        return created["url"]

    async def identity(self, provider: IdentityProviderDocument, client_secret: str | None, *, redirect_uri: str,
                       code: str, code_verifier: str, nonce: str, now: int) -> ProviderIdentity:
        metadata = await self.metadata(provider)
        app = self._app(provider, client_secret, metadata)
        try:
            token = await app.fetch_access_token(redirect_uri=redirect_uri, code=code, code_verifier=code_verifier)
        except OAuthError as exc:
            raise ProviderRefused(Refusal.CODE_REJECTED, str(exc.error or "oauth")[:64]) from None
        except ResponseTooLarge:
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "too_large") from None
        except (http.HTTPError, ValueError) as exc:
            logger.warning("identity provider %s: token endpoint failed: %s", provider.id, type(exc).__name__)
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "token_endpoint") from None
        if provider.discovery_url is None:
            return await self._oauth2_identity(provider, token)
        if not isinstance(token.get("id_token"), str):
            raise ProviderRefused(Refusal.INVALID_ID_TOKEN, "missing")
        options = {"iss": issuer_option(provider, metadata["issuer"]),
                   "aud": {"essential": True, "values": [provider.client_id]}, "sub": {"essential": True}}
        try:
            claims = await app.parse_id_token(
                token, nonce=nonce, claims_options=options,
                claims_cls=id_token_claims(now, token.get("access_token")), leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            detail = getattr(exc, "claim", None) or exc.error or type(exc).__name__
            raise ProviderRefused(Refusal.INVALID_ID_TOKEN, str(detail)[:64]) from None
        except ProviderRefused:
            raise
        except ValueError as exc:  # a token that is not a JWS, a key set that cannot be imported
            raise ProviderRefused(Refusal.INVALID_ID_TOKEN, type(exc).__name__) from None
        issuer = claims["iss"]
        return ProviderIdentity(
            issuer=issuer, subject=str(claims["sub"]), email=_text(claims.get("email")),
            email_verified=claims.get("email_verified") is True or claims.get("email_verified") == "true",
            given_name=_text(claims.get("given_name")), family_name=_text(claims.get("family_name")))

    async def _oauth2_identity(self, provider: IdentityProviderDocument, token: dict[str, Any]) -> ProviderIdentity:
        """GitHub: the user API gives the id (the subject), and ``/user/emails`` the primary address and
        whether GitHub verified it."""
        access_token = token.get("access_token")
        if not isinstance(access_token, str):
            raise ProviderRefused(Refusal.CODE_REJECTED, "no_access_token")
        headers = {"authorization": f"Bearer {access_token}", "accept": "application/vnd.github+json"}
        user = await self._get_json(provider.userinfo_endpoint, headers)
        if not isinstance(user, dict) or user.get("id") in (None, ""):
            raise ProviderRefused(Refusal.PROVIDER_UNAVAILABLE, "user")
        email, verified = None, False
        if provider.emails_endpoint:
            emails = await self._get_json(provider.emails_endpoint, headers)
            primary = next((e for e in emails if isinstance(e, dict) and e.get("primary")), None) \
                if isinstance(emails, list) else None
            if primary is not None:
                email, verified = _text(primary.get("email")), primary.get("verified") is True
        name = _text(user.get("name")) or ""
        given, _, family = name.partition(" ")
        return ProviderIdentity(issuer=PRESETS[provider.type].issuer or provider.token_endpoint,
                                subject=str(user["id"]), email=email, email_verified=verified,
                                given_name=given or None, family_name=family or None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- routes -----------------------------------------------------------------------------------------

REFUSAL_TEXT = {  # translated on the page (gateway/locales; extracted through the N_ marker)
    Refusal.INVALID_START: N_("This sign-in link was used already or has expired."),
    Refusal.UNKNOWN_STATE: N_("This sign-in is unknown or has expired."),
    Refusal.STATE_MISMATCH: N_("This sign-in was started in another browser. Start again here."),
}
NOT_COMPLETED = N_("This sign-in could not be completed. Please start again.")
TOO_MANY = N_("Too many attempts. Please try again later.")


def binding_cookie_name(public_url: str) -> str:
    """The binding cookie's name (``Path=/oauth``): also read by the hosted pages' return route
    (``/oauth/return``, ``gateway/pages/sign_in_methods.py``), which must be the flow's browser."""
    return "__Secure-gw_oauth" if public_url.startswith("https://") else "gw_oauth"


def routes(runtime: Runtime, meta: Callable[[Request], RequestMeta], kit: PageKit,
           client: OAuthClient | None = None) -> list[Route]:
    """The start and callback routes; ``meta`` reads a request's client IP, user agent, request id, locale;
    ``kit`` renders the branded "sign-in not completed" page."""
    client = client or OAuthClient(runtime.settings)
    secure = runtime.rules.public_url.startswith("https://")
    cookie_name = binding_cookie_name(runtime.rules.public_url)

    def binding_of(request: Request) -> tuple[str, bool]:
        """This browser's binding cookie value, and whether it is new (to be set)."""
        value = request.cookies.get(cookie_name, "")
        if COOKIE_VALUE.match(value):
            return value, False
        return secrets.token_urlsafe(32), True

    def set_binding(response: Response, value: str) -> None:
        response.set_cookie(cookie_name, value, path=COOKIE_PATH, httponly=True, secure=secure,
                            samesite="none" if secure else "lax")

    async def context(application_id: str | None, request: Request) -> Context:
        try:
            return await runtime.context_for_application(application_id, meta(request))
        except UnknownApplication:
            return await runtime.context_for_application(None, meta(request))

    def page(request: Request, ctx: Context, message: str, reason: str, status: int) -> Response:
        shown = Page(request, ctx, negotiate(None, request.headers.get("accept-language")))
        return kit.render(shown, "oauth_refused.html", status, title=kit.gettext(shown, N_("Sign-in not completed")),
                          message=kit.gettext(shown, message), reason=reason)

    def landing(request: Request, ctx: Context, outcome: social.Landing) -> Response:
        if outcome.redirect_url is not None:
            return RedirectResponse(outcome.redirect_url, status_code=303)
        return page(request, ctx, REFUSAL_TEXT.get(outcome.refusal, NOT_COMPLETED),
                    outcome.refusal.value if outcome.refusal else "", 400)

    def busy(request: Request, ctx: Context, refused: RateLimited) -> Response:
        response = page(request, ctx, TOO_MANY, "rate_limited", 429)
        response.headers["retry-after"] = str(refused.retry_after_seconds)
        return response

    async def start(request: Request) -> Response:
        if request.method == "HEAD":  # link previews: look, never use
            return Response(status_code=204)
        token = request.query_params.get("token", "")
        binding, new = binding_of(request)
        ctx = await context(await social.application_of_start(token), request)
        try:
            response = landing(request, ctx, await social.begin(ctx, client, request.path_params["provider"], token, binding))
        except RateLimited as refused:
            response = busy(request, ctx, refused)
        if new:
            set_binding(response, binding)
        return response

    async def callback(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=204)
        if request.method == "POST":
            async with request.form(max_files=0, max_fields=FORM_MAX_FIELDS,
                                    max_part_size=FORM_MAX_FIELD_BYTES) as form:
                params = {key: str(form.get(key)) for key in ("state", "code", "error") if form.get(key) is not None}
        else:
            params = {key: request.query_params[key] for key in ("state", "code", "error")
                      if key in request.query_params}
        binding = request.cookies.get(cookie_name)
        ctx = await context(await social.application_of_state(params.get("state", "")), request)
        try:
            outcome = await social.finish(ctx, client, request.path_params["provider"], state=params.get("state"),
                                          code=params.get("code"), error=params.get("error"), binding=binding)
        except RateLimited as refused:
            return busy(request, ctx, refused)
        return landing(request, ctx, outcome)

    return [Route(START_ROUTE, start, methods=["GET"]), Route(CALLBACK_ROUTE, callback, methods=["GET", "POST"])]
