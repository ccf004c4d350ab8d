"""Connecting to MongoDB and binding the documents.

Beanie binds documents once per process, so a process shares one client per URI
between everything that runs in it (several apps in tests, the CLI); the client
closes when its last user lets go.
"""

from __future__ import annotations

from beanie import init_beanie
from pymongo import AsyncMongoClient

from stores.documents import ALL_DOCUMENTS

_shared: dict[str, list] = {}  # uri -> [client, users]


def make_client(uri: str, *, timeout_ms: int = 5000) -> AsyncMongoClient:
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 2, 10000),
        uuidRepresentation="standard",
    )


def open_client(uri: str) -> AsyncMongoClient:
    entry = _shared.get(uri)
    if entry is None:
        entry = _shared[uri] = [make_client(uri), 0]
    entry[1] += 1
    return entry[0]


async def close_client(uri: str) -> None:
    entry = _shared.get(uri)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _shared[uri]
        await entry[0].close()


async def bind(client: AsyncMongoClient, database_name: str) -> None:
    """Bind the Beanie documents to a database and create their indexes (idempotent)."""
    await init_beanie(database=client[database_name], document_models=ALL_DOCUMENTS)
