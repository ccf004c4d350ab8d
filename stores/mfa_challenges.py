"""Pending second-factor steps (``mfa_challenges``): found by the SHA-256 of their token, expiry checked
in every query (nx-27017 has no reliable TTL), attempts counted in the same write that finds them."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from stores.documents import MfaChallengeDocument


def _col():
    return MfaChallengeDocument.get_pymongo_collection()


async def insert(challenge: MfaChallengeDocument) -> None:
    await _col().insert_one(challenge.model_dump(by_alias=True))


async def replace(challenge: MfaChallengeDocument) -> None:
    """Write a challenge whole, replacing the one with its id (a session's one re-authentication challenge)."""
    await _col().replace_one({"_id": challenge.id}, challenge.model_dump(by_alias=True), upsert=True)


async def find_usable(token_hash: str, now: datetime, max_attempts: int) -> MfaChallengeDocument | None:
    raw = await _col().find_one({"token_hash": token_hash, "expires_at": {"$gt": now},
                                 "attempts": {"$lt": max_attempts}})
    return MfaChallengeDocument.model_validate(raw) if raw else None


async def count_attempt(query: dict, now: datetime, max_attempts: int) -> MfaChallengeDocument | None:
    """Count one attempt on a live challenge that has attempts left (``query`` names it: ``token_hash``
    or ``_id``) and return it as it is after the count; None when there is no such challenge. Counting
    first, in one write, means parallel guesses cannot exceed ``max_attempts``."""
    raw = await _col().find_one_and_update(
        {**query, "expires_at": {"$gt": now}, "attempts": {"$lt": max_attempts}},
        {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER,
    )
    return MfaChallengeDocument.model_validate(raw) if raw else None


async def set_email_code(challenge_id: str, code_hash: str, expires_at_ms: int, now: datetime,
                         max_sends: int) -> bool:
    """Store a new emailed code (replacing the previous one) on a live challenge that has sent fewer than
    ``max_sends`` codes. False otherwise."""
    result = await _col().update_one(
        {"_id": challenge_id, "expires_at": {"$gt": now}, "email_codes_sent": {"$lt": max_sends}},
        {"$set": {"email_code_hash": code_hash, "email_code_expires_at_ms": expires_at_ms},
         "$inc": {"email_codes_sent": 1}},
    )
    return result.modified_count == 1


async def consume(challenge_id: str) -> bool:
    """End a challenge whose code was right, in one delete: of two concurrent right answers exactly one wins."""
    result = await _col().delete_one({"_id": challenge_id})
    return result.deleted_count == 1


async def delete(challenge_id: str) -> None:
    await _col().delete_one({"_id": challenge_id})


async def delete_for_customer(customer_id: str) -> int:
    result = await _col().delete_many({"customer_id": customer_id})
    return result.deleted_count
