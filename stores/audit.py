from __future__ import annotations

from stores.documents import AuditEventDocument


def _col():
    return AuditEventDocument.get_pymongo_collection()


async def insert(event: AuditEventDocument) -> None:
    await _col().insert_one(event.model_dump(by_alias=True))
