"""Hosted, branded HTML pages. They call the same resolvers as the GraphQL API (docs/pages.md).

- ``kit``: the framework (application and language of a request, templates, CSRF, browser sessions);
- ``public``: sign in (and its second-factor step), sign out, register, forgotten password, password
  reset, forgotten username, the signed-in landing;
- ``sign_in_methods``: passkeys, social identities and emailed links or codes on the sign-in page;
- ``portal``: the account portal at ``/account`` (its four tabs, re-authentication);
- ``links``: the landings of emailed links (``CONFIRM_LINKS``, ``SET_PASSWORD_PAGES``);
- ``assets``: the stylesheet, the small script, each application's brand stylesheet;
- ``i18n``: the Babel catalogues.
"""

from __future__ import annotations

from starlette.routing import Route

from gateway.pages import assets, links, portal, public, sign_in_methods
from gateway.pages.kit import PageKit, page_context
from gateway.pages.links import CONFIRM_LINKS, SET_PASSWORD_PAGES, ConfirmLinkPage, SetPasswordPage
from gateway.pages.public import SIGN_IN_METHODS, SignInMethod

__all__ = ["CONFIRM_LINKS", "PATHS", "SET_PASSWORD_PAGES", "SIGN_IN_METHODS", "ConfirmLinkPage", "PageKit",
           "SetPasswordPage", "SignInMethod", "page_context", "routes"]

# every page route, for the metrics' route label
PATHS = links.PATHS | public.PATHS | sign_in_methods.PATHS | portal.PATHS | assets.PATHS


def routes(kit: PageKit) -> list[Route]:
    """The page routes, sharing one ``PageKit`` (made by the app with the request reader it uses). The
    portal's come first: its ``/account`` replaces the signed-in landing of ``public``."""
    return [*portal.routes(kit), *public.routes(kit), *sign_in_methods.routes(kit), *links.routes(kit),
            *assets.routes(kit)]
