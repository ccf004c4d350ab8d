"""Administrators, and the guard that keeps at least one active owner (``OwnerGuardDocument``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.documents import AdminDocument, AdminStatus, OwnerGuardDocument

OWNER = "owner"
GUARD_ID = "active-owners"


class DuplicateAdmin(Exception):
    pass


def _col():
    return AdminDocument.get_pymongo_collection()


def _guard():
    return OwnerGuardDocument.get_pymongo_collection()


def _version_is(version: int) -> dict[str, Any]:
    """The condition "the admin is still at this version" (admins written before versions have none: 0)."""
    return {"version": {"$in": [0, None]}} if version == 0 else {"version": version}


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


async def list_all() -> list[AdminDocument]:
    """Every admin, oldest first (admins are few: no paging)."""
    found = await _col().find({}).sort([("created_at", 1), ("_id", 1)]).to_list()
    return [AdminDocument.model_validate(raw) for raw in found]


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


async def change(admin_id: str, version: int, changes: dict[str, Any], *, now_ms: int,
                 bump_credentials: bool = False) -> AdminDocument | None:
    """Apply a role or status change, only if the admin is still at ``version``; the version grows by one
    (and the credential version too with ``bump_credentials``). The admin as written, or None when
    it changed since it was read (or does not exist)."""
    increments = {"version": 1, **({"credential_version": 1} if bump_credentials else {})}
    raw = await _col().find_one_and_update(
        {"_id": admin_id, **_version_is(version)},
        {"$set": {**changes, "updated_at_ms": now_ms}, "$inc": increments},
        return_document=ReturnDocument.AFTER,
    )
    return AdminDocument.model_validate(raw) if raw else None


async def accept_invitation(admin_id: str, credential_version: int, password_hash: str,
                            now_ms: int) -> AdminDocument | None:
    """Set the first password of an invited admin and make it active, in one write, only if it is still
    invited with the credential version the invitation was issued under. The admin as written, or None."""
    raw = await _col().find_one_and_update(
        {"_id": admin_id, "status": AdminStatus.INVITED, "credential_version": credential_version},
        {"$set": {"password_hash": password_hash, "password_nfkc": True, "status": AdminStatus.ACTIVE,
                  "disabled": False, "updated_at_ms": now_ms},
         "$inc": {"version": 1, "credential_version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return AdminDocument.model_validate(raw) if raw else None


async def set_password(admin_id: str, credential_version: int, password_hash: str, now_ms: int) -> bool:
    """Replace an active admin's password and bump its credential version in one write, only if the
    version is still ``credential_version``."""
    result = await _col().update_one(
        {"_id": admin_id, "status": AdminStatus.ACTIVE, "credential_version": credential_version},
        {"$set": {"password_hash": password_hash, "password_nfkc": True, "updated_at_ms": now_ms},
         "$inc": {"credential_version": 1}},
    )
    return result.modified_count == 1


def is_active_owner(admin: AdminDocument) -> bool:
    return admin.role == OWNER and admin.status == AdminStatus.ACTIVE


# -- the owner guard ------------------------------------------------------------------------------


class GuardRemoval(StrEnum):
    REMOVED = "removed"  # the admin no longer counts as an owner in the guard
    LAST = "last"  # no other owner is in the guard
    STALE = "stale"  # the admin changed since it was read: read it again


def _guard_where(admin_id: str, version: int, *conditions: dict[str, Any]) -> dict[str, Any]:
    """The guard, if no update for ``version`` or a later version of this admin reached it yet.

    One explicit $and: nx-27017 can lose conditions next to a $or (docs/architecture.md, quirks)."""
    newer = {"$or": [{f"seen.{admin_id}": {"$exists": False}}, {f"seen.{admin_id}": {"$lt": version}}]}
    return {"$and": [{"_id": GUARD_ID}, *conditions, newer]}


async def ensure_owner_guard() -> None:
    """Create the guard from the active owners if there is none yet (the first admin change of an install
    made before the guard existed). Of concurrent creations one wins; the others find it."""
    if await _guard().find_one({"_id": GUARD_ID}, {"_id": 1}) is not None:
        return
    found = await _col().find({"role": OWNER, "disabled": False}, {"_id": 1, "version": 1}).to_list()
    guard = OwnerGuardDocument(id=GUARD_ID, owners=[raw["_id"] for raw in found],
                               seen={raw["_id"]: raw.get("version") or 0 for raw in found})
    try:
        await _guard().insert_one(guard.model_dump(by_alias=True))
    except DuplicateKeyError:
        pass


async def guard_add(admin_id: str, version: int) -> bool:
    """Count an admin as an owner, after the write that made it an active owner at ``version``.

    Matches nothing when an update for a later version of this admin reached the guard first (it was
    demoted or disabled since): then it stays out. False in that case.
    """
    result = await _guard().update_one(
        _guard_where(admin_id, version),
        {"$addToSet": {"owners": admin_id}, "$set": {f"seen.{admin_id}": version}},
    )
    return result.matched_count == 1


async def guard_remove(admin_id: str, version: int) -> GuardRemoval:
    """Stop counting an admin as an owner, before the write that demotes or disables it (at ``version``,
    the version that write will give it); refused when no other owner would be left.

    One conditional update: the guard must hold an owner other than this admin (``$elemMatch: {$ne}``),
    so of two concurrent removals of the last two owners exactly one matches.
    """
    result = await _guard().update_one(
        _guard_where(admin_id, version, {"owners": {"$elemMatch": {"$ne": admin_id}}}),
        {"$pull": {"owners": admin_id}, "$set": {f"seen.{admin_id}": version}},
    )
    if result.matched_count == 1:
        return GuardRemoval.REMOVED
    raw = await _guard().find_one({"_id": GUARD_ID})
    if raw is not None and (raw.get("seen") or {}).get(admin_id, -1) >= version:
        return GuardRemoval.STALE
    return GuardRemoval.LAST


async def active_owners() -> list[AdminDocument]:
    found = await _col().find({"role": OWNER, "disabled": False}).to_list()
    return [admin for admin in map(AdminDocument.model_validate, found) if is_active_owner(admin)]
