from __future__ import annotations

from datetime import datetime

from stores.documents import OneTimeTokenDocument


def _col():
    return OneTimeTokenDocument.get_pymongo_collection()


async def insert(token: OneTimeTokenDocument) -> None:
    await _col().insert_one(token.model_dump(by_alias=True))


async def consume_token(token_hash: str, purpose: str, now: datetime, now_ms: int) -> OneTimeTokenDocument | None:
    """Atomically mark an unused, unexpired token of this purpose used; None if there is none."""
    raw = await _col().find_one_and_update(
        {"_id": token_hash, "purpose": purpose, "used": False, "expires_at": {"$gt": now}},
        {"$set": {"used": True, "used_at_ms": now_ms}},
    )
    return OneTimeTokenDocument.model_validate(raw) if raw else None


async def find_usable(token_hash: str, purpose: str, now: datetime) -> OneTimeTokenDocument | None:
    raw = await _col().find_one({"_id": token_hash, "purpose": purpose, "used": False, "expires_at": {"$gt": now}})
    return OneTimeTokenDocument.model_validate(raw) if raw else None


async def invalidate_for_subject(subject_id: str, purpose: str, now_ms: int) -> int:
    """Mark every unused token of this purpose for this subject used (a newer one supersedes them)."""
    result = await _col().update_many(
        {"subject_id": subject_id, "purpose": purpose, "used": False},
        {"$set": {"used": True, "used_at_ms": now_ms}},
    )
    return result.modified_count


async def get(token_hash: str) -> OneTimeTokenDocument | None:
    """A token whatever its state (used, expired): only to tell a link's holder what already happened."""
    raw = await _col().find_one({"_id": token_hash})
    return OneTimeTokenDocument.model_validate(raw) if raw else None
