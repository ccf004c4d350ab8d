"""The floor: what a signed-in `me` costs with no GraphQL, no Beanie/pydantic and no middleware.

Same request bytes as the gateway's `me` (POST, JSON body, bearer token). Two routes:

- ``POST /me``: sha256 of the token, one ``find_one`` on ``sessions`` by ``token_hash``
  with the absolute and idle expiry checks, the at-most-once-a-minute touch, and one
  ``find_one`` on ``customers`` by id (two round trips). This is the floor the targets use.
- ``POST /me-1rt``: the same, but the answer comes from the customer profile copy that
  sessions carry since the "one round trip" change (falls back to the customer read).

The answer is the same JSON shape as the gateway's.

    BENCH_MONGODB_URI=mongodb://127.0.0.1:PORT/?directConnection=true \
    python -m bench.floor --port 8100
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
from datetime import UTC, datetime

import uvicorn
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_TOKEN = 200
TOUCH_INTERVAL_MS = 60_000
IDLE_TTL_MS = 24 * 3600 * 1000

DENIED = {"data": {"me": None}, "errors": [{"message": "You must be signed in.",
                                            "extensions": {"code": "UNAUTHENTICATED"}}]}


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value and len(value) <= MAX_TOKEN else None


async def me(request: Request) -> Response:
    return await _me(request, use_profile_copy=False)


async def me_one_round_trip(request: Request) -> Response:
    return await _me(request, use_profile_copy=True)


async def _me(request: Request, *, use_profile_copy: bool) -> Response:
    json.loads(await request.body() or b"{}")  # read and parse the same JSON body the gateway gets
    db = request.app.state.db
    token = _bearer(request)
    if token is None:
        return JSONResponse(DENIED)
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    session = await db.sessions.find_one(
        {"token_hash": digest, "expires_at": {"$gt": now}, "idle_expires_at_ms": {"$gt": now_ms}})
    if session is None or session["kind"] != "customer":
        return JSONResponse(DENIED)
    if now_ms - session["last_seen_at_ms"] >= TOUCH_INTERVAL_MS:
        await db.sessions.update_one(
            {"_id": session["_id"], "last_seen_at_ms": {"$lt": now_ms - TOUCH_INTERVAL_MS + 1}},
            {"$set": {"last_seen_at_ms": now_ms, "idle_expires_at_ms": now_ms + IDLE_TTL_MS}})
    customer = session.get("profile") if use_profile_copy else None
    if customer is None:
        customer = await db.customers.find_one({"_id": session["subject_id"]})
        if customer is None:
            return JSONResponse(DENIED)
        customer["id"] = customer["_id"]
    return JSONResponse({"data": {"me": {"id": customer["id"], "email": customer["email"],
                                         "givenName": customer.get("given_name"),
                                         "familyName": customer.get("family_name")}}})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(uri: str, database_name: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # The same client options as stores.database.make_client.
        client = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000,
                                  socketTimeoutMS=10000, uuidRepresentation="standard")
        app.state.db = client[database_name]
        try:
            yield
        finally:
            await client.close()

    return Starlette(routes=[Route("/me", me, methods=["POST"]), Route("/me-1rt", me_one_round_trip, methods=["POST"]),
                              Route("/healthz", healthz)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description="floor app for the `me` benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(os.environ["BENCH_MONGODB_URI"], os.environ.get("BENCH_DATABASE_NAME", "identity_gateway"))
    # The same uvicorn options as `identity-gateway serve` (gateway/cli.py) at log level warning.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
