"""Connecting to MongoDB and binding the documents.

Beanie binds documents once per process, so a process shares one client per URI
between everything that runs in it (several apps in tests, the CLI); the client
closes when its last user disconnects, and the documents go back to the binding
that was in force before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pymongo
from beanie import Document, init_beanie
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
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
        database = _shared[uri][0][database_name]
        await init_beanie(database=database, document_models=ALL_DOCUMENTS)
        if await is_nx_27017(database):
            await _drop_ttl_indexes(database)


@dataclass(frozen=True)
class TtlIndex:
    """A TTL index a document declares: MongoDB deletes a document ``seconds`` after its ``field``."""

    document: type[Document]
    field: str
    seconds: int


def ttl_indexes() -> list[TtlIndex]:
    """Every TTL index the documents declare (``expireAfterSeconds`` in ``Settings.indexes``)."""
    found = []
    for document in ALL_DOCUMENTS:
        for index in getattr(document.Settings, "indexes", []):
            spec = index.document if isinstance(index, IndexModel) else {}
            if "expireAfterSeconds" in spec:
                (field, _), = spec["key"].items()
                found.append(TtlIndex(document, field, spec["expireAfterSeconds"]))
    return found


async def is_nx_27017(database: AsyncDatabase) -> bool:
    """Whether the server is nx-27017: its ``buildInfo`` names the process ``nx_27017`` (MongoDB's has no
    ``process`` field)."""
    info = await database.client.admin.command("buildInfo")
    return info.get("process") == "nx_27017"


async def _drop_ttl_indexes(database: AsyncDatabase) -> None:
    """On nx-27017, a TTL index makes every read of its collection purge it first (a scan comparing the
    datetime of every row: database CPU per read in proportion to the collection, docs/architecture.md),
    so the indexes go and :func:`delete_expired` does their work in the housekeeping pass. Every query
    checks expiry itself, so nothing reads an expired document meanwhile."""
    for name in sorted({ttl.document.Settings.name for ttl in ttl_indexes()}):
        collection = database[name]
        # by what the index does, not by its name: nx-27017 names indexes itself (idx_<collection>_<field>)
        for index, spec in (await collection.index_information()).items():
            if "expireAfterSeconds" in spec:
                try:
                    await collection.drop_index(index)
                except OperationFailure:  # already gone (another instance dropped it)
                    pass


async def delete_expired(now: datetime) -> dict[str, int]:
    """Delete what the TTL indexes would have deleted by ``now`` (the housekeeping pass; on MongoDB the
    TTL monitor does it too, so this only comes first). Returns the count per collection, where any."""
    deleted = {}
    for ttl in ttl_indexes():
        cutoff = now - timedelta(seconds=ttl.seconds)
        result = await ttl.document.get_pymongo_collection().delete_many({ttl.field: {"$lt": cutoff}})
        if result.deleted_count:
            deleted[ttl.document.Settings.name] = result.deleted_count
    return deleted


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
