"""Connecting to MongoDB and binding the documents.

Beanie binds documents once per process, so a process shares one client per URI
between everything that runs in it (several apps in tests, the CLI); the client
closes when its last user disconnects, and the documents go back to the binding
that was in force before.
"""

from __future__ import annotations

import pymongo
from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from stores.documents import ALL_DOCUMENTS

# Listeners given to clients created from now on (tests count commands with these).
COMMAND_LISTENERS: list[CommandListener] = []

_shared: dict[str, list] = {}  # uri -> [client, users]
_bindings: list[tuple[str, str]] = []  # (uri, database name), the last one in force


DEFAULT_TIMEOUT_MS = 3000


def make_client(uri: str, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> AsyncMongoClient:
    """A client that gives up quickly when the database is away (GATEWAY_MONGODB_TIMEOUT_MS).

    Finding a server and connecting take at most ``timeout_ms``; one operation, retries and waiting
    for a pooled connection included, at most twice that (pymongo's client-side operation timeout,
    ``timeoutMS``), so a frozen database cannot hold a request for long.
    """
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        timeoutMS=timeout_ms * 2,
        uuidRepresentation="standard",
        event_listeners=list(COMMAND_LISTENERS),
    )


async def _bind(uri: str, database_name: str) -> None:
    # Index builds may take long on a large collection: no operation time limit (server selection still has one).
    with pymongo.timeout(None):
        await init_beanie(database=_shared[uri][0][database_name], document_models=ALL_DOCUMENTS)


async def connect(uri: str, database_name: str, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> AsyncMongoClient:
    """Open (or share) the client for this URI and bind the documents to the database (idempotent indexes).
    A shared client keeps the timeout of the first user."""
    entry = _shared.get(uri)
    if entry is None:
        entry = _shared[uri] = [make_client(uri, timeout_ms=timeout_ms), 0]
    entry[1] += 1
    _bindings.append((uri, database_name))
    await _bind(uri, database_name)
    return entry[0]


async def disconnect(uri: str, database_name: str) -> None:
    """Let go of the client; the last user closes it. Earlier bindings come back into force."""
    if (uri, database_name) in _bindings:
        index = len(_bindings) - 1 - _bindings[::-1].index((uri, database_name))
        was_current = index == len(_bindings) - 1
        del _bindings[index]
    else:
        was_current = False
    entry = _shared.get(uri)
    if entry is not None:
        entry[1] -= 1
        if entry[1] <= 0:
            del _shared[uri]
            await entry[0].close()
    if was_current and _bindings:
        await _bind(*_bindings[-1])
