from __future__ import annotations

import re
from collections.abc import Sequence

from pymongo.errors import DuplicateKeyError

from stores.documents import CustomerDocument


class DuplicateCustomer(Exception):
    pass


def _col():
    return CustomerDocument.get_pymongo_collection()


async def insert(customer: CustomerDocument) -> None:
    """Insert a new customer; raises DuplicateCustomer when the email or username is taken."""
    try:
        await _col().insert_one(customer.model_dump(by_alias=True))
    except DuplicateKeyError as exc:
        raise DuplicateCustomer() from exc


async def get(customer_id: str) -> CustomerDocument | None:
    raw = await _col().find_one({"_id": customer_id})
    return CustomerDocument.model_validate(raw) if raw else None


async def get_many(ids: Sequence[str]) -> dict[str, CustomerDocument]:
    found = await _col().find({"_id": {"$in": list(ids)}}).to_list()
    return {raw["_id"]: CustomerDocument.model_validate(raw) for raw in found}


async def get_by_normalized_email(store_id: str, email_norm: str) -> CustomerDocument | None:
    raw = await _col().find_one({"store_id": store_id, "email_norm": email_norm})
    return CustomerDocument.model_validate(raw) if raw else None


async def get_by_identifier(store_id: str, identifier_norm: str) -> CustomerDocument | None:
    """Find by normalised email first, then by normalised username."""
    raw = await _col().find_one({"store_id": store_id, "email_norm": identifier_norm})
    if raw is None:
        raw = await _col().find_one({"store_id": store_id, "username_norm": identifier_norm})
    return CustomerDocument.model_validate(raw) if raw else None


async def activate(customer_id: str, now_ms: int) -> bool:
    """Mark a pending customer active and their email verified. False when not pending."""
    result = await _col().update_one(
        {"_id": customer_id, "status": "pending"},
        {"$set": {"status": "active", "email_verified": True, "activated_at_ms": now_ms, "updated_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def set_password_hash(customer_id: str, password_hash: str, now_ms: int) -> None:
    await _col().update_one({"_id": customer_id}, {"$set": {"password_hash": password_hash, "updated_at_ms": now_ms}})


async def page(store_id: str, *, first: int, after: str | None, search: str | None) -> tuple[list[CustomerDocument], bool]:
    """A page of customers in id order; the bool says whether more follow."""
    query: dict = {"store_id": store_id}
    if after:
        query["_id"] = {"$gt": after}
    if search:
        prefix = "^" + re.escape(search)
        query["$or"] = [{"email_norm": {"$regex": prefix}}, {"username_norm": {"$regex": prefix}}]
    found = await _col().find(query).sort("_id", 1).limit(first + 1).to_list()
    docs = [CustomerDocument.model_validate(raw) for raw in found[:first]]
    return docs, len(found) > first


async def count(store_id: str) -> int:
    return await _col().count_documents({"store_id": store_id})
