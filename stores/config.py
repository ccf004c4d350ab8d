"""Identity stores, self-service policies and applications."""

from __future__ import annotations

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
