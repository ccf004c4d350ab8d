"""Everything a customer leaves anywhere, and the deletion state on their account.

:data:`TRACES` is the one list of collections that hold a customer's data outside their own document,
with how their documents are found there. A new collection that holds customer data adds a line here
(tests/test_account_deletion.py scans every collection of the database after an erasure, so a
forgotten one fails it). Each step is a ``delete_many`` (or, for staff's audit events, a conditional
pseudonymising update): the erasure can run again after a crash, on two instances at once, or as the
follow-up sweep that catches what raced it, and ends in the same state.

Rate-limit counters are not here: their keys are HMACs (never a raw email, IP or id) and they expire
within two windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
    # staff's events stay, pseudonymised; the one deletion event stays (see erase_traces)
    Trace(AuditEventDocument.Settings.name, ("subject_id", "actor_id")),
)


def _database():
    return CustomerDocument.get_pymongo_collection().database


def _customers():
    return CustomerDocument.get_pymongo_collection()


STAFF_ACTORS = ("admin", "api_key")  # whose audit events about an erased customer stay, pseudonymised
DELETION_EVENT = "customer.deleted"  # the one event that keeps the erased customer's id (never swept)


async def erase_traces(customer_id: str, addresses: list[str], pseudonym: str) -> dict[str, int]:
    """Erase every document of the customer's in :data:`TRACES`, and every outbox message about them or
    to ``addresses``. Returns how many documents went (or were pseudonymised), by collection.

    Audit events: those staff caused (``actor_kind`` in :data:`STAFF_ACTORS`: an admin, a partner's API
    key) stay, so the staff action remains accountable, but no longer name the person: their
    ``subject_id`` becomes ``pseudonym`` (a keyed hash of the id, computed by the caller), and the id
    and the addresses inside their data are replaced by it too. Every other event about or by the
    customer is deleted, except the one :data:`DELETION_EVENT`. Outbox: mail about them (``subject_id``),
    and mail to ``addresses`` about no one (records from before mail named its subject), pending, sent
    or dead; never mail about another account at the same address (another identity store's, or one
    registered since), nor the erasure's own confirmation (``erase_when_done``: it erases itself once
    sent). Safe to run again, at any time after the erasure (the follow-up sweep does)."""
    database = _database()
    erased: dict[str, int] = {}
    for trace in TRACES:
        mine = {"$or": [{name: customer_id} for name in trace.fields]}
        if trace.collection == AuditEventDocument.Settings.name:
            pseudonymised = await _pseudonymise_staff_events(customer_id, addresses, pseudonym)
            query = {"$and": [mine, {"type": {"$ne": DELETION_EVENT}}]}
            deleted = (await database[trace.collection].delete_many(query)).deleted_count
            erased[trace.collection] = deleted + pseudonymised
            continue
        erased[trace.collection] = (await database[trace.collection].delete_many(mine)).deleted_count
    outbox = OutboxDocument.get_pymongo_collection()
    mail: list[dict] = [{"subject_id": customer_id}]
    if addresses:
        mail.append({"$and": [{"to": {"$in": addresses}}, {"subject_id": {"$in": [None]}}]})
    query = {"$and": [{"$or": mail}, {"erase_when_done": {"$in": [False, None]}}]}
    erased[OutboxDocument.Settings.name] = (await outbox.delete_many(query)).deleted_count
    return erased


async def _pseudonymise_staff_events(customer_id: str, addresses: list[str], pseudonym: str) -> int:
    """Staff's events about the customer: ``subject_id`` and every mention of the id or an address in the
    data replaced by ``pseudonym``, one conditional write per event (``subject_id`` still the id, so a
    second pass changes nothing twice)."""
    events = AuditEventDocument.get_pymongo_collection()
    found = await events.find({"$and": [{"subject_id": customer_id}, {"actor_kind": {"$in": list(STAFF_ACTORS)}},
                                        {"type": {"$ne": DELETION_EVENT}}]}, {"_id": 1, "data": 1}).to_list()
    names = re.compile("|".join(re.escape(name) for name in [customer_id, *addresses] if name), re.IGNORECASE)
    for raw in found:
        await events.update_one({"_id": raw["_id"], "subject_id": customer_id},
                                {"$set": {"subject_id": pseudonym,
                                          "data": _without(raw.get("data") or {}, names, pseudonym)}})
    return len(found)


def _without(value: Any, names: re.Pattern, pseudonym: str) -> Any:
    """``value`` (an event's data: JSON-like) with every match of ``names`` in its strings replaced."""
    if isinstance(value, str):
        return names.sub(pseudonym, value)
    if isinstance(value, dict):
        return {key: _without(item, names, pseudonym) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without(item, names, pseudonym) for item in value]
    return value


async def deletion_recorded(customer_id: str) -> bool:
    """Whether the erasure's one :data:`DELETION_EVENT` about the customer is already written (an erasure
    run again after a crash writes none twice)."""
    found = await AuditEventDocument.get_pymongo_collection().find_one(
        {"subject_id": customer_id, "type": DELETION_EVENT}, {"_id": 1})
    return found is not None


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
    registration's mail), the erasure's own job included: call this last. ``email_norm`` None: by id only
    (after the erasure the address is free, and a new registrant's job may name it)."""
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
