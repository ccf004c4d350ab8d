"""The outbox: every email before and after sending. A sender holds a message under a lease, and only
the lease holder may record the outcome."""

from __future__ import annotations

from pymongo import ReturnDocument

from stores.documents import OutboxDocument, OutboxStatus

WAITING = [OutboxStatus.PENDING, OutboxStatus.SENDING]


def _col():
    return OutboxDocument.get_pymongo_collection()


async def insert(message: OutboxDocument) -> None:
    await _col().insert_one(message.model_dump(by_alias=True))


async def claim(message_id: str, now_ms: int, lease_ms: int, lease_id: str) -> OutboxDocument | None:
    """Take a waiting message for delivery; an expired lease (a crashed sender) can be taken again."""
    raw = await _col().find_one_and_update(
        {"_id": message_id, "status": {"$in": WAITING}, "lease_until_ms": {"$lt": now_ms}},
        {"$set": {"status": OutboxStatus.SENDING, "lease_until_ms": now_ms + lease_ms, "lease_id": lease_id}},
        return_document=ReturnDocument.AFTER,
    )
    return OutboxDocument.model_validate(raw) if raw else None


async def due_ids(now_ms: int, limit: int = 50) -> list[str]:
    found = await _col().find(
        {"status": {"$in": WAITING}, "next_attempt_ms": {"$lte": now_ms}, "lease_until_ms": {"$lt": now_ms}},
        {"_id": 1},
    ).limit(limit).to_list()
    return [raw["_id"] for raw in found]


async def mark_sent(message_id: str, lease_id: str, now_ms: int) -> bool:
    """Delivered: keep only metadata (the body held a live link). False when we no longer hold the lease."""
    result = await _col().update_one(
        {"_id": message_id, "lease_id": lease_id},
        {"$set": {"status": OutboxStatus.SENT, "sent_at_ms": now_ms, "lease_until_ms": 0, "lease_id": None,
                  "last_error": None},
         "$unset": {"body": ""}},
    )
    return result.modified_count == 1


async def mark_failed(message_id: str, lease_id: str, attempts: int, next_attempt_ms: int, error: str) -> bool:
    """Not delivered this time: waits for ``next_attempt_ms``. False when we no longer hold the lease."""
    result = await _col().update_one(
        {"_id": message_id, "lease_id": lease_id},
        {"$set": {"status": OutboxStatus.PENDING, "attempts": attempts, "next_attempt_ms": next_attempt_ms,
                  "lease_until_ms": 0, "lease_id": None, "last_error": error[:500]}},
    )
    return result.modified_count == 1


async def mark_dead(message_id: str, lease_id: str, reason: str) -> bool:
    """A dead letter: never to be sent (its links expired, or its body cannot be read). The body goes."""
    result = await _col().update_one(
        {"_id": message_id, "lease_id": lease_id},
        {"$set": {"status": OutboxStatus.DEAD, "dead_reason": reason, "lease_until_ms": 0, "lease_id": None},
         "$unset": {"body": ""}},
    )
    return result.modified_count == 1


async def erase(message_id: str, lease_id: str) -> bool:
    """Sent or dead, and asked to leave no record (``erase_when_done``): delete it. False when we no longer
    hold the lease."""
    result = await _col().delete_one({"_id": message_id, "lease_id": lease_id})
    return result.deleted_count == 1


async def pending_count() -> int:
    return await _col().count_documents({"status": {"$in": WAITING}})


async def dead_count() -> int:
    return await _col().count_documents({"status": OutboxStatus.DEAD})
