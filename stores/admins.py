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


async def confirm_sign_in(admin_id: str, password_hash: str, credential_version: int, now_ms: int,
                          new_hash: str | None = None) -> bool:
    """Record a sign-in, only if the admin is still enabled with the password hash and credential version
    the sign-in verified (see ``stores.customers.confirm_sign_in``)."""
    changes: dict = {"last_sign_in_at_ms": now_ms}
    if new_hash is not None:
        changes.update(password_hash=new_hash, password_nfkc=True)
    result = await _col().update_one(
        {"_id": admin_id, "disabled": False, "password_hash": password_hash, "credential_version": credential_version},
        {"$set": changes},
    )
    return result.matched_count == 1
