"""Consent events: appended, never updated. A customer's current answer to one consent item is the
latest event for (customer, application, key)."""

from __future__ import annotations

from stores.documents import ConsentEventDocument


def _col():
    return ConsentEventDocument.get_pymongo_collection()


async def append(event: ConsentEventDocument) -> None:
    await _col().insert_one(event.model_dump(by_alias=True))


async def latest_by_key(customer_id: str, application_id: str) -> dict[str, ConsentEventDocument]:
    """The latest event of each consent item key the customer answered in this application."""
    latest: dict[str, ConsentEventDocument] = {}
    for event in await history(customer_id, application_id):
        latest.setdefault(event.key, event)
    return latest


async def history(customer_id: str, application_id: str | None = None) -> list[ConsentEventDocument]:
    """The customer's events, newest first (``_id`` breaks ties within a millisecond: ids grow with time);
    one application's when ``application_id`` is given."""
    query: dict = {"customer_id": customer_id}
    if application_id is not None:
        query["application_id"] = application_id
    found = await _col().find(query).sort([("at", -1), ("_id", -1)]).to_list()
    return [ConsentEventDocument.model_validate(raw) for raw in found]
