"""Everything a customer leaves anywhere, and the deletion state on their account.

:data:`TRACES` is the one list of collections that hold a customer's data outside their own document,
with how their documents are found there. A new collection that holds customer data adds a line here
(tests/test_account_deletion.py scans every collection of the database after an erasure, so a
forgotten one fails it). Each step is a ``delete_many``: the erasure can run again after a crash, or
on two instances at once, and ends in the same state.

Rate-limit counters are not here: their keys are HMACs (never a raw email, IP or id) and they expire
within two windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import ReturnDocument

from stores.documents import (
    AuditEventDocument,
    ConsentEventDocument,
    CustomerDocument,
    CustomerStatus,
    JobDocument,
    LinkedIdentityClaimDocument,
    MfaFactorDocument,
    OneTimeTokenDocument,
    OutboxDocument,
    PasskeyDocument,
    SessionDocument,
    SocialFlowDocument,
    WebAuthnChallengeDocument,
)

MFA_CHALLENGES = "mfa_challenges"  # sign-in challenges (stores/mfa_challenges.py): by name, they may not be bound yet


@dataclass(frozen=True)
class Trace:
    collection: str
    fields: tuple[str, ...]  # a document is theirs when any of these holds their id


TRACES = (
    Trace(SessionDocument.Settings.name, ("subject_id",)),  # sessions, with their copy of the profile
    Trace(OneTimeTokenDocument.Settings.name, ("subject_id",)),  # every emailed link, and the export link
    Trace(MfaFactorDocument.Settings.name, ("customer_id",)),  # TOTP secrets, recovery codes, email factor
    Trace(MFA_CHALLENGES, ("customer_id",)),
    Trace(ConsentEventDocument.Settings.name, ("customer_id",)),
    Trace(SocialFlowDocument.Settings.name, ("customer_id",)),  # social sign-ins and linkings (grants)
    Trace(LinkedIdentityClaimDocument.Settings.name, ("customer_id",)),  # which provider identities are theirs
    Trace(PasskeyDocument.Settings.name, ("customer_id",)),  # public keys and names of their passkeys
    Trace(WebAuthnChallengeDocument.Settings.name, ("customer_id",)),  # passkey ceremonies under way
    Trace(AuditEventDocument.Settings.name, ("subject_id", "actor_id")),  # the deletion event is written after
)


def _database():
    return CustomerDocument.get_pymongo_collection().database


def _customers():
    return CustomerDocument.get_pymongo_collection()


async def erase_traces(customer_id: str, addresses: list[str]) -> dict[str, int]:
    """Delete every document of the customer's in :data:`TRACES` (audit events included: the caller then
    records the one deletion event), and every outbox message about them or to ``addresses`` (pending,
    sent or dead: a notice to an address they changed from included).
    Returns how many documents went, by collection."""
    database = _database()
    erased: dict[str, int] = {}
    for trace in TRACES:
        query = {"$or": [{name: customer_id} for name in trace.fields]}
        erased[trace.collection] = (await database[trace.collection].delete_many(query)).deleted_count
    outbox = OutboxDocument.get_pymongo_collection()
    mail = [{"subject_id": customer_id}] + ([{"to": {"$in": addresses}}] if addresses else [])
    erased[OutboxDocument.Settings.name] = (await outbox.delete_many({"$or": mail})).deleted_count
    return erased


async def audit_events_of(customer_id: str, limit: int) -> list[dict]:
    """The newest ``limit`` audit events about or by the customer, newest first: the export's "security
    activity"."""
    trace = next(t for t in TRACES if t.collection == AuditEventDocument.Settings.name)
    return await _database()[trace.collection].find(
        {"$or": [{name: customer_id} for name in trace.fields]}).sort("at", -1).limit(limit).to_list()


async def delete_customer(customer_id: str) -> bool:
    """The account itself: profile, attributes, linked identities, password hash. Frees the email and username."""
    return (await _customers().delete_one({"_id": customer_id})).deleted_count == 1


async def delete_jobs(customer_id: str, email_norm: str | None) -> int:
    """Durable jobs naming the customer (their payload's ``customer_id``, or ``email_norm`` for a
    registration's mail), the erasure's own job included: call this last."""
    names: list[dict] = [{"payload.customer_id": customer_id}]
    if email_norm:
        names.append({"payload.email_norm": email_norm})
    return (await JobDocument.get_pymongo_collection().delete_many({"$or": names})).deleted_count


# -- deletion state on the account ----------------------------------------------------------------

async def schedule_deletion(customer_id: str, job_id: str, due_at_ms: int, now_ms: int) -> CustomerDocument | None:
    """Disable an active account pending its erasure by ``job_id`` at ``due_at_ms``, bumping its
    credential version in the same write (so its sessions and links die). None when the account is not
    active (a pending deletion keeps it disabled; an earlier one that an admin cancelled by enabling the
    account is replaced, and its job then finds nothing to do)."""
    raw = await _customers().find_one_and_update(
        {"_id": customer_id, "status": CustomerStatus.ACTIVE},
        {"$set": {"status": CustomerStatus.DISABLED, "deletion_job_id": job_id, "deletion_due_at_ms": due_at_ms,
                  "erasure_started_at_ms": None, "updated_at_ms": now_ms},
         "$inc": {"credential_version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return CustomerDocument.model_validate(raw) if raw else None


async def cancel_deletion(customer_id: str, credential_version: int, now_ms: int) -> bool:
    """Undo a pending deletion: the account is active again. Only while its erasure has not begun, and only
    for the credential version the undo link was issued under. False otherwise."""
    result = await _customers().update_one(
        {"_id": customer_id, "status": CustomerStatus.DISABLED, "deletion_job_id": {"$type": "string"},
         "erasure_started_at_ms": {"$in": [None]}, "credential_version": credential_version},
        {"$set": {"status": CustomerStatus.ACTIVE, "deletion_job_id": None, "deletion_due_at_ms": None,
                  "updated_at_ms": now_ms}},
    )
    return result.modified_count == 1


async def begin_erasure(customer_id: str, job_id: str, now_ms: int, *, scheduled_only: bool) -> CustomerDocument | None:
    """Mark the erasure by ``job_id`` as begun (undo is too late from now on) and return the account.

    ``scheduled_only``: only if ``job_id`` is the deletion the account is still waiting for (not undone,
    not enabled again by an admin); otherwise the account is disabled and taken over by ``job_id`` at
    once (an erasure without grace, or by an admin), with its credential version bumped. None when there
    is no such account (or, with ``scheduled_only``, it no longer waits for this job).
    """
    if scheduled_only:
        query: dict = {"_id": customer_id, "deletion_job_id": job_id, "status": CustomerStatus.DISABLED}
        update: dict = {"$set": {"erasure_started_at_ms": now_ms}}
    else:
        query = {"_id": customer_id}
        update = {"$set": {"status": CustomerStatus.DISABLED, "deletion_job_id": job_id, "deletion_due_at_ms": now_ms,
                           "erasure_started_at_ms": now_ms, "updated_at_ms": now_ms},
                  "$inc": {"credential_version": 1}}
    raw = await _customers().find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
    return CustomerDocument.model_validate(raw) if raw else None
