"""Audit events: written once, read in pages; never updated or deleted (append-only)."""

from __future__ import annotations

from typing import Any

from stores.documents import AuditEventDocument


def _col():
    return AuditEventDocument.get_pymongo_collection()


async def insert(event: AuditEventDocument) -> None:
    await _col().insert_one(event.model_dump(by_alias=True))


async def page(*, first: int, after: tuple[int, str] | None = None, actor_id: str | None = None,
               subject_id: str | None = None, action: str | None = None, since_ms: int | None = None,
               until_ms: int | None = None) -> tuple[list[AuditEventDocument], bool]:
    """Up to ``first`` events, newest first in the stable order ``(at_ms, _id)`` descending, strictly
    after the cursor ``after`` = ``(at_ms, _id)`` of the last event seen; ``since_ms`` inclusive,
    ``until_ms`` exclusive. Returns the events and whether more follow. One query.

    The conditions go in one explicit ``$and``: nx-27017 can lose conditions next to a ``$or``.
    """
    clauses: list[dict[str, Any]] = [{"at_ms": {"$ne": None}}]
    for field, value in (("actor_id", actor_id), ("subject_id", subject_id), ("type", action)):
        if value is not None:
            clauses.append({field: value})
    if since_ms is not None:
        clauses.append({"at_ms": {"$gte": since_ms}})
    if until_ms is not None:
        clauses.append({"at_ms": {"$lt": until_ms}})
    if after is not None:
        at_ms, event_id = after
        clauses.append({"$or": [{"at_ms": {"$lt": at_ms}}, {"at_ms": at_ms, "_id": {"$lt": event_id}}]})
    found = await _col().find({"$and": clauses}).sort([("at_ms", -1), ("_id", -1)]).limit(first + 1).to_list()
    return [AuditEventDocument.model_validate(raw) for raw in found[:first]], len(found) > first
