"""Partner API keys, found by the SHA-256 of the key."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from stores.documents import ApiKeyDocument


def _col():
    return ApiKeyDocument.get_pymongo_collection()


def _usable(key_hash: str, now: datetime) -> dict:
    # One explicit $and: nx-27017 loses the other conditions next to a $or that compares datetimes
    # (docs/architecture.md, quirks).
    return {"$and": [{"key_hash": key_hash}, {"revoked_at_ms": None},
                     {"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}]}


async def insert(key: ApiKeyDocument) -> None:
    await _col().insert_one(key.model_dump(by_alias=True))


async def find_usable_by_hash(key_hash: str, now: datetime) -> dict | None:
    """The raw key document (the hot path skips model validation) if it is neither revoked nor expired."""
    return await _col().find_one(_usable(key_hash, now), {"key_hash": 0})


async def find_by_hash(key_hash: str) -> ApiKeyDocument | None:
    """The key with this hash, usable or not (to tell a refused use of a known key)."""
    raw = await _col().find_one({"key_hash": key_hash})
    return ApiKeyDocument.model_validate(raw) if raw else None


async def claim_refusal_log(key_id: str, now_ms: int, not_since_ms: int) -> bool:
    """True (and remembered) when no refused use of this key was audited since ``not_since_ms``: one
    event an interval, however often a dead key is tried, on any instance."""
    result = await _col().update_one(
        {"$and": [{"_id": key_id}, {"$or": [{"refused_logged_at_ms": {"$in": [None]}},
                                            {"refused_logged_at_ms": {"$lt": not_since_ms}}]}]},
        {"$set": {"refused_logged_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def get(key_id: str) -> ApiKeyDocument | None:
    raw = await _col().find_one({"_id": key_id})
    return ApiKeyDocument.model_validate(raw) if raw else None


async def list_all() -> list[ApiKeyDocument]:
    """Every key, newest first (revoked and expired ones included)."""
    found = await _col().find({}).sort([("created_at", -1), ("_id", -1)]).to_list()
    return [ApiKeyDocument.model_validate(raw) for raw in found]


async def revoke(key_id: str, now_ms: int, revoked_by: str) -> ApiKeyDocument | None:
    """Revoke a key that is not revoked yet; the key as written, or None (unknown, or revoked already)."""
    raw = await _col().find_one_and_update(
        {"_id": key_id, "revoked_at_ms": None},
        {"$set": {"revoked_at_ms": now_ms, "revoked_by": revoked_by}}, return_document=ReturnDocument.AFTER,
    )
    return ApiKeyDocument.model_validate(raw) if raw else None


async def revoke_created_by(admin_id: str, now_ms: int, revoked_by: str) -> int:
    """Revoke every live key an admin made; how many."""
    result = await _col().update_many({"created_by": admin_id, "revoked_at_ms": None},
                                      {"$set": {"revoked_at_ms": now_ms, "revoked_by": revoked_by}})
    return result.modified_count


async def touch(key_id: str, now_ms: int, not_since_ms: int) -> None:
    """Record use, at most once per interval: only when last used before ``not_since_ms``."""
    await _col().update_one(
        {"$and": [{"_id": key_id}, {"$or": [{"last_used_at_ms": None}, {"last_used_at_ms": {"$lt": not_since_ms}}]}]},
        {"$set": {"last_used_at_ms": now_ms}},
    )
