"""Connecting to MongoDB and binding the documents."""

from __future__ import annotations

from beanie import init_beanie
from pymongo import AsyncMongoClient

from stores.documents import ALL_DOCUMENTS


def make_client(uri: str, *, timeout_ms: int = 5000) -> AsyncMongoClient:
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 2, 10000),
        uuidRepresentation="standard",
    )


async def bind(client: AsyncMongoClient, database_name: str) -> None:
    """Bind the Beanie documents to a database and create their indexes (idempotent)."""
    await init_beanie(database=client[database_name], document_models=ALL_DOCUMENTS)
