"""Browser sessions for the hosted pages: the same session token as the API's bearer token, in a cookie.

- **Session cookie**: ``__Host-gw_session`` (``Secure``) when ``GATEWAY_PUBLIC_URL`` is https,
  ``gw_session`` on http development; always ``HttpOnly; SameSite=Lax; Path=/``, and it expires when
  the session's absolute lifetime does (the idle timeout is enforced by the server, as for bearer
  tokens). It holds a ``gwc_…`` customer session token, nothing else.
- **Device cookie**: ``__Host-gw_device`` / ``gw_device``, same flags, kept a year: the device token a
  sign-in returns (``resolvers.devices``, OWASP's "device cookie"), sent back with the next sign-in so
  that failures from elsewhere cannot lock the owner out of a browser they used before.

Only page routes read these cookies (:meth:`BrowserSessions.token`); ``/graphql`` never does, so the
API stays bearer-only and needs no CSRF defence. Every page form that changes state carries a CSRF
token (``gateway/csrf.py``).
"""

from __future__ import annotations

import re
from datetime import UTC

from starlette.requests import Request
from starlette.responses import Response

from resolvers.context import Clock, Principal, Rules
from resolvers.sessions import CUSTOMER, MAX_TOKEN, SignedIn, authenticate

TOKEN_SHAPE = re.compile(r"^gwc_[A-Za-z0-9_-]{20,100}$")
DEVICE_SHAPE = re.compile(r"^[A-Za-z0-9_.:-]{10,300}$")
DEVICE_COOKIE_SECONDS = 365 * 24 * 3600


class BrowserSessions:
    """Reads and writes the session and device cookies of one gateway (their names follow the public URL)."""

    def __init__(self, rules: Rules, clock: Clock) -> None:
        self._rules = rules
        self._clock = clock
        self.secure = rules.public_url.lower().startswith("https://")
        prefix = "__Host-" if self.secure else ""
        self.session_cookie = f"{prefix}gw_session"
        self.device_cookie = f"{prefix}gw_device"

    def token(self, request: Request) -> str | None:
        """The session token the browser holds, if it has the shape of a customer token."""
        value = request.cookies.get(self.session_cookie)
        return value if value and len(value) <= MAX_TOKEN and TOKEN_SHAPE.match(value) else None

    def device_token(self, request: Request) -> str | None:
        value = request.cookies.get(self.device_cookie)
        return value if value and DEVICE_SHAPE.match(value) else None

    async def principal(self, request: Request) -> Principal | None:
        """The signed-in customer of this browser (``resolvers.sessions.authenticate``), or None."""
        token = self.token(request)
        principal = await authenticate(self._rules, self._clock, token) if token else None
        return principal if principal is not None and principal.kind == CUSTOMER else None

    def start(self, response: Response, signed_in: SignedIn) -> Response:
        """Hand the browser its new session (and device token); the cookie dies with the session."""
        expires = signed_in.session.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        seconds = max(0, int((expires - self._clock.now()).total_seconds()))
        self._set(response, self.session_cookie, signed_in.token, seconds)
        if signed_in.device_token:
            self._set(response, self.device_cookie, signed_in.device_token, DEVICE_COOKIE_SECONDS)
        return response

    def end(self, response: Response) -> Response:
        """Clear the session cookie (the device cookie stays: it signs nobody in)."""
        response.delete_cookie(self.session_cookie, path="/", secure=self.secure, httponly=True, samesite="lax")
        return response

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure, httponly=True,
                            samesite="lax")
