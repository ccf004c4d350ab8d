"""Identity stores, self-service policies and applications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.documents import ApplicationDocument, IdentityStoreDocument, PolicyDocument


async def insert_if_missing(document: IdentityStoreDocument | PolicyDocument | ApplicationDocument) -> bool:
    """Insert with a fixed id; False when it already exists (safe when instances race)."""
    try:
        await type(document).get_pymongo_collection().insert_one(document.model_dump(by_alias=True))
        return True
    except DuplicateKeyError:
        return False


async def get_application_by_client_id(client_id: str) -> ApplicationDocument | None:
    raw = await ApplicationDocument.get_pymongo_collection().find_one({"client_id": client_id})
    return ApplicationDocument.model_validate(raw) if raw else None


async def get_application(application_id: str) -> ApplicationDocument | None:
    raw = await ApplicationDocument.get_pymongo_collection().find_one({"_id": application_id})
    return ApplicationDocument.model_validate(raw) if raw else None


async def get_policy(policy_id: str) -> PolicyDocument | None:
    raw = await PolicyDocument.get_pymongo_collection().find_one({"_id": policy_id})
    return PolicyDocument.model_validate(raw) if raw else None


async def list_applications() -> list[ApplicationDocument]:
    found = await ApplicationDocument.get_pymongo_collection().find({}).sort("_id", 1).to_list()
    return [ApplicationDocument.model_validate(raw) for raw in found]


async def update_application(application_id: str, fields: dict) -> ApplicationDocument | None:
    """Set some fields of an application; returns it afterwards, or None when it does not exist."""
    raw = await ApplicationDocument.get_pymongo_collection().find_one_and_update(
        {"_id": application_id}, {"$set": fields}, return_document=ReturnDocument.AFTER)
    return ApplicationDocument.model_validate(raw) if raw else None


async def update_policy(policy_id: str, fields: dict) -> PolicyDocument | None:
    raw = await PolicyDocument.get_pymongo_collection().find_one_and_update(
        {"_id": policy_id}, {"$set": fields}, return_document=ReturnDocument.AFTER)
    return PolicyDocument.model_validate(raw) if raw else None


# -- self-service policies -------------------------------------------------------------------------

async def list_policies() -> list[PolicyDocument]:
    """Every policy, by name (then id)."""
    found = await PolicyDocument.get_pymongo_collection().find({}).sort([("name", 1), ("_id", 1)]).to_list()
    return [PolicyDocument.model_validate(raw) for raw in found]


async def get_policies(policy_ids: Sequence[str]) -> dict[str, PolicyDocument]:
    found = await PolicyDocument.get_pymongo_collection().find({"_id": {"$in": list(policy_ids)}}).to_list()
    return {raw["_id"]: PolicyDocument.model_validate(raw) for raw in found}


async def insert_policy(policy: PolicyDocument) -> None:
    await PolicyDocument.get_pymongo_collection().insert_one(policy.model_dump(by_alias=True))


async def update_if_version(kind: type[PolicyDocument] | type[ApplicationDocument], document_id: str, version: int,
                            fields: dict[str, Any]) -> PolicyDocument | ApplicationDocument | None:
    """Optimistic concurrency for a policy or an application (``kind``): ``$set`` the fields and bump
    ``version`` in one write, only if the document is still at ``version``. The document afterwards, or
    None when it is gone or at another version."""
    raw = await kind.get_pymongo_collection().find_one_and_update(
        {"_id": document_id, "version": version}, {"$set": fields, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER)
    return kind.model_validate(raw) if raw else None


async def delete_policy(policy_id: str) -> PolicyDocument | None:
    """Delete a policy; the document as it was when deleted (to put it back), or None when there was none."""
    raw = await PolicyDocument.get_pymongo_collection().find_one_and_delete({"_id": policy_id})
    return PolicyDocument.model_validate(raw) if raw else None


async def restore_policy(policy: PolicyDocument) -> bool:
    """Put a deleted policy back exactly as it was (same id and version); False when one with its id exists."""
    return await insert_if_missing(policy)


async def count_applications_with_policy(policy_id: str) -> int:
    return await ApplicationDocument.get_pymongo_collection().count_documents({"policy_id": policy_id})


# -- applications ----------------------------------------------------------------------------------

async def insert_application(application: ApplicationDocument) -> None:
    await ApplicationDocument.get_pymongo_collection().insert_one(application.model_dump(by_alias=True))


async def delete_application(application_id: str) -> bool:
    result = await ApplicationDocument.get_pymongo_collection().delete_one({"_id": application_id})
    return result.deleted_count == 1
