"""Custom attribute definitions: the attribute schema of each identity store, kept in MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.documents import AttributeDefinitionDocument


class DuplicateAttributeKey(Exception):
    """The store already has a definition (perhaps archived) with this key."""


def _col():
    return AttributeDefinitionDocument.get_pymongo_collection()


def _sorted(found: list[dict]) -> list[AttributeDefinitionDocument]:
    docs = [AttributeDefinitionDocument.model_validate(raw) for raw in found]
    return sorted(docs, key=lambda d: (d.created_at, d.id))


async def insert(definition: AttributeDefinitionDocument) -> None:
    """Raises DuplicateAttributeKey when the store has this key already."""
    try:
        await _col().insert_one(definition.model_dump(by_alias=True))
    except DuplicateKeyError as exc:
        raise DuplicateAttributeKey(definition.key) from exc


async def list_for_store(store_id: str) -> list[AttributeDefinitionDocument]:
    """Every definition of a store, archived ones included, oldest first."""
    return _sorted(await _col().find({"store_id": store_id}).to_list())


async def list_for_stores(store_ids: Sequence[str]) -> dict[str, list[AttributeDefinitionDocument]]:
    """The definitions of several stores in one query, by store id (oldest first)."""
    found = await _col().find({"store_id": {"$in": list(store_ids)}}).to_list()
    grouped: dict[str, list[AttributeDefinitionDocument]] = {}
    for doc in _sorted(found):
        grouped.setdefault(doc.store_id, []).append(doc)
    return grouped


async def get(store_id: str, definition_id: str) -> AttributeDefinitionDocument | None:
    raw = await _col().find_one({"_id": definition_id, "store_id": store_id})
    return AttributeDefinitionDocument.model_validate(raw) if raw else None


async def update(store_id: str, definition_id: str, expected_version: int,
                 changes: dict[str, Any], now_ms: int) -> AttributeDefinitionDocument | None:
    """Apply ``changes`` and bump the version, only if the version is still ``expected_version``.

    Returns the definition afterwards, or None when it does not exist or its version moved on.
    """
    raw = await _col().find_one_and_update(
        {"_id": definition_id, "store_id": store_id, "version": expected_version},
        {"$set": {**changes, "updated_at_ms": now_ms}, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return AttributeDefinitionDocument.model_validate(raw) if raw else None


async def delete(store_id: str, definition_id: str) -> bool:
    result = await _col().delete_one({"_id": definition_id, "store_id": store_id})
    return result.deleted_count == 1


async def archive(store_id: str, definition_id: str, now_ms: int) -> AttributeDefinitionDocument | None:
    """Mark a definition archived (and bump its version); None when it does not exist."""
    raw = await _col().find_one_and_update(
        {"_id": definition_id, "store_id": store_id},
        {"$set": {"archived": True, "updated_at_ms": now_ms}, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return AttributeDefinitionDocument.model_validate(raw) if raw else None
