"""Durable jobs: claimed under a lease, so that of several instances exactly one runs a job at a time."""

from __future__ import annotations

from pymongo import ReturnDocument

from stores.documents import JobDocument


def _col():
    return JobDocument.get_pymongo_collection()


async def insert(job: JobDocument) -> None:
    await _col().insert_one(job.model_dump(by_alias=True))


async def claim(job_id: str, now_ms: int, lease_ms: int, lease_id: str, *, due_only: bool = True) -> JobDocument | None:
    """Take a job that nobody holds (or whose holder's lease ran out); None when it is gone or held.

    ``due_only=False`` takes it before ``run_after_ms`` (the request that wrote it runs it at once).
    """
    query: dict = {"_id": job_id, "lease_until_ms": {"$lt": now_ms}}
    if due_only:
        query["run_after_ms"] = {"$lte": now_ms}
    raw = await _col().find_one_and_update(
        query, {"$set": {"lease_until_ms": now_ms + lease_ms, "lease_id": lease_id}},
        return_document=ReturnDocument.AFTER,
    )
    return JobDocument.model_validate(raw) if raw else None


async def due_ids(now_ms: int, limit: int = 50) -> list[str]:
    found = await _col().find({"run_after_ms": {"$lte": now_ms}, "lease_until_ms": {"$lt": now_ms}},
                              {"_id": 1}).limit(limit).to_list()
    return [raw["_id"] for raw in found]


async def finish(job_id: str, lease_id: str) -> bool:
    """Done: delete it, if we still hold it."""
    result = await _col().delete_one({"_id": job_id, "lease_id": lease_id})
    return result.deleted_count == 1


async def postpone(job_id: str, lease_id: str, run_after_ms: int, attempts: int, error: str | None) -> bool:
    """Give the job back, to run again at ``run_after_ms``, if we still hold it."""
    result = await _col().update_one(
        {"_id": job_id, "lease_id": lease_id},
        {"$set": {"run_after_ms": run_after_ms, "lease_until_ms": 0, "lease_id": None, "attempts": attempts,
                  "last_error": (error or "")[:500] or None}},
    )
    return result.modified_count == 1
