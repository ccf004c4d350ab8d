from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from stores.documents import AdminDocument


class DuplicateAdmin(Exception):
    pass


def _col():
    return AdminDocument.get_pymongo_collection()


async def insert(admin: AdminDocument) -> None:
    try:
        await _col().insert_one(admin.model_dump(by_alias=True))
    except DuplicateKeyError as exc:
        raise DuplicateAdmin() from exc


async def get(admin_id: str) -> AdminDocument | None:
    raw = await _col().find_one({"_id": admin_id})
    return AdminDocument.model_validate(raw) if raw else None


async def get_by_normalized_email(email_norm: str) -> AdminDocument | None:
    raw = await _col().find_one({"email_norm": email_norm})
    return AdminDocument.model_validate(raw) if raw else None


async def set_password_hash(admin_id: str, password_hash: str) -> None:
    await _col().update_one({"_id": admin_id}, {"$set": {"password_hash": password_hash}})
