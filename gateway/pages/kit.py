"""The page framework: what every hosted page shares (docs/pages.md, "Adding a page").

A page handler is a Starlette endpoint that

1. opens the request with :meth:`PageKit.open` (the application from ``?app=<clientId>``, a form's
   ``client_id`` or the link token that names it; the browser session's customer when asked; the
   language; a resolver :class:`~resolvers.context.Context`),
2. for a form ``POST``, reads it with :meth:`PageKit.read_form` and checks its CSRF token with
   :meth:`PageKit.refusal` (a refusal is answered with :meth:`PageKit.refused`),
3. calls the same resolver the GraphQL API calls, and
4. answers with :meth:`PageKit.render` (a template in ``gateway/templates/pages/`` that extends
   ``base.html``) or :meth:`PageKit.redirect`.

Templates are Jinja2 with autoescape and the i18n extension (``{{ _("Sign in") }}``, newstyle gettext:
``{{ _("Welcome to %(name)s", name=brand.name) }}``). Every render gets ``brand`` (name, logo, client
id, the application's stylesheet), ``lang``, ``signed_in``, ``url(path)`` (keeps ``?app=``),
``csrf_field`` and ``csrf_token(action)``. Forms and fields come from ``_forms.html``'s macros, which
tie each error to its field (``aria-describedby``, ``aria-invalid``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.browser_sessions import BrowserSessions
from gateway.csrf import FIELD as CSRF_FIELD
from gateway.csrf import CsrfProtection, CsrfRefusal
from gateway.pages.i18n import catalogues, negotiate
from gateway.runtime import Runtime, UnknownApplication
from resolvers import links
from resolvers.applications import PAGE_SURFACE, contrast_ratio, readable_text_color
from resolvers.context import Context, Principal, RequestMeta
from resolvers.errors import FieldProblem
from stores.documents import ApplicationDocument

logger = logging.getLogger("gateway.pages")

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
TEMPLATE_DIR = ROOT / "templates" / "pages"
FORM_MAX_FIELDS = 10  # our forms have at most eight; the whole body is bounded by HttpGuard (GATEWAY_MAX_BODY_BYTES)
FORM_MAX_FIELD_BYTES = 4096
MAX_CLIENT_ID = 100
TEXT_ON_PAGE = "#1f2933"  # the pages' own text colour (16:1 on white)
BRAND_STYLESHEET = "/assets/brand/{client_id}.css"


class UnknownPageApplication(Exception):
    """``?app=`` (or a form's ``client_id``) names no application: the page answers 404, never the default's."""


@dataclass
class Page:
    """One request to a page: the resolver context, the language, the signed-in customer (if asked)."""

    request: Request
    ctx: Context
    locale: str
    principal: Principal | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def application(self) -> ApplicationDocument:
        return self.ctx.application


@lru_cache(maxsize=256)
def brand_stylesheet(primary: str, accent: str) -> tuple[str, str]:
    """The CSS custom properties of one branding, and their content hash (the stylesheet's version).

    Text on a brand colour is black or white, whichever reaches WCAG AA on it; links use the primary
    colour only where it reaches AA on the page's surface (colours saved before that rule existed may
    not), else the page's own text colour.
    """
    link = primary if contrast_ratio(primary, PAGE_SURFACE) >= 4.5 else TEXT_ON_PAGE
    css = (":root{"
           f"--brand-primary:{primary};--brand-on-primary:{readable_text_color(primary)};"
           f"--brand-accent:{accent};--brand-on-accent:{readable_text_color(accent)};"
           f"--brand-link:{link}"
           "}\n")
    return css, hashlib.sha256(css.encode()).hexdigest()[:16]


@lru_cache(maxsize=8)
def asset_version(name: str) -> str:
    """The content hash of a static asset, for its URL (``?v=``): a new version is a new URL."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:16]


async def page_context(runtime: Runtime, meta: RequestMeta, *, link_token: str | None = None,
                       client_id: str | None = None) -> Context:
    """A context for a route that answers for the application that issued a link (the data export's
    download): a browser sends no X-Application-Id. The default application when it is unknown."""
    application_id = await links.issuing_application(link_token) if link_token else None
    if application_id:
        application = await runtime.application_by_id(application_id)
        client_id = application.client_id if application else None
    try:
        return await runtime.context(client_id=client_id, principal=None, request=meta)
    except UnknownApplication:
        return await runtime.context(client_id=None, principal=None, request=meta)


class PageKit:
    """Shared by every page route of one gateway: templates per language, CSRF, browser sessions."""

    def __init__(self, runtime: Runtime, meta: Callable[[Request], RequestMeta]) -> None:
        self.runtime = runtime
        self.meta = meta
        self.csrf = CsrfProtection(runtime.rules.secret_key, runtime.rules.public_url)
        self.sessions = BrowserSessions(runtime.rules, runtime.clock)
        self._environments: dict[str, SandboxedEnvironment] = {}
        catalogues()  # compiled when the app is made: a broken catalogue stops start-up, not a page

    # -- opening a request -----------------------------------------------------------------------
    async def open(self, request: Request, *, client_id: str | None = None, link_token: str | None = None,
                   with_session: bool = False, fallback: bool = False) -> Page:
        """The page's context. The application is the one that issued ``link_token`` (a link's page), else
        ``client_id`` (a form's hidden field), else ``?app=``, else the default; an unknown ``client_id``
        or ``?app=`` raises UnknownPageApplication (with ``fallback``, or for a link's page, the default application
        answers instead). ``with_session``: read the browser's session cookie."""
        principal = await self.sessions.principal(request) if with_session else None
        meta = self.meta(request)
        chosen = client_id if client_id is not None else request.query_params.get("app")
        chosen = (chosen or "").strip()[:MAX_CLIENT_ID + 1] or None
        application_id = await links.issuing_application(link_token) if link_token else None
        if application_id:
            application = await self.runtime.application_by_id(application_id)
            chosen = application.client_id if application else None
        try:
            ctx = await self.runtime.context(client_id=chosen, principal=principal, request=meta)
        except UnknownApplication:
            if link_token or fallback:  # a link's page answers (for the default application) when its issuer is gone
                ctx = await self.runtime.context(client_id=None, principal=principal, request=meta)
            else:
                raise UnknownPageApplication(chosen) from None
        profile_locale = (principal.profile or {}).get("locale") if principal is not None else None
        locale = negotiate(profile_locale, request.headers.get("accept-language"))
        return Page(request, ctx, locale, principal)

    async def read_form(self, request: Request) -> FormData:
        return await request.form(max_files=0, max_fields=FORM_MAX_FIELDS, max_part_size=FORM_MAX_FIELD_BYTES)

    def refusal(self, page: Page, form: FormData, action: str) -> CsrfRefusal | None:
        """None when this form POST to ``action`` came from our page in this browser (``gateway/csrf.py``)."""
        return self.csrf.check(page.request, form, action)

    # -- answering -------------------------------------------------------------------------------
    def environment(self, locale: str) -> SandboxedEnvironment:
        """The page templates in one language (one environment per catalogue, made once)."""
        environment = self._environments.get(locale)
        if environment is None:
            environment = SandboxedEnvironment(loader=FileSystemLoader(TEMPLATE_DIR),
                                               autoescape=select_autoescape(default=True),
                                               extensions=["jinja2.ext.i18n"])
            environment.install_gettext_translations(catalogues()[locale], newstyle=True)
            self._environments[locale] = environment
        return environment

    def gettext(self, page: Page, message: str, /, **variables: Any) -> str:
        """``message`` in the page's language, with ``%(name)s`` placeholders filled in."""
        translated = catalogues()[page.locale].gettext(message)
        return translated % variables if variables else translated

    def url(self, page: Page, path: str, /, **params: str) -> str:
        """A path on this gateway that keeps the page's application (``?app=``) when it is not the default.
        ``path`` may carry a query of its own (a ``next`` such as ``/account?tab=security``): it is kept."""
        path, _, own = path.partition("?")
        query = [*parse_qsl(own, keep_blank_values=True), *params.items()]
        if page.application.id != self.runtime.default_application.id and all(key != "app" for key, _ in query):
            query.insert(0, ("app", page.application.client_id))
        return f"{path}?{urlencode(query)}" if query else path

    def render(self, page: Page, name: str, status: int = 200, /, **variables: Any) -> Response:
        forms = self.csrf.forms(page.request)
        application = page.application
        css, version = brand_stylesheet(application.branding.primary_color, application.branding.accent_color)
        brand = {
            "name": application.name, "client_id": application.client_id, "logo_url": application.branding.logo_url,
            "support_email": application.branding.support_email,
            "stylesheet": f"{BRAND_STYLESHEET.format(client_id=application.client_id)}?v={version}",
        }
        body = self.environment(page.locale).get_template(name).render(
            brand=brand, application_name=application.name, client_id=application.client_id, lang=page.locale,
            signed_in=page.principal is not None, url=lambda path, **params: self.url(page, path, **params),
            asset=lambda asset: f"/assets/{asset}?v={asset_version(asset)}", policy=page.ctx.policy,
            csrf_field=CSRF_FIELD, csrf_token=forms.token, errors=page.errors, **variables)
        return forms.apply(HTMLResponse(body, status_code=status))

    def redirect(self, page: Page, path: str, /, **params: str) -> RedirectResponse:
        """303 See Other to a page of ours (after a form POST: the browser GETs it)."""
        return RedirectResponse(self.url(page, path, **params), status_code=303)

    def refused(self, page: Page, action: str, reason: CsrfRefusal, start_again: str) -> Response:
        """403, nothing done: the form was not sent from our page in this browser."""
        logger.warning("page form refused: %s on POST %s", reason, action)
        return self.render(page, "refused.html", 403, title=self.gettext(page, "Please start again"),
                           start_again=start_again)

    def field_errors(self, page: Page, problems: list[FieldProblem], fields: dict[str, str]) -> dict[str, str]:
        """Resolver field problems as the page's errors, by form field: ``fields`` maps the API's field
        names (``givenName``) to the form's (``given_name``). Messages are translated where the catalogue
        has them (``gateway/pages/messages.py``)."""
        errors: dict[str, str] = {}
        for problem in problems:
            name = fields.get(problem.field or "", problem.field or "form")
            errors.setdefault(name, self.gettext(page, problem.message))
        return errors
