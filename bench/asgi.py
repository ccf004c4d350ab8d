"""Calling an ASGI app directly (no HTTP client in between), for counting and profiling in-process."""

from __future__ import annotations

import json


async def call(app, method: str, path: str, *, headers: dict[str, str] | None = None,
               body: bytes = b"") -> tuple[int, bytes]:
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 80), "state": {}}
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def graphql(app, query: str, token: str | None = None, variables: dict | None = None) -> dict:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    status, body = await call(app, "POST", "/graphql", headers=headers,
                              body=json.dumps({"query": query, "variables": variables or {}}).encode())
    if status != 200:
        raise RuntimeError(f"in-process GraphQL answered {status}: {body[:300]!r}")
    return json.loads(body)
