"""Linked (social) identities, kept on the customer document (``CustomerDocument.linked_identities``), and
the claims that keep one provider identity with at most one customer of a store
(``LinkedIdentityClaimDocument``)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from stores.documents import CustomerDocument, LinkedIdentity, LinkedIdentityClaimDocument
from stores.passkeys import count_is


def _col():
    return CustomerDocument.get_pymongo_collection()


ADD_ATTEMPTS = 5


async def add_linked_identity(customer_id: str, identity: LinkedIdentity) -> bool:
    """Link a provider's identity to the account. False when the customer does not exist.

    nx-27017 stores a document given to ``$push`` as a JSON string, so the whole list is written with
    ``$set``, on condition that it still has the length just read (a concurrent change makes it read again).
    """
    for _ in range(ADD_ATTEMPTS):
        raw = await _col().find_one({"_id": customer_id}, {"linked_identities": 1})
        if raw is None:
            return False
        current = raw.get("linked_identities") or []
        result = await _col().update_one(
            {"_id": customer_id, "linked_identities": {"$size": len(current)}},
            {"$set": {"linked_identities": [*current, identity.model_dump()]}},
        )
        if result.matched_count == 1:
            return True
    raise RuntimeError("linking an identity kept racing with other changes")


async def remove_linked_identity(customer_id: str, identity_id: str, *, expected_count: int,
                                 expected_password_hash: str | None, now_ms: int, expected_passkeys: int = 0) -> bool:
    """Unlink one identity, only if the customer's ways in are still those the caller counted: as many
    linked identities (``expected_count``), the same password hash (None: no password) and as many passkeys
    (``expected_passkeys``, see ``stores.passkeys``).

    So of two concurrent removals that would together leave no way in, at most one succeeds. False when
    nothing matched (the identity is gone, or the ways in changed: read again).
    """
    result = await _col().update_one(
        {"_id": customer_id, "linked_identities.id": identity_id,
         "linked_identities": {"$size": expected_count},
         # {"$in": [None]} matches a stored null on nx-27017 as on MongoDB ({"field": None} does not there).
         "password_hash": {"$in": [expected_password_hash]},
         "passkey_count": count_is(expected_passkeys)},
        {"$pull": {"linked_identities": {"id": identity_id}}, "$set": {"updated_at_ms": now_ms}},
    )
    return result.modified_count == 1


# -- claims: one customer per provider identity and store ---------------------------------------------

def _claims():
    return LinkedIdentityClaimDocument.get_pymongo_collection()


def claim_id(store_id: str, issuer: str, subject: str) -> str:
    """The claim's ``_id``: SHA-256 of store, issuer and subject (NUL-separated, so no two triples collide)."""
    return hashlib.sha256("\0".join((store_id, issuer, subject)).encode("utf-8", "surrogatepass")).hexdigest()


async def get_claim(identity_claim_id: str) -> LinkedIdentityClaimDocument | None:
    raw = await _claims().find_one({"_id": identity_claim_id})
    return LinkedIdentityClaimDocument.model_validate(raw) if raw else None


async def claim(identity_claim_id: str, customer_id: str, store_id: str, now: datetime) -> str | None:
    """Claim a provider identity for ``customer_id``. Returns None when the claim is theirs now (new, or
    already theirs), else the id of the customer who holds it (the caller checks whether that claim is
    stale and, if so, calls :func:`take_over`)."""
    try:
        await _claims().insert_one(LinkedIdentityClaimDocument(
            id=identity_claim_id, customer_id=customer_id, store_id=store_id, created_at=now).model_dump(by_alias=True))
        return None
    except DuplicateKeyError:
        held = await get_claim(identity_claim_id)
        if held is None:  # released meanwhile: try once more
            return await claim(identity_claim_id, customer_id, store_id, now)
        return None if held.customer_id == customer_id else held.customer_id


async def take_over(identity_claim_id: str, stale_customer_id: str, customer_id: str) -> bool:
    """Replace a stale claim (its customer no longer has the identity, or is gone), only if it still
    names ``stale_customer_id``. False when it changed meanwhile."""
    result = await _claims().update_one({"_id": identity_claim_id, "customer_id": stale_customer_id},
                                        {"$set": {"customer_id": customer_id}})
    return result.matched_count == 1


async def release(identity_claim_id: str, customer_id: str) -> None:
    """Drop the customer's claim (after the identity left their account); someone else's stays."""
    await _claims().delete_one({"_id": identity_claim_id, "customer_id": customer_id})
