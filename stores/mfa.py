"""Customers' second factors (TOTP secrets encrypted, recovery codes hashed)."""

from __future__ import annotations

from stores.documents import MfaFactorDocument


def _col():
    return MfaFactorDocument.get_pymongo_collection()


async def list_for_customer(customer_id: str) -> list[MfaFactorDocument]:
    """Every factor of a customer, confirmed or not, oldest first."""
    found = await _col().find({"customer_id": customer_id}).sort("created_at", 1).to_list()
    return [MfaFactorDocument.model_validate(raw) for raw in found]


async def delete_for_customer(customer_id: str) -> int:
    result = await _col().delete_many({"customer_id": customer_id})
    return result.deleted_count


async def with_confirmed_factor(customer_ids) -> set[str]:
    """Which of these customers have at least one confirmed factor: one aggregation, one row per such customer."""
    cursor = await _col().aggregate([
        {"$match": {"customer_id": {"$in": list(customer_ids)}, "confirmed": True}},
        {"$group": {"_id": "$customer_id"}},
    ])
    return {row["_id"] for row in await cursor.to_list()}
