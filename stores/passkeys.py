"""Customers' passkeys (``passkeys``), and the count of them on the customer that the last-login-method
rule conditions on (``CustomerDocument.passkey_count``).

A passkey is also one of the customer's second factors: an ``MfaFactorDocument`` of type PASSKEY with the
passkey's id stands for it in ``mfa_factors`` (so every reader of factors sees it with no extra query).
The order of writes keeps the two safe in a crash: on adding, the passkey is written first, then the
count, then the factor; on removing, the count first (conditionally), then the factor, then the passkey.
So a count never exceeds the passkeys that exist (it can only refuse a removal too many), and a factor
never stands for a passkey that does not exist.
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.documents import CustomerDocument, FactorType, MfaFactorDocument, PasskeyDocument


class DuplicateCredential(Exception):
    """This authenticator's credential is registered already (to this customer or another)."""


def _col():
    return PasskeyDocument.get_pymongo_collection()


def _customers():
    return CustomerDocument.get_pymongo_collection()


def _factors():
    return MfaFactorDocument.get_pymongo_collection()


def count_is(count: int) -> dict:
    """The condition "the customer has ``count`` passkeys counted": a customer written before passkeys
    existed has no ``passkey_count`` (``{"$in": [None]}`` matches null or missing on nx-27017 as on MongoDB)."""
    return {"$in": [count, None]} if count == 0 else count


async def add(passkey: PasskeyDocument) -> None:
    """Store a new passkey, count it as a way in, and make it one of the customer's second factors.
    DuplicateCredential when its credential id is registered already (the unique index decides)."""
    try:
        await _col().insert_one(passkey.model_dump(by_alias=True))
    except DuplicateKeyError:
        raise DuplicateCredential() from None
    await _customers().update_one({"_id": passkey.customer_id},
                                  {"$inc": {"passkey_count": 1}, "$set": {"updated_at_ms": passkey.updated_at_ms}})
    factor = MfaFactorDocument(id=passkey.id, customer_id=passkey.customer_id, type=FactorType.PASSKEY,
                               confirmed=True, created_at=passkey.created_at)
    await _factors().replace_one({"_id": factor.id}, factor.model_dump(by_alias=True), upsert=True)


async def list_for_customer(customer_id: str) -> list[PasskeyDocument]:
    """A customer's passkeys, oldest first."""
    found = await _col().find({"customer_id": customer_id}).sort("created_at", 1).to_list()
    return [PasskeyDocument.model_validate(raw) for raw in found]


async def get(customer_id: str, passkey_id: str) -> PasskeyDocument | None:
    """One of this customer's passkeys; None for an unknown id and for another customer's alike."""
    raw = await _col().find_one({"_id": passkey_id, "customer_id": customer_id})
    return PasskeyDocument.model_validate(raw) if raw else None


async def get_by_credential_id(credential_id: str) -> PasskeyDocument | None:
    raw = await _col().find_one({"credential_id": credential_id})
    return PasskeyDocument.model_validate(raw) if raw else None


async def rename(customer_id: str, passkey_id: str, name: str, now_ms: int) -> PasskeyDocument | None:
    raw = await _col().find_one_and_update({"_id": passkey_id, "customer_id": customer_id},
                                           {"$set": {"name": name, "updated_at_ms": now_ms}},
                                           return_document=ReturnDocument.AFTER)
    return PasskeyDocument.model_validate(raw) if raw else None


async def record_use(passkey_id: str, stored_count: int, new_count: int, backed_up: bool, now_ms: int) -> bool:
    """Record a verified use. When the authenticator counts (either count non-zero), the new count must be
    above the stored one, in the same write: of two uses with one counter value at most one stands, and a
    counter that went back (a cloned authenticator) matches nothing. False then."""
    changes = {"$set": {"sign_count": new_count, "backed_up": backed_up, "last_used_at_ms": now_ms}}
    if new_count == 0 and stored_count == 0:  # an authenticator without a counter (most synced passkeys)
        result = await _col().update_one({"_id": passkey_id, "sign_count": 0}, changes)
    else:
        result = await _col().update_one({"_id": passkey_id, "sign_count": {"$lt": new_count}}, changes)
    return result.matched_count == 1


async def uncount(customer_id: str, *, expected_count: int, expected_identities: int,
                  expected_password_hash: str | None, now_ms: int) -> bool:
    """Take one passkey off the customer's ways in, only if their ways in are still those the caller counted:
    ``expected_count`` passkeys, as many linked identities, the same password hash (None: none). So of two
    concurrent removals that would together leave no way in, at most one passes. False when nothing matched."""
    result = await _customers().update_one(
        {"_id": customer_id, "passkey_count": count_is(expected_count),
         "linked_identities": {"$size": expected_identities},
         "password_hash": {"$in": [expected_password_hash]}},
        {"$inc": {"passkey_count": -1}, "$set": {"updated_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def recount(customer_id: str, now_ms: int) -> None:
    """Give back a count taken by :func:`uncount` for a passkey that a concurrent removal deleted first."""
    await _customers().update_one({"_id": customer_id}, {"$inc": {"passkey_count": 1}, "$set": {"updated_at_ms": now_ms}})


async def delete(customer_id: str, passkey_id: str) -> PasskeyDocument | None:
    """Delete the passkey and the second factor standing for it; the passkey, or None when it was gone."""
    await _factors().delete_one({"_id": passkey_id, "customer_id": customer_id, "type": FactorType.PASSKEY})
    raw = await _col().find_one_and_delete({"_id": passkey_id, "customer_id": customer_id})
    return PasskeyDocument.model_validate(raw) if raw else None


async def delete_for_customer(customer_id: str, now_ms: int) -> int:
    """Every passkey of a customer (a helpdesk MFA reset): the count goes to 0 first, then the passkeys."""
    await _customers().update_one({"_id": customer_id}, {"$set": {"passkey_count": 0, "updated_at_ms": now_ms}})
    await _factors().delete_many({"customer_id": customer_id, "type": FactorType.PASSKEY})
    result = await _col().delete_many({"customer_id": customer_id})
    return result.deleted_count
