"""Fixed-window rate-limit counters, shared by every instance."""

from __future__ import annotations

from pymongo import ReturnDocument

from stores.documents import RateCounterDocument


def _col():
    return RateCounterDocument.get_pymongo_collection()


async def increment(counter_id: str, expires_at_ms: int) -> int:
    """Add one to a window counter (created on first use) and return the new count.

    ``expires_at_ms`` is integer epoch milliseconds: it is written with ``$set`` on every hit, and
    nx-27017 stores a datetime written that way as a string.
    """
    raw = await _col().find_one_and_update(
        {"_id": counter_id},
        {"$inc": {"hits": 1}, "$set": {"expires_at_ms": expires_at_ms}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(raw["hits"])


async def current(counter_id: str) -> int:
    raw = await _col().find_one({"_id": counter_id})
    return int(raw["hits"]) if raw else 0


async def clear(counter_id: str) -> None:
    await _col().delete_one({"_id": counter_id})


async def clear_many(counter_ids: list[str]) -> None:
    """Delete several counters in one round trip."""
    if len(counter_ids) == 1:
        await clear(counter_ids[0])
    elif counter_ids:
        await _col().delete_many({"_id": {"$in": counter_ids}})


async def delete_expired(now_ms: int) -> int:
    """Housekeeping: remove counters whose window has passed. Idempotent; any instance may run it."""
    result = await _col().delete_many({"expires_at_ms": {"$lt": now_ms}})
    return result.deleted_count
