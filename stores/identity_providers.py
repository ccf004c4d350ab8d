"""Identity providers of applications (``identity_providers``) and social sign-in flows (``social_flows``).

A flow is used in stages, each one conditional write on the flow document, so that a start link, a
callback and a grant each work once, even when two requests race (and on any instance):
:func:`bind_flow` (the browser opens the start URL), :func:`consume_flow` (the provider's callback),
:func:`consume_grant` (the frontend exchanges the grant). Each checks the flow's expiry itself.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.documents import IdentityProviderDocument, SocialFlowDocument


class DuplicateProvider(Exception):
    """The application already has a provider with this name."""


def _providers():
    return IdentityProviderDocument.get_pymongo_collection()


def _flows():
    return SocialFlowDocument.get_pymongo_collection()


# -- providers --------------------------------------------------------------------------------------

async def insert_provider(provider: IdentityProviderDocument) -> None:
    """Insert a provider; DuplicateProvider when its application has one of this name."""
    try:
        await _providers().insert_one(provider.model_dump(by_alias=True))
    except DuplicateKeyError as exc:
        raise DuplicateProvider(provider.name) from exc


async def get_provider(provider_id: str) -> IdentityProviderDocument | None:
    raw = await _providers().find_one({"_id": provider_id})
    return IdentityProviderDocument.model_validate(raw) if raw else None


async def get_by_name(application_id: str, name: str) -> IdentityProviderDocument | None:
    raw = await _providers().find_one({"application_id": application_id, "name": name})
    return IdentityProviderDocument.model_validate(raw) if raw else None


async def list_for_application(application_id: str) -> list[IdentityProviderDocument]:
    found = await _providers().find({"application_id": application_id}).sort("name", 1).to_list()
    return [IdentityProviderDocument.model_validate(raw) for raw in found]


async def update_provider(provider_id: str, version: int, fields: dict, now_ms: int) -> IdentityProviderDocument | None:
    """Set ``fields`` and bump the version, only if the provider is still at ``version``; the provider
    afterwards, or None when it is gone or changed meanwhile. ``update_one`` first (it reports a unique
    index refusal on nx-27017, where ``find_one_and_update`` returns None): DuplicateProvider on a taken name."""
    try:
        result = await _providers().update_one(
            {"_id": provider_id, "version": version},
            {"$set": {**fields, "updated_at_ms": now_ms}, "$inc": {"version": 1}})
    except DuplicateKeyError as exc:
        raise DuplicateProvider(fields.get("name", "")) from exc
    if result.matched_count != 1:
        return None
    return await get_provider(provider_id)


async def delete_provider(provider_id: str) -> bool:
    return (await _providers().delete_one({"_id": provider_id})).deleted_count == 1


async def delete_for_application(application_id: str) -> int:
    return (await _providers().delete_many({"application_id": application_id})).deleted_count


# -- flows ------------------------------------------------------------------------------------------

async def insert_flow(flow: SocialFlowDocument) -> None:
    await _flows().insert_one(flow.model_dump(by_alias=True))


async def flow_by_start_token(start_token_hash: str) -> SocialFlowDocument | None:
    raw = await _flows().find_one({"start_token_hash": start_token_hash})
    return SocialFlowDocument.model_validate(raw) if raw else None


async def flow_by_state(state_hash: str) -> SocialFlowDocument | None:
    """A flow whatever its stage (used, expired): to tell why a callback was refused, and where to send it."""
    raw = await _flows().find_one({"state_hash": state_hash})
    return SocialFlowDocument.model_validate(raw) if raw else None


async def bind_flow(start_token_hash: str, binding_hash: str, now: datetime, now_ms: int) -> SocialFlowDocument | None:
    """The browser that opens the start URL first owns the flow: record the hash of its binding cookie,
    once. None when the start token is unknown, already used or expired."""
    raw = await _flows().find_one_and_update(
        {"start_token_hash": start_token_hash, "binding_hash": {"$in": [None]}, "expires_at": {"$gt": now}},
        {"$set": {"binding_hash": binding_hash, "started_at_ms": now_ms}}, return_document=ReturnDocument.AFTER)
    return SocialFlowDocument.model_validate(raw) if raw else None


async def consume_flow(state_hash: str, binding_hash: str, now: datetime, now_ms: int) -> SocialFlowDocument | None:
    """The provider's callback: use the flow up, only from the browser that started it, once, in time.
    None otherwise (:func:`flow_by_state` then tells which)."""
    raw = await _flows().find_one_and_update(
        {"state_hash": state_hash, "binding_hash": binding_hash, "called_back_at_ms": {"$in": [None]},
         "expires_at": {"$gt": now}},
        {"$set": {"called_back_at_ms": now_ms}}, return_document=ReturnDocument.AFTER)
    return SocialFlowDocument.model_validate(raw) if raw else None


async def set_grant(flow_id: str, grant_hash: str, customer_id: str, expires_at_ms: int) -> None:
    await _flows().update_one({"_id": flow_id},
                              {"$set": {"grant_hash": grant_hash, "customer_id": customer_id,
                                        "grant_expires_at_ms": expires_at_ms}})


async def consume_grant(grant_hash: str, now_ms: int) -> SocialFlowDocument | None:
    """Use a sign-in's grant up, once, before it expires; None otherwise."""
    raw = await _flows().find_one_and_update(
        {"grant_hash": grant_hash, "grant_used_at_ms": {"$in": [None]}, "grant_expires_at_ms": {"$gt": now_ms}},
        {"$set": {"grant_used_at_ms": now_ms}}, return_document=ReturnDocument.AFTER)
    return SocialFlowDocument.model_validate(raw) if raw else None
