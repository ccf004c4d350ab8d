"""The code half of an emailed sign-in (``resolvers/email_sign_in.py``): it lives on the sign-in link's
document in ``one_time_tokens`` (``code_hash``, ``code_attempts``), so using either the link or the code
uses up both (``used``)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from stores.documents import OneTimeTokenDocument
from stores.tokens import link_id


def _col():
    return OneTimeTokenDocument.get_pymongo_collection()


async def count_code_attempt(purpose: str, subject_id: str, now: datetime,
                             max_attempts: int) -> OneTimeTokenDocument | None:
    """Count one code attempt on the subject's live link that has attempts left, in the write that finds it,
    and return it as it is after the count; None when there is none (so parallel guesses cannot exceed
    ``max_attempts``)."""
    raw = await _col().find_one_and_update(
        {"_id": link_id(purpose, subject_id), "used": False, "expires_at": {"$gt": now},
         "code_attempts": {"$lt": max_attempts}, "code_hash": {"$type": "string"}},
        {"$inc": {"code_attempts": 1}}, return_document=ReturnDocument.AFTER)
    return OneTimeTokenDocument.model_validate(raw) if raw else None


async def use_code(purpose: str, subject_id: str, code_hash: str, now: datetime, now_ms: int) -> bool:
    """Use the link up by its right code, in one conditional write: of two right answers exactly one wins."""
    result = await _col().update_one(
        {"_id": link_id(purpose, subject_id), "used": False, "expires_at": {"$gt": now}, "code_hash": code_hash},
        {"$set": {"used": True, "used_at_ms": now_ms}})
    return result.modified_count == 1


async def end(purpose: str, subject_id: str, now_ms: int) -> None:
    """End the link and its code (the last wrong code was tried)."""
    await _col().update_one({"_id": link_id(purpose, subject_id)}, {"$set": {"used": True, "used_at_ms": now_ms}})
