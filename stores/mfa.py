"""Customers' second factors (TOTP secrets encrypted, recovery codes hashed)."""

from __future__ import annotations

from stores.documents import FactorType, MfaFactorDocument


def _col():
    return MfaFactorDocument.get_pymongo_collection()


async def list_for_customer(customer_id: str) -> list[MfaFactorDocument]:
    """Every factor of a customer, confirmed or not, oldest first."""
    found = await _col().find({"customer_id": customer_id}).sort("created_at", 1).to_list()
    return [MfaFactorDocument.model_validate(raw) for raw in found]


async def delete_for_customer(customer_id: str) -> int:
    result = await _col().delete_many({"customer_id": customer_id})
    return result.deleted_count


async def list_for_customers(customer_ids) -> dict[str, list[MfaFactorDocument]]:
    """Every factor of each customer, oldest first, in one query (the DataLoader's batch)."""
    found = await _col().find({"customer_id": {"$in": list(customer_ids)}}).sort("created_at", 1).to_list()
    grouped: dict[str, list[MfaFactorDocument]] = {}
    for raw in found:
        grouped.setdefault(raw["customer_id"], []).append(MfaFactorDocument.model_validate(raw))
    return grouped


async def insert(factor: MfaFactorDocument) -> None:
    await _col().insert_one(factor.model_dump(by_alias=True))


async def replace(factor: MfaFactorDocument) -> None:
    """Write a factor whole, replacing the one with its id (a customer's one set of recovery codes)."""
    await _col().replace_one({"_id": factor.id}, factor.model_dump(by_alias=True), upsert=True)


async def get(customer_id: str, factor_id: str) -> MfaFactorDocument | None:
    """A factor of this customer; None for an unknown id and for another customer's alike."""
    raw = await _col().find_one({"_id": factor_id, "customer_id": customer_id})
    return MfaFactorDocument.model_validate(raw) if raw else None


async def delete(customer_id: str, factor_id: str) -> MfaFactorDocument | None:
    """Remove one of this customer's factors and return it; None when they have none with this id."""
    raw = await _col().find_one_and_delete({"_id": factor_id, "customer_id": customer_id})
    return MfaFactorDocument.model_validate(raw) if raw else None


async def delete_unconfirmed(customer_id: str, factor_type: FactorType) -> int:
    """Drop enrolments of this type that were started and never confirmed."""
    result = await _col().delete_many({"customer_id": customer_id, "type": factor_type, "confirmed": False})
    return result.deleted_count


async def confirm_totp(customer_id: str, factor_id: str, step: int, now_ms: int) -> bool:
    """Activate an unconfirmed TOTP factor with the time step of the code that proved it; that step (and
    every earlier one) can never be used again. False when there is no such unconfirmed factor."""
    result = await _col().update_one(
        {"_id": factor_id, "customer_id": customer_id, "type": FactorType.TOTP, "confirmed": False},
        {"$set": {"confirmed": True, "last_totp_step": step, "last_used_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def accept_totp_step(factor_id: str, step: int, now_ms: int) -> bool:
    """Record ``step`` as the factor's last accepted time step, only if it is later than the last one:
    of two uses of one code (or of an earlier code), at most one is accepted, in one conditional write."""
    result = await _col().update_one(
        {"_id": factor_id, "type": FactorType.TOTP, "confirmed": True, "last_totp_step": {"$lt": step}},
        {"$set": {"last_totp_step": step, "last_used_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def use_recovery_code(customer_id: str, code_hash: str, now_ms: int) -> bool:
    """Remove one unused recovery code (by its stored hash) in one conditional write: used once, ever."""
    result = await _col().update_one(
        {"customer_id": customer_id, "type": FactorType.RECOVERY_CODE, "recovery_code_hashes": code_hash},
        {"$pull": {"recovery_code_hashes": code_hash}, "$set": {"last_used_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def mark_used(factor_id: str, now_ms: int) -> None:
    await _col().update_one({"_id": factor_id}, {"$set": {"last_used_at_ms": now_ms}})


async def with_confirmed_factor(customer_ids) -> set[str]:
    """Which of these customers have at least one confirmed factor: one aggregation, one row per such customer."""
    cursor = await _col().aggregate([
        {"$match": {"customer_id": {"$in": list(customer_ids)}, "confirmed": True}},
        {"$group": {"_id": "$customer_id"}},
    ])
    return {row["_id"] for row in await cursor.to_list()}
