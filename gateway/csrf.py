"""CSRF protection for the hosted HTML pages' form POSTs: OWASP's signed double-submit cookie.

A page that shows a form (GET) makes sure the browser holds a random cookie (32 bytes, URL-safe
base64; ``__Host-gw_csrf`` with ``Secure`` when ``GATEWAY_PUBLIC_URL`` is https, ``gw_csrf`` on http
development; always ``HttpOnly; SameSite=Lax; Path=/`` and no expiry, so it lasts the browser session)
and puts ``HMAC-SHA-256(key, action + NUL + cookie)`` (URL-safe base64) in the form's hidden
``csrf_token`` field. The key is derived from ``GATEWAY_SECRET_KEY`` for this use only, and the
action is the path the form posts to, so a token is good for one form only.

The POST (``CsrfProtection.check``) is refused when

- ``Sec-Fetch-Site`` is present and is neither ``same-origin`` nor ``none`` (Fetch Metadata), or
  ``Origin`` is present and is not the public URL's origin. ``Origin: null`` tells nothing: our
  pages send ``Referrer-Policy: no-referrer``, under which browsers send ``null`` on their own
  same-origin form POSTs (Fetch standard, "serializing a request origin"), so it is left to
  ``Sec-Fetch-Site`` and the token;
- the cookie is missing or malformed, the field is missing, or the field is not the HMAC of the
  cookie for this action (compared in constant time).

Another site cannot read the cookie or the page, and cannot write a ``__Host-`` cookie, so it cannot
produce a matching pair; a ``SameSite=Lax`` cookie is not even sent with its cross-site POST. Sources:
OWASP Cross-Site Request Forgery Prevention Cheat Sheet ("Signed Double-Submit Cookie", "Fetch
Metadata headers", "Verifying Origin"); RFC 6265bis for ``__Host-`` and ``SameSite``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from enum import StrEnum
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

FIELD = "csrf_token"
KEY_LABEL = b"identity-gateway/csrf-form-token/v1"
COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})  # "none": the person typed or bookmarked it
DEFAULT_PORTS = {"http": 80, "https": 443}


class CsrfRefusal(StrEnum):
    """Why a form POST was refused (logged; the person sees one "start again" page)."""

    CROSS_SITE = "cross_site"  # Sec-Fetch-Site or Origin names another site
    MISSING_COOKIE = "missing_cookie"
    MISSING_TOKEN = "missing_token"
    WRONG_TOKEN = "wrong_token"


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` in lower case, the default port left out (RFC 6454); None if not http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


class CsrfProtection:
    """One per application: the cookie's name and flags, the form-token key, the expected origin."""

    def __init__(self, secret_key: bytes, public_url: str) -> None:
        self.secure = public_url.lower().startswith("https://")
        self.cookie_name = "__Host-gw_csrf" if self.secure else "gw_csrf"
        self.origin = origin_of(public_url)
        self._key = hmac.new(secret_key, KEY_LABEL, hashlib.sha256).digest()

    def forms(self, request: Request) -> CsrfForms:
        """The CSRF tokens of the forms on one page: reuses the browser's cookie, else makes a new one."""
        held = self._cookie(request)
        return CsrfForms(self, held or secrets.token_urlsafe(32), new=held is None)

    def check(self, request: Request, form: FormData, action: str) -> CsrfRefusal | None:
        """None when this POST to ``action`` comes from our own page in this browser, else why not."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site.strip().lower() not in SAME_ORIGIN_FETCHES:
            return CsrfRefusal.CROSS_SITE
        origin = request.headers.get("origin")
        if origin is not None and origin.strip() != "null":
            claimed = origin_of(origin)
            if claimed is None or claimed != self.origin:
                return CsrfRefusal.CROSS_SITE
        cookie = self._cookie(request)
        if cookie is None:
            return CsrfRefusal.MISSING_COOKIE
        sent = form.get(FIELD)
        if not isinstance(sent, str) or not sent:
            return CsrfRefusal.MISSING_TOKEN
        if not hmac.compare_digest(self.sign(cookie, action).encode(), sent.encode("utf-8", "replace")):
            return CsrfRefusal.WRONG_TOKEN
        return None

    def sign(self, cookie: str, action: str) -> str:
        mac = hmac.new(self._key, action.encode() + b"\0" + cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def _cookie(self, request: Request) -> str | None:
        value = request.cookies.get(self.cookie_name)
        return value if value and COOKIE_VALUE.match(value) else None


class CsrfForms:
    """Hands out form tokens for one response; ``apply`` sets the cookie when one was made and used."""

    def __init__(self, protection: CsrfProtection, cookie: str, *, new: bool) -> None:
        self._protection = protection
        self._cookie = cookie
        self._new = new
        self._used = False

    def token(self, action: str) -> str:
        """The hidden ``csrf_token`` value for a form posting to ``action`` (a path such as ``/activate``)."""
        self._used = True
        return self._protection.sign(self._cookie, action)

    def apply(self, response: Response) -> Response:
        if self._new and self._used:
            response.set_cookie(self._protection.cookie_name, self._cookie, path="/",
                                secure=self._protection.secure, httponly=True, samesite="lax")
        return response
