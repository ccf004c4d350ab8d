"""The audit log (``auditEvents``, ``audit:read``) and a customer's own security activity."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import audit
from schema.admin import PageInfo
from schema.permissions import HasPermission, requires
from stores.documents import AuditEventDocument

ACTOR_KINDS = "customer, admin, api_key, public (not signed in) or system (the CLI, the gateway itself)"


@strawberry.enum(description="How the attempt ended.")
class AuditResult(Enum):
    SUCCESS = "success"
    FAILURE = "failure"


@strawberry.type(description="Who did it.")
class AuditActor:
    kind: str | None = strawberry.field(description=f"One of: {ACTOR_KINDS}.")
    id: strawberry.ID | None = strawberry.field(description="The customer's, admin's or API key's id.")
    name: str | None = strawberry.field(description="An API key's name.")


@strawberry.type(description="What it was done to.")
class AuditTarget:
    kind: str = strawberry.field(description="customer, admin, api_key, application, …")
    id: strawberry.ID


@strawberry.type(description="One security-relevant event. Never carries passwords, tokens or other secrets.")
class AuditEvent:
    id: strawberry.ID
    action: str = strawberry.field(description="`<target kind>.<what happened>`, e.g. `admin.role_changed`.")
    at: datetime
    actor: AuditActor
    target: AuditTarget | None
    result: AuditResult
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    application_id: strawberry.ID | None = strawberry.field(description="The application the request was for.")
    details: JSON = strawberry.field(description="More about the event (e.g. the new role), as a JSON object.")

    @classmethod
    def from_doc(cls, doc: AuditEventDocument) -> AuditEvent:
        return cls(
            id=strawberry.ID(doc.id), action=doc.type, at=doc.at,
            actor=AuditActor(kind=doc.actor_kind, id=doc.actor_id, name=doc.actor_name),
            target=AuditTarget(kind=doc.target_kind or "unknown", id=strawberry.ID(doc.subject_id))
            if doc.subject_id else None,
            result=AuditResult(doc.result), ip_address=doc.ip_address, user_agent=doc.user_agent,
            request_id=doc.request_id, application_id=doc.application_id,
            details=json.loads(json.dumps(doc.data, default=str)),
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type(description="A page of the audit log, newest first, in a stable order.")
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo


@strawberry.input(description="Every given condition must hold.")
class AuditEventFilter:
    actor_id: strawberry.ID | None = strawberry.field(default=None, description="The actor's id.")
    target_id: strawberry.ID | None = strawberry.field(default=None, description="The target's id.")
    action: str | None = strawberry.field(default=None, description="Exactly this action.")
    from_: datetime | None = strawberry.field(default=None, name="from", description="At or after (inclusive).")
    to: datetime | None = strawberry.field(default=None, description="Before (exclusive).")


@strawberry.type(description="Something that happened to your account: sign-ins, failed attempts, changes.")
class SecurityEvent:
    id: strawberry.ID
    action: str = strawberry.field(description="e.g. `customer.login_succeeded`, `customer.login_failed`.")
    at: datetime
    result: AuditResult
    ip_address: str | None
    user_agent: str | None
    actor_kind: str | None = strawberry.field(description=f"Who did it: {ACTOR_KINDS}.")

    @classmethod
    def from_doc(cls, doc: AuditEventDocument) -> SecurityEvent:
        """The address and user agent only of what the customer or the public did: never staff's or a
        partner's (an admin's office IP, a helpdesk console's user agent)."""
        theirs = audit.caused_by_customer_or_public(doc.actor_kind)
        return cls(id=strawberry.ID(doc.id), action=doc.type, at=doc.at, result=AuditResult(doc.result),
                   ip_address=doc.ip_address if theirs else None, user_agent=doc.user_agent if theirs else None,
                   actor_kind=doc.actor_kind)


@strawberry.type
class SecurityEventEdge:
    cursor: str
    node: SecurityEvent


@strawberry.type(description="A page of the account's security activity, newest first.")
class SecurityActivityConnection:
    edges: list[SecurityEventEdge]
    page_info: PageInfo


def _page_info(edges: list, page: audit.EventPage) -> PageInfo:
    return PageInfo(has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None)


def security_activity_connection(page: audit.EventPage) -> SecurityActivityConnection:
    edges = [SecurityEventEdge(cursor=audit.encode_cursor(doc), node=SecurityEvent.from_doc(doc)) for doc in page.events]
    return SecurityActivityConnection(edges=edges, page_info=_page_info(edges, page))


@strawberry.type
class AuditQueries:
    @strawberry.field(description="The audit log, newest first: at most 100 a page (`first`, default 20), after "
                                  "a cursor (`after`). Bad arguments are a top-level BAD_USER_INPUT error.",
                      extensions=requires(HasPermission("audit:read")))
    async def audit_events(self, info: Info, first: int = 20, after: str | None = None,
                           filter: AuditEventFilter | None = None) -> AuditEventConnection:
        conditions = audit.AuditFilter(
            actor_id=filter.actor_id, target_id=filter.target_id, action=filter.action, since=filter.from_,
            until=filter.to) if filter else None
        page = await audit.page(info.context, first=first, after=after, filter=conditions)
        edges = [AuditEventEdge(cursor=audit.encode_cursor(doc), node=AuditEvent.from_doc(doc)) for doc in page.events]
        return AuditEventConnection(edges=edges, page_info=_page_info(edges, page))
