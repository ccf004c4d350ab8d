"""Security headers on every response (pure ASGI middleware: keeps contextvars intact).

Pages get a strict Content-Security-Policy: scripts and styles only from the gateway itself (no inline
script or style, no ``eval``), images from the gateway or https (an application's logo), forms posting
only to the gateway, no framing. Every response is ``no-store`` unless the route chose its own caching
(the content-hashed assets of ``gateway/pages/assets.py``).
"""

from __future__ import annotations

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
            "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    def __init__(self, app, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        graphql = scope["path"].startswith("/graphql")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                if not graphql:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                else:
                    headers.append((b"content-security-policy", b"frame-ancestors 'none'"))
                if self.production:
                    headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
