from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from stores.documents import RateCounterDocument


def _col():
    return RateCounterDocument.get_pymongo_collection()


async def increment(counter_id: str, expires_at: datetime) -> int:
    """Add one to a window counter (created on first use) and return the new count."""
    raw = await _col().find_one_and_update(
        {"_id": counter_id},
        {"$inc": {"hits": 1}, "$set": {"expires_at": expires_at}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(raw["hits"])


async def current(counter_id: str) -> int:
    raw = await _col().find_one({"_id": counter_id})
    return int(raw["hits"]) if raw else 0


async def clear(counter_id: str) -> None:
    await _col().delete_one({"_id": counter_id})
