"""Download my data: everything the gateway holds about the signed-in customer, as JSON or one HTML page.

``dataExport(format)`` returns a download URL ``{public_url}/me/export/<token>.<json|html>``: a link
token of its own purpose (192 random bits, stored as its SHA-256, bound to the customer's credential
version), valid 5 minutes and usable once. A new request replaces the previous link. The document is
built when the URL is fetched, from the data as it is then, and the JSON and the HTML page come from
that one structure: the reads are async (:func:`gather`), the shaping is a pure function
(:func:`shape`) that the download route runs, with the serialisation, off the event loop. Asking for
a link needs a recent authentication. Its shape is published as a JSON Schema (docs/export.schema.json).

It holds the profile with every attribute (self-service visible or not), the login methods and
linked identities, the MFA factors (type and dates, never a secret or code), the active sessions, the
consents (current state of each, and the newest 5,000 events) and the newest 5,000 audit events about
the customer. Events an admin caused
keep the admin's kind but not their IP address or user agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from resolvers import audit, links
from resolvers.context import Context
from resolvers.errors import InvalidToken, unauthenticated
from resolvers.self_service import Area, is_on, own_account
from resolvers.sessions import require_recent_authentication
from stores import config, customers, erasure, mfa, sessions
from stores import consents as consent_store
from stores.documents import (
    AuditEventDocument,
    ConsentEventDocument,
    CustomerDocument,
    CustomerStatus,
    MfaFactorDocument,
    OneTimeTokenDocument,
    SessionDocument,
)

EXPORT_PURPOSE = "data_export"
LIFETIME_MINUTES = 5
EXPORT_LIMIT = 5000  # the newest consent events and the newest audit events an export holds (each)
PATH = "/me/export/"
SCHEMA_ID = "identity-gateway/export/v1"


class ExportFormat(StrEnum):
    JSON = "json"
    HTML = "html"


@dataclass(frozen=True)
class ExportLink:
    url: str
    expires_at: datetime


async def request_export(ctx: Context, export_format: ExportFormat) -> ExportLink:
    """A one-time download URL, valid 5 minutes, for the signed-in customer's data in ``export_format``.

    The export is everything held about the person, so the session must have proved who it is within the
    policy's ``reauthenticationMaxAgeMinutes`` (ReauthenticationRequired otherwise), as for an email change.
    FeatureDisabled when data export (or privacy and data) is off.
    """
    customer_id = own_account(ctx, Area.DATA_EXPORT)
    require_recent_authentication(ctx)
    customer = await customers.get(customer_id)
    if customer is None:
        raise unauthenticated()
    # links.issue answers a "?token=" URL; the download URL carries the token in its path instead.
    issued = await links.issue(ctx, EXPORT_PURPOSE, customer.id, LIFETIME_MINUTES, PATH,
                               credential_version=customer.credential_version)
    token = parse_qs(urlsplit(issued).query)["token"][0]
    await audit.record(ctx, "customer.data_export_requested", subject_id=customer.id, format=str(export_format))
    return ExportLink(url=f"{ctx.rules.public_url}{PATH}{token}.{export_format}",
                      expires_at=ctx.now() + timedelta(minutes=LIFETIME_MINUTES))


async def _usable_customer(ctx: Context, found: OneTimeTokenDocument) -> CustomerDocument:
    customer = await customers.get(found.subject_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE or not is_on(ctx, Area.DATA_EXPORT):
        raise InvalidToken()
    links.check_version(found, customer.credential_version)
    return customer


async def check_download(ctx: Context, token: str) -> None:
    """InvalidToken unless the link would download (reads only: a HEAD request)."""
    found = await links.peek(ctx, EXPORT_PURPOSE, token)
    await _usable_customer(ctx, found)


async def download(ctx: Context, token: str) -> ExportSource:
    """Use the download link up and read what the export holds (:func:`gather`); the caller turns it into the
    document with :func:`shape`, off the event loop. InvalidToken for an unknown, used or expired link, one
    issued before the customer's credentials changed, or when the account is no longer active or the
    application's policy turned data export off."""
    found = await links.consume(ctx, EXPORT_PURPOSE, token)
    customer = await _usable_customer(ctx, found)
    await audit.record(ctx, "customer.data_exported", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id)
    return await gather(ctx, customer)


def _iso(value: datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(event: AuditEventDocument, customer_id: str) -> dict[str, Any]:
    theirs = audit.caused_by_customer_or_public(event.actor_kind)  # never staff's or a partner's address
    return {"id": event.id, "type": event.type, "at": _iso(event.at), "actorKind": event.actor_kind,
            "byThisCustomer": event.actor_id == customer_id, "applicationId": event.application_id,
            "ipAddress": event.ip_address if theirs else None, "userAgent": event.user_agent if theirs else None}


async def _consents(customer: CustomerDocument) -> tuple[list[dict[str, Any]], list[ConsentEventDocument]]:
    """The current state of every consent the customer answered (from the latest event of each, however
    long the history, with its application's item), and the newest ``EXPORT_LIMIT`` consent events."""
    current: list[dict[str, Any]] = []
    applications: dict[str, Any] = {}
    for event in await consent_store.latest_of_customer(customer.id):
        if event.application_id not in applications:
            applications[event.application_id] = await config.get_application(event.application_id)
        application = applications[event.application_id]
        item = next((i for i in application.consent_policy if i.key == event.key), None) if application else None
        current.append({
            "applicationId": event.application_id, "applicationName": application.name if application else None,
            "key": event.key, "title": item.title if item else None, "required": item.required if item else False,
            "currentVersion": item.version if item else None, "granted": event.granted,
            "grantedAt": _iso(event.at) if event.granted else None,
            "version": event.version if event.granted else None,
            "needsReacceptance": bool(event.granted and item and event.version < item.version),
        })
    return current, await consent_store.history(customer.id, limit=EXPORT_LIMIT)


@dataclass(frozen=True)
class ExportSource:
    """What an export holds, as read from the database (:func:`gather`), before it is shaped (:func:`shape`)."""

    now: datetime
    customer: CustomerDocument
    factors: list[MfaFactorDocument]
    sessions: list[SessionDocument]
    consents: list[dict[str, Any]]  # the current answers, already shaped (one per item answered: few)
    consent_events: list[ConsentEventDocument]  # newest first, at most EXPORT_LIMIT
    audit_events: list[dict[str, Any]]  # raw documents, newest first, at most EXPORT_LIMIT

    @property
    def filename(self) -> str:
        """``account-data-<UTC date>`` (the caller adds the extension)."""
        return f"account-data-{_iso(self.now)[:10]}"


async def gather(ctx: Context, customer: CustomerDocument) -> ExportSource:
    """Read everything the export holds about ``customer`` (a few queries, at most ``EXPORT_LIMIT`` consent
    and audit events each). Async, on the event loop: only reads."""
    now = ctx.now()
    factors = await mfa.list_for_customer(customer.id)
    active = await sessions.list_active_for_subject(customer.id, now, ctx.now_ms())
    consents, consent_events = await _consents(customer)
    events = await erasure.audit_events_of(customer.id, EXPORT_LIMIT)
    return ExportSource(now=now, customer=customer, factors=factors, sessions=active, consents=consents,
                        consent_events=consent_events, audit_events=events)


def shape(source: ExportSource) -> dict[str, Any]:
    """The export document: JSON-ready (strings, numbers, booleans, nulls, lists, objects; times as
    ISO 8601 UTC strings), camelCase like the API. Its JSON Schema is docs/export.schema.json.

    Pure and CPU-bound (thousands of events): the download route runs it, with the serialisation, in a
    worker thread."""
    customer = source.customer
    address = customer.address.model_dump() if customer.address else None
    events = [AuditEventDocument.model_validate(raw) for raw in source.audit_events]
    return {
        "$schema": SCHEMA_ID,
        "exportedAt": _iso(source.now),
        "profile": {
            "id": customer.id, "email": customer.email, "emailVerified": customer.email_verified,
            "username": customer.username, "givenName": customer.given_name, "middleName": customer.middle_name,
            "familyName": customer.family_name, "phoneNumber": customer.phone_number,
            "address": None if address is None else {
                "streetAddress": address["street_address"], "locality": address["locality"],
                "region": address["region"], "postalCode": address["postal_code"], "country": address["country"]},
            "birthdate": customer.birthdate, "locale": customer.locale, "status": str(customer.status).upper(),
            "createdAt": _iso(customer.created_at), "activatedAt": _iso(customer.activated_at_ms),
            "updatedAt": _iso(customer.updated_at_ms), "lastSignInAt": _iso(customer.last_sign_in_at_ms),
        },
        "attributes": dict(customer.attributes),
        "loginMethods": {
            "password": customer.password_hash is not None,
            "linkedIdentities": [{"id": i.id, "provider": i.provider, "subject": i.subject, "email": i.email,
                                  "linkedAt": _iso(i.linked_at_ms)} for i in customer.linked_identities],
        },
        "mfaFactors": [{"id": f.id, "type": str(f.type), "confirmed": f.confirmed, "createdAt": _iso(f.created_at),
                        "lastUsedAt": _iso(f.last_used_at_ms)} for f in source.factors],
        "sessions": [{"id": s.id, "createdAt": _iso(s.created_at), "lastSeenAt": _iso(s.last_seen_at_ms),
                      "expiresAt": _iso(min(s.expires_at, datetime.fromtimestamp(s.idle_expires_at_ms / 1000, UTC))),
                      "ipAddress": s.ip_address, "userAgent": s.user_agent} for s in source.sessions],
        "consents": source.consents,
        "consentHistory": [{"applicationId": e.application_id, "key": e.key, "version": e.version,
                            "granted": e.granted, "at": _iso(e.at), "ipAddress": e.ip_address,
                            "userAgent": e.user_agent} for e in source.consent_events],
        "auditEvents": [_event(event, customer.id) for event in events],
    }
