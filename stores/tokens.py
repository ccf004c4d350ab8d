"""Emailed one-time link tokens: at most one per (purpose, subject), found by the SHA-256 of the token."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from stores.documents import OneTimeTokenDocument


def _col():
    return OneTimeTokenDocument.get_pymongo_collection()


def link_id(purpose: str, subject_id: str) -> str:
    return f"{purpose}:{subject_id}"


async def issue(token: OneTimeTokenDocument) -> None:
    """Store a new link, replacing (so revoking) any earlier link of the same purpose for the same subject.

    One write: of two concurrent issues exactly one link survives, whichever wrote last.
    """
    await _col().replace_one({"_id": token.id}, token.model_dump(by_alias=True), upsert=True)


def _usable(token_hash: str, purpose: str, now: datetime) -> dict:
    return {"token_hash": token_hash, "purpose": purpose, "used": False, "expires_at": {"$gt": now}}


async def consume_token(token_hash: str, purpose: str, now: datetime, now_ms: int) -> OneTimeTokenDocument | None:
    """Atomically mark an unused, unexpired token of this purpose used; None if there is none."""
    raw = await _col().find_one_and_update(
        _usable(token_hash, purpose, now), {"$set": {"used": True, "used_at_ms": now_ms}},
        return_document=ReturnDocument.BEFORE,
    )
    return OneTimeTokenDocument.model_validate(raw) if raw else None


async def find_usable(token_hash: str, purpose: str, now: datetime) -> OneTimeTokenDocument | None:
    raw = await _col().find_one(_usable(token_hash, purpose, now))
    return OneTimeTokenDocument.model_validate(raw) if raw else None


async def get(token_hash: str) -> OneTimeTokenDocument | None:
    """A token whatever its state (used, expired): only to tell a link's holder what already happened."""
    raw = await _col().find_one({"token_hash": token_hash})
    return OneTimeTokenDocument.model_validate(raw) if raw else None



async def revoke(purpose: str, subject_id: str) -> bool:
    """Remove a subject's link of this purpose, used or not; False when there was none."""
    result = await _col().delete_one({"_id": link_id(purpose, subject_id)})
    return result.deleted_count == 1
