"""WebAuthn challenges we issued (``webauthn_challenges``): found by the SHA-256 of the challenge, used up by
one conditional delete (so a replayed challenge fails, on any instance), expiry checked in the query."""

from __future__ import annotations

from datetime import datetime

from stores.documents import WebAuthnCeremony, WebAuthnChallengeDocument


def _col():
    return WebAuthnChallengeDocument.get_pymongo_collection()


async def insert(challenge: WebAuthnChallengeDocument) -> None:
    await _col().insert_one(challenge.model_dump(by_alias=True))


async def consume(challenge_hash: str, ceremony: WebAuthnCeremony, application_id: str,
                  now: datetime) -> WebAuthnChallengeDocument | None:
    """Use a live challenge of this ceremony and application up, in one delete: of two uses exactly one
    gets it. None for an unknown, used, expired or foreign one."""
    raw = await _col().find_one_and_delete({"_id": challenge_hash, "ceremony": ceremony,
                                            "application_id": application_id, "expires_at": {"$gt": now}})
    return WebAuthnChallengeDocument.model_validate(raw) if raw else None

