from __future__ import annotations

from datetime import datetime

from stores.documents import SessionDocument


def _col():
    return SessionDocument.get_pymongo_collection()


async def insert(session: SessionDocument) -> None:
    await _col().insert_one(session.model_dump(by_alias=True))


def _active(raw: dict, now: datetime) -> bool:
    """The absolute expiry, checked on the document read rather than in the filter (see :func:`find_active_by_token_hash`)."""
    return raw["expires_at"] > now


async def find_active_by_token_hash(token_hash: str, now: datetime, now_ms: int) -> dict | None:
    """The raw session document (the hot path skips model validation), or None if none is active.

    The filter holds only the token hash (unique index) and the integer idle expiry; the absolute
    expiry (a datetime) is checked on the one document found. On nx-27017 a datetime condition in the
    filter turns the query into a scan of every session (``datetime()`` of each row, the index on
    ``token_hash`` unused): cost in the database grew with the number of sessions. Both checks still
    decide before a principal exists, so no expired session is ever accepted. No projection: nx-27017
    applies one by copying the document in Python, which costs it more than the 64 characters saved.
    """
    raw = await _col().find_one({"token_hash": token_hash, "idle_expires_at_ms": {"$gt": now_ms}})
    return raw if raw is not None and _active(raw, now) else None


async def get(session_id: str) -> SessionDocument | None:
    raw = await _col().find_one({"_id": session_id})
    return SessionDocument.model_validate(raw) if raw else None


async def refresh_profile(subject_id: str, profile: dict) -> None:
    """Copy a customer's changed profile into all of their sessions.

    Field by field, leaving out ``created_at``: it never changes, and a datetime written by ``$set``
    would come back from nx-27017 as a string.
    """
    changes = {f"profile.{name}": value for name, value in profile.items() if name != "created_at"}
    await _col().update_many({"subject_id": subject_id}, {"$set": changes})


async def touch(session_id: str, now_ms: int, idle_expires_at_ms: int, not_since_ms: int) -> None:
    """Record activity, at most once per interval: only when last seen before ``not_since_ms``."""
    await _col().update_one(
        {"_id": session_id, "last_seen_at_ms": {"$lt": not_since_ms}},
        {"$set": {"last_seen_at_ms": now_ms, "idle_expires_at_ms": idle_expires_at_ms}},
    )


async def rotate(session_id: str, old_token_hash: str, new_token_hash: str, authenticated_at_ms: int) -> bool:
    """Replace a session's token (the old one stops working in the same write) and record a fresh
    authentication; False when the session is gone or its token already changed."""
    result = await _col().update_one(
        {"_id": session_id, "token_hash": old_token_hash},
        {"$set": {"token_hash": new_token_hash, "authenticated_at_ms": authenticated_at_ms}},
    )
    return result.modified_count == 1


async def list_active_for_subject(subject_id: str, now: datetime, now_ms: int) -> list[SessionDocument]:
    return (await list_active_for_subjects([subject_id], now, now_ms)).get(subject_id, [])


async def delete(session_id: str) -> bool:
    result = await _col().delete_one({"_id": session_id})
    return result.deleted_count == 1


async def delete_older_than(subject_id: str, credential_version: int, keep: str | None = None) -> int:
    """End every session of the subject issued under a credential version older than this one (a session
    written before versions existed counts as older), except ``keep``."""
    # nx-27017 has no $not: "lower, or missing" is spelled as an $or, and an $or goes in an explicit $and
    # with the other conditions (nx-27017 mishandles conditions beside an $or).
    conditions: list[dict] = [{"subject_id": subject_id},
                              {"$or": [{"credential_version": {"$lt": credential_version}},
                                       {"credential_version": {"$exists": False}}]}]
    if keep:
        conditions.append({"_id": {"$ne": keep}})
    query = {"$and": conditions}
    result = await _col().delete_many(query)
    return result.deleted_count


async def end_beyond_limit(subject_id: str, limit: int, now: datetime, now_ms: int) -> tuple[list[str], int]:
    """Keep at most ``limit`` live sessions of the subject: end the least recently active ones beyond it
    (by ``last_seen_at_ms``, then ``created_at``, newest kept), and delete the subject's expired ones (the
    TTL index cannot be relied on, see docs/architecture.md). One read of the subject's sessions (ids and
    times only) and at most one delete.

    Returns the ids of the live sessions ended, and how many expired ones went."""
    found = await _col().find(
        {"subject_id": subject_id},
        {"_id": 1, "created_at": 1, "expires_at": 1, "idle_expires_at_ms": 1, "last_seen_at_ms": 1},
    ).to_list()
    expired = [raw["_id"] for raw in found if raw["expires_at"] <= now or raw["idle_expires_at_ms"] <= now_ms]
    dead = set(expired)
    live = [raw for raw in found if raw["_id"] not in dead]
    live.sort(key=lambda raw: (raw["last_seen_at_ms"], raw["created_at"]), reverse=True)
    evicted = [raw["_id"] for raw in live[limit:]]
    if evicted or expired:
        await _col().delete_many({"_id": {"$in": evicted + expired}, "subject_id": subject_id})
    return evicted, len(expired)


async def delete_for_subject(subject_id: str) -> int:
    result = await _col().delete_many({"subject_id": subject_id})
    return result.deleted_count


async def list_active_for_subjects(subject_ids, now: datetime, now_ms: int) -> dict[str, list[SessionDocument]]:
    """The active sessions of each subject, newest first, in one query.

    One subject is matched by equality, which nx-27017 answers from the ``subject`` index (an ``$in``
    there is a scan); the absolute expiry is checked on the documents read, as in
    :func:`find_active_by_token_hash`.
    """
    ids = list(subject_ids)
    by_subject = {"subject_id": ids[0]} if len(ids) == 1 else {"subject_id": {"$in": ids}}
    found = await _col().find({**by_subject, "idle_expires_at_ms": {"$gt": now_ms}}).sort("created_at", -1).to_list()
    grouped: dict[str, list[SessionDocument]] = {}
    for raw in found:
        if _active(raw, now):
            grouped.setdefault(raw["subject_id"], []).append(SessionDocument.model_validate(raw))
    return grouped


async def delete_own(subject_id: str, session_id: str) -> bool:
    """End one of this subject's sessions; False when they have none with this id (unknown or another's)."""
    result = await _col().delete_one({"_id": session_id, "subject_id": subject_id})
    return result.deleted_count == 1


async def delete_others(subject_id: str, keep_session_id: str) -> int:
    """End every session of the subject except ``keep_session_id``; returns how many ended."""
    result = await _col().delete_many({"subject_id": subject_id, "_id": {"$ne": keep_session_id}})
    return result.deleted_count


async def set_credential_version(session_id: str, credential_version: int) -> None:
    """The session stays across its subject's own credential change: record the version it now holds."""
    await _col().update_one({"_id": session_id}, {"$set": {"credential_version": credential_version}})


async def count_active_for_subjects(subject_ids, now: datetime, now_ms: int) -> dict[str, int]:
    """How many active sessions each subject has: one aggregation, one row per subject with any."""
    cursor = await _col().aggregate([
        {"$match": {"subject_id": {"$in": list(subject_ids)}, "expires_at": {"$gt": now},
                    "idle_expires_at_ms": {"$gt": now_ms}}},
        {"$group": {"_id": "$subject_id", "count": {"$sum": 1}}},
    ])
    return {row["_id"]: row["count"] for row in await cursor.to_list()}
