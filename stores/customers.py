from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.documents import CustomerDocument, CustomerStatus


class DuplicateCustomer(Exception):
    """The email or the username is taken in this store; ``field`` says which (when the server tells)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} taken")
        self.field = field


def _col():
    return CustomerDocument.get_pymongo_collection()


async def insert(customer: CustomerDocument) -> None:
    """Insert a new customer; raises DuplicateCustomer when the email or username is taken."""
    try:
        await _col().insert_one(customer.model_dump(by_alias=True))
    except DuplicateKeyError as exc:
        raise DuplicateCustomer(_duplicate_field(exc)) from exc


def _duplicate_field(exc: DuplicateKeyError) -> str:
    """Which unique index refused the insert: MongoDB names the key pattern, nx-27017 the index
    (``idx_customers_store_id_username_norm``) in its message."""
    details = exc.details or {}
    if details.get("keyPattern"):
        return "username" if "username_norm" in details["keyPattern"] else "email"
    index = str(details.get("errmsg", "")).rpartition("index")[2]  # nx-27017: "... failed: index 'idx_...'"
    return "username" if "username_norm" in index else "email"


async def get(customer_id: str) -> CustomerDocument | None:
    raw = await _col().find_one({"_id": customer_id})
    return CustomerDocument.model_validate(raw) if raw else None


async def get_many(ids: Sequence[str]) -> dict[str, CustomerDocument]:
    found = await _col().find({"_id": {"$in": list(ids)}}).to_list()
    return {raw["_id"]: CustomerDocument.model_validate(raw) for raw in found}


def _in_store(store_id: str, field: str, value: str) -> dict:
    """An equality filter on one of the unique ``(store_id, field)`` indexes.

    Spelled with ``$eq``: nx-27017 gives a plain equality on a field that is not the last one of an
    index an extra "or an array containing it" branch, which stops SQLite from using the index, so
    ``{store_id: s, email_norm: e}`` scanned every customer. ``$eq`` means the same on MongoDB.
    """
    return {"store_id": {"$eq": store_id}, field: {"$eq": value}}


async def get_by_normalized_email(store_id: str, email_norm: str) -> CustomerDocument | None:
    raw = await _col().find_one(_in_store(store_id, "email_norm", email_norm))
    return CustomerDocument.model_validate(raw) if raw else None


async def get_by_identifier(store_id: str, identifier_norm: str) -> CustomerDocument | None:
    """Find by normalised email or username, in one round trip (one index look-up) whether or not it exists.

    A username never contains "@" and an email always does, so an identifier with "@" can only be an
    email (or the username of an account whose username is its email, the same account), one without
    can only be a username: one unique index answers, and at most one customer matches. (An ``$or`` of
    the two made nx-27017 read and decode every customer of the database in Python, per sign-in.)
    """
    field = "email_norm" if "@" in identifier_norm else "username_norm"
    raw = await _col().find_one(_in_store(store_id, field, identifier_norm))
    return CustomerDocument.model_validate(raw) if raw else None


async def activate(customer_id: str, credential_version: int, now_ms: int) -> bool:
    """Mark a pending customer active and their email verified, if their credentials are still those of
    the link (``credential_version``). False otherwise."""
    result = await _col().update_one(
        {"_id": customer_id, "status": CustomerStatus.PENDING, "credential_version": credential_version},
        {"$set": {"status": CustomerStatus.ACTIVE, "email_verified": True, "activated_at_ms": now_ms,
                  "updated_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def set_password(customer_id: str, password_hash: str, expected_version: int, now_ms: int,
                       change_id: str | None = None) -> bool:
    """Replace the password and bump the credential version in one write, only if the version is still
    ``expected_version`` (nobody changed the credentials since it was read); ``change_id`` names this
    change (its notice, ``resolvers.notifications``). False otherwise."""
    result = await _col().update_one(
        {"_id": customer_id, "credential_version": expected_version},
        {"$set": {"password_hash": password_hash, "password_nfkc": True, "updated_at_ms": now_ms,
                  "credential_change_id": change_id},
         "$inc": {"credential_version": 1}},
    )
    return result.modified_count == 1


async def confirm_sign_in(customer_id: str, password_hash: str, credential_version: int, now_ms: int,
                          new_hash: str | None = None) -> bool:
    """Record a sign-in, only if the account is still active with the password hash and credential version
    the sign-in verified; False when any of them changed in between (the sign-in must then not stand).

    ``new_hash`` replaces the stored hash (a rehash with current parameters or of the NFKC form) under the
    same condition, so a rehash can never put back a password that was changed meanwhile.
    """
    changes: dict = {"last_sign_in_at_ms": now_ms}
    if new_hash is not None:
        changes.update(password_hash=new_hash, password_nfkc=True)
    result = await _col().update_one(
        {"_id": customer_id, "status": CustomerStatus.ACTIVE, "password_hash": password_hash,
         "credential_version": credential_version},
        {"$set": changes},
    )
    return result.matched_count == 1


async def disable(customer_id: str, now_ms: int, change_id: str | None = None) -> bool:
    """Disable an account and bump its credential version in one write (``change_id`` names this change,
    see ``resolvers.notifications``). False when it does not exist."""
    result = await _col().update_one(
        {"_id": customer_id},
        {"$set": {"status": CustomerStatus.DISABLED, "updated_at_ms": now_ms, "credential_change_id": change_id},
         "$inc": {"credential_version": 1}},
    )
    return result.matched_count == 1


SEARCH_FIELDS = ("email_norm", "username_norm", "given_name_norm", "family_name_norm")


def _listing_query(store_id: str, *, search: str | None, status: CustomerStatus | None,
                   created_after: datetime | None, created_before: datetime | None) -> dict:
    query: dict = {"store_id": store_id}
    if status is not None:
        query["status"] = status
    if created_after is not None or created_before is not None:
        query["created_at"] = {**({"$gte": created_after} if created_after else {}),
                               **({"$lt": created_before} if created_before else {})}
    if search:
        prefix = "^" + re.escape(search)
        query["$or"] = [{field: {"$regex": prefix}} for field in SEARCH_FIELDS]
    return query


async def page(store_id: str, *, first: int, after: str | None = None, search: str | None = None,
               status: CustomerStatus | None = None, created_after: datetime | None = None,
               created_before: datetime | None = None) -> tuple[list[CustomerDocument], bool]:
    """A page of a store's customers in ``_id`` order, after the id ``after``: ids never change, so a
    customer added meanwhile never shifts a later page (the order is stable, not chronological).
    ``search`` is a normalised prefix of the email, username, given name or family name;
    ``created_after`` inclusive, ``created_before`` exclusive. The bool says whether more follow."""
    query = _listing_query(store_id, search=search, status=status, created_after=created_after,
                           created_before=created_before)
    if after is not None:
        query["_id"] = {"$gt": after}
    found = await _col().find(query).sort("_id", 1).limit(first + 1).to_list()
    docs = [CustomerDocument.model_validate(raw) for raw in found[:first]]
    return docs, len(found) > first


async def count_matching(store_id: str, *, search: str | None = None, status: CustomerStatus | None = None,
                         created_after: datetime | None = None, created_before: datetime | None = None) -> int:
    """How many customers the listing with these filters holds (all pages)."""
    return await _col().count_documents(_listing_query(store_id, search=search, status=status,
                                                       created_after=created_after, created_before=created_before))


async def enable(customer_id: str, status: CustomerStatus, now_ms: int) -> CustomerDocument | None:
    """Set a disabled account's status back to ``status`` (active or pending), cancelling a pending
    deletion in the same write (``deletion_job_id`` and ``deletion_due_at_ms`` cleared: its erasure job,
    when it comes due, finds the account no longer waiting for it, even if it is disabled again later).
    The account afterwards, or None when it does not exist, is not disabled, or its erasure has begun
    (too late to keep it)."""
    raw = await _col().find_one_and_update(
        {"_id": customer_id, "status": CustomerStatus.DISABLED, "erasure_started_at_ms": {"$in": [None]}},
        {"$set": {"status": status, "updated_at_ms": now_ms, "deletion_job_id": None, "deletion_due_at_ms": None}},
        return_document=ReturnDocument.AFTER)
    return CustomerDocument.model_validate(raw) if raw else None


async def count(store_id: str) -> int:
    return await _col().count_documents({"store_id": store_id})


async def update_profile(customer_id: str, store_id: str, set_fields: dict, unset_fields: list[str],
                         now_ms: int) -> CustomerDocument | None:
    """Set and remove profile fields (dotted paths such as ``attributes.tier`` allowed) in one write;
    returns the customer afterwards, or None when no customer of this store has this id.

    No unique index covers these fields (nx-27017 answers a unique-index refusal of
    ``find_one_and_update`` with None, not an error: changes of unique fields go through ``update_one``).
    """
    update: dict = {"$set": {**set_fields, "updated_at_ms": now_ms}}
    if unset_fields:
        update["$unset"] = {name: "" for name in unset_fields}
    raw = await _col().find_one_and_update({"_id": customer_id, "store_id": store_id}, update,
                                           return_document=ReturnDocument.AFTER)
    return CustomerDocument.model_validate(raw) if raw else None


async def change_email(customer_id: str, old_email_norm: str, credential_version: int, fields: dict,
                       now_ms: int) -> bool:
    """Replace the email (``fields``: ``email``, ``email_norm``, perhaps ``username``/``username_norm``)
    of an active customer whose email and credential version are still the ones read, in one write.

    The unique indexes decide at this moment: raises DuplicateCustomer when another account of the
    store holds the address (or the username) now. False when the customer changed meanwhile.
    ``update_one`` on purpose: it reports a unique-index refusal on nx-27017 too.
    """
    try:
        result = await _col().update_one(
            {"_id": customer_id, "status": CustomerStatus.ACTIVE, "email_norm": old_email_norm,
             "credential_version": credential_version},
            {"$set": {**fields, "email_verified": True, "updated_at_ms": now_ms}},
        )
    except DuplicateKeyError as exc:
        raise DuplicateCustomer(_duplicate_field(exc)) from exc
    return result.modified_count == 1


async def has_attribute_value(store_id: str, key: str) -> bool:
    """True when some customer of the store holds a value for the custom attribute ``key``."""
    found = await _col().find_one({"store_id": store_id, f"attributes.{key}": {"$exists": True}}, {"_id": 1})
    return found is not None
