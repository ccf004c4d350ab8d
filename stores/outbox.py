from __future__ import annotations

from stores.documents import OutboxDocument


def _col():
    return OutboxDocument.get_pymongo_collection()


async def insert(message: OutboxDocument) -> None:
    await _col().insert_one(message.model_dump(by_alias=True))


async def claim(message_id: str, now_ms: int, lease_ms: int) -> OutboxDocument | None:
    """Take a due message for delivery; an expired lease (a crashed sender) can be taken again."""
    raw = await _col().find_one_and_update(
        {"_id": message_id, "status": {"$in": ["pending", "sending"]}, "lease_until_ms": {"$lt": now_ms}},
        {"$set": {"status": "sending", "lease_until_ms": now_ms + lease_ms}},
    )
    return OutboxDocument.model_validate(raw) if raw else None


async def due_ids(now_ms: int, limit: int = 50) -> list[str]:
    found = await _col().find(
        {"status": {"$in": ["pending", "sending"]}, "next_attempt_ms": {"$lte": now_ms}, "lease_until_ms": {"$lt": now_ms}},
        {"_id": 1},
    ).limit(limit).to_list()
    return [raw["_id"] for raw in found]


async def mark_sent(message_id: str, now_ms: int) -> None:
    """Delivered: keep only metadata; the bodies held a live link."""
    await _col().update_one(
        {"_id": message_id},
        {"$set": {"status": "sent", "sent_at_ms": now_ms, "lease_until_ms": 0, "last_error": None},
         "$unset": {"subject": "", "html": "", "text": ""}},
    )


async def mark_failed(message_id: str, attempts: int, next_attempt_ms: int, error: str) -> None:
    await _col().update_one(
        {"_id": message_id},
        {"$set": {"status": "pending", "attempts": attempts, "next_attempt_ms": next_attempt_ms,
                  "lease_until_ms": 0, "last_error": error[:500]}},
    )


async def pending_count() -> int:
    return await _col().count_documents({"status": {"$in": ["pending", "sending"]}})
