"""Consent events: appended, never updated. A customer's current answer to one consent item is the
latest event for (customer, application, key)."""

from __future__ import annotations

from stores.documents import ConsentEventDocument


def _col():
    return ConsentEventDocument.get_pymongo_collection()


async def append(event: ConsentEventDocument) -> None:
    await _col().insert_one(event.model_dump(by_alias=True))


async def remove_appended(event_id: str) -> None:
    """Remove an event just appended by a request that found, after the append, that it may not stand (the
    account was erased or disabled meanwhile). The one exception to append-only."""
    await _col().delete_one({"_id": event_id})


async def latest_by_key(customer_id: str, application_id: str, keys: list[str]) -> dict[str, ConsentEventDocument]:
    """The latest event of each of these consent item keys the customer answered in this application:
    one aggregation, one row per key answered, however long the history."""
    cursor = await _col().aggregate([
        {"$match": {"customer_id": customer_id, "application_id": application_id, "key": {"$in": list(keys)}}},
        {"$sort": {"_id": -1}},  # ids grow with time (``resolvers.consents``)
        {"$group": {"_id": "$key", "event": {"$first": "$$ROOT"}}},
    ])
    return {row["_id"]: ConsentEventDocument.model_validate(row["event"]) for row in await cursor.to_list()}


async def latest_of_customer(customer_id: str) -> list[ConsentEventDocument]:
    """The latest event of every (application, key) the customer ever answered: their current consents
    everywhere, however long the history."""
    cursor = await _col().aggregate([
        {"$match": {"customer_id": customer_id}},
        {"$sort": {"_id": -1}},
        {"$group": {"_id": {"$concat": ["$application_id", "\x1f", "$key"]}, "event": {"$first": "$$ROOT"}}},
    ])
    found = [ConsentEventDocument.model_validate(row["event"]) for row in await cursor.to_list()]
    return sorted(found, key=lambda event: event.id, reverse=True)


async def history(customer_id: str, application_id: str | None = None, limit: int = 100) -> list[ConsentEventDocument]:
    """The customer's newest ``limit`` events, newest first (ids grow with time, so ``_id`` orders them);
    one application's when ``application_id`` is given."""
    query: dict = {"customer_id": customer_id}
    if application_id is not None:
        query["application_id"] = application_id
    found = await _col().find(query).sort("_id", -1).limit(limit).to_list()
    return [ConsentEventDocument.model_validate(raw) for raw in found]
