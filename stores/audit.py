from __future__ import annotations

from stores.documents import AuditEventDocument


def _col():
    return AuditEventDocument.get_pymongo_collection()


async def insert(event: AuditEventDocument) -> None:
    await _col().insert_one(event.model_dump(by_alias=True))


async def list_for_subject(subject_id: str, limit: int = 100) -> list[AuditEventDocument]:
    found = await _col().find({"subject_id": subject_id}).sort("at", -1).limit(limit).to_list()
    return [AuditEventDocument.model_validate(raw) for raw in found]
