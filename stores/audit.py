"""Audit events: written once, read in pages; never updated or deleted (append-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stores.documents import AuditEventDocument


def _col():
    return AuditEventDocument.get_pymongo_collection()


async def insert(event: AuditEventDocument) -> None:
    await _col().insert_one(event.model_dump(by_alias=True))


async def page(*, first: int, after: tuple[datetime, str] | None = None, actor_id: str | None = None,
               subject_id: str | None = None, action: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> tuple[list[AuditEventDocument], bool]:
    """Up to ``first`` events, newest first in the stable order ``(at, _id)`` descending, strictly after
    the cursor ``after`` = ``(at, _id)`` of the last event seen; ``since`` inclusive, ``until`` exclusive.
    Returns the events and whether more follow. One query."""
    clauses: list[dict[str, Any]] = []
    for field, value in (("actor_id", actor_id), ("subject_id", subject_id), ("type", action)):
        if value is not None:
            clauses.append({field: value})
    if since is not None:
        clauses.append({"at": {"$gte": since}})
    if until is not None:
        clauses.append({"at": {"$lt": until}})
    if after is not None:
        at, event_id = after
        clauses.append({"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": event_id}}]})
    query = {"$and": clauses} if clauses else {}
    found = await _col().find(query).sort([("at", -1), ("_id", -1)]).limit(first + 1).to_list()
    return [AuditEventDocument.model_validate(raw) for raw in found[:first]], len(found) > first
