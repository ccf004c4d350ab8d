"""Linked (social) identities, kept on the customer document (``CustomerDocument.linked_identities``)."""

from __future__ import annotations

from stores.documents import CustomerDocument, LinkedIdentity
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
