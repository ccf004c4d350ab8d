"""Security headers on every response (pure ASGI middleware: keeps contextvars intact)."""

from __future__ import annotations

PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; "
            "connect-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'")


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
                    (b"cache-control", b"no-store"),
                ]
                if not graphql:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                else:
                    headers.append((b"content-security-policy", b"frame-ancestors 'none'"))
                if self.production:
                    headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
