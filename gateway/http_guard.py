"""Refuses risky POSTs to /graphql before any GraphQL work (pure ASGI middleware: keeps contextvars intact).

- Only ``application/json`` bodies. ``text/plain``, ``application/x-www-form-urlencoded`` and
  ``multipart/form-data`` are the content types a browser sends cross-site without a CORS preflight
  (a "simple request"), so refusing them shuts the classic CSRF door even if the gateway ever
  learns cookie authentication. Today it authenticates with bearer tokens only.
- No batched operations: a JSON array body would run many operations under one set of per-request
  limits (aliases, tokens, depth), so it is refused whatever Strawberry's batching setting says.

Refusals answer in GraphQL's error shape with ``extensions.code = "BAD_REQUEST"``.
"""

from __future__ import annotations

import json

JSON_MEDIA_TYPE = "application/json"
WHITESPACE = b" \t\r\n"
UTF8_BOM = b"\xef\xbb\xbf"


def media_type(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def is_graphql_path(path: str) -> bool:
    return path.rstrip("/").endswith("/graphql")


class HttpGuard:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not is_graphql_path(scope["path"]):
            return await self.app(scope, receive, send)

        if media_type(scope.get("headers", [])) != JSON_MEDIA_TYPE:
            return await refuse(send, 415, "Send GraphQL requests as application/json.")

        # Read just far enough to see the first meaningful byte, then replay what was read.
        buffered: list[dict] = []
        seen = b""
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen = (seen + message.get("body", b"")).lstrip(WHITESPACE)
            if seen.startswith(UTF8_BOM):
                seen = seen[len(UTF8_BOM):].lstrip(WHITESPACE)
            if seen or not message.get("more_body", False):
                break

        if seen.startswith(b"["):
            return await refuse(send, 400, "Batched operations are not supported: send one operation per request.")

        async def replay():
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)


async def refuse(send, status: int, message: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
