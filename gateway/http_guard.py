"""Refuses oversized bodies on every request, and risky POSTs to /graphql before any GraphQL work.

Pure ASGI middleware: keeps contextvars intact.

- **Body size** (any path and method): a body over ``max_body_bytes`` (``GATEWAY_MAX_BODY_BYTES``)
  is answered 413. A ``Content-Length`` over the limit is refused before a byte is read; a body
  without one (chunked) is counted as it arrives and refused as soon as the count passes the
  limit. Nothing beyond the limit is ever held in memory.
- Only ``application/json`` bodies on /graphql. ``text/plain``, ``application/x-www-form-urlencoded``
  and ``multipart/form-data`` are the content types a browser sends cross-site without a CORS
  preflight (a "simple request"), so refusing them shuts the classic CSRF door even if the gateway
  ever learns cookie authentication. Today it authenticates with bearer tokens only.
- No batched operations: a JSON array body would run many operations under one set of per-request
  limits (aliases, tokens, depth), so it is refused whatever Strawberry's batching setting says.

Refusals on /graphql answer in GraphQL's error shape with ``extensions.code = "BAD_REQUEST"``;
elsewhere in plain text.
"""

from __future__ import annotations

import json

JSON_MEDIA_TYPE = "application/json"
WHITESPACE = b" \t\r\n"
UTF8_BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = "The request body is too large."


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def media_type(headers: list[tuple[bytes, bytes]]) -> str:
    return (header(headers, b"content-type") or "").split(";", 1)[0].strip().lower()


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length, or None when absent or not a number (the server rejects those itself)."""
    value = (header(headers, b"content-length") or "").strip()
    return int(value) if value.isdigit() else None


def is_graphql_path(path: str) -> bool:
    return path.rstrip("/").endswith("/graphql")


class BodyTooLarge(Exception):
    pass


async def read_body(receive, limit: int) -> list[dict]:
    """Every message up to the end of the body, or BodyTooLarge as soon as the body passes ``limit`` bytes."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return messages


def first_meaningful_byte(messages: list[dict]) -> bytes:
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request").lstrip(WHITESPACE)
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM):].lstrip(WHITESPACE)
    return body[:1]


class HttpGuard:
    def __init__(self, app, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        graphql = is_graphql_path(scope["path"])
        length = declared_length(headers)
        if length is not None and length > self.max_body_bytes:
            return await refuse(send, 413, TOO_LARGE, graphql=graphql)

        graphql_post = graphql and scope["method"] == "POST"
        if graphql_post and media_type(headers) != JSON_MEDIA_TYPE:
            return await refuse(send, 415, "Send GraphQL requests as application/json.")

        # Read the whole body (at most the limit), then replay it to the application.
        try:
            buffered = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            return await refuse(send, 413, TOO_LARGE, graphql=graphql)

        if graphql_post and first_meaningful_byte(buffered) == b"[":
            return await refuse(send, 400, "Batched operations are not supported: send one operation per request.")

        async def replay():
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def graphql_refusal(message: str) -> bytes:
    """The body of an HTTP-level refusal on /graphql: GraphQL's error shape, code BAD_REQUEST."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}).encode()


async def refuse(send, status: int, message: str, *, graphql: bool = True) -> None:
    if graphql:
        body, content_type = graphql_refusal(message), b"application/json"
    else:
        body, content_type = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
