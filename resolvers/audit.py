"""The audit log: every security-relevant event, customer and admin alike. Append-only.

An event says who (actor kind, id, and an API key's name), did what (``action``, e.g.
``admin.role_changed``), to what (target kind and id), when, from where (client IP, user agent,
request id), and how it ended (``success`` / ``failure``). It never carries passwords, tokens or
other secrets: :func:`record` refuses data under a secret's name.

Reading it: admins with ``audit:read`` page through everything (:func:`page`); a customer sees the
events about their own account (:func:`security_activity`), through customer-safe fields only.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from resolvers.context import Context, Principal, epoch_ms
from resolvers.errors import Denied, forbidden, unauthenticated
from resolvers.security import is_text, new_id
from stores import audit as audit_store
from stores.documents import AuditEventDocument, AuditResult

# Data under these names is refused: events never carry secrets.
FORBIDDEN_KEYS = frozenset({"password", "token", "new_password", "confirm_password", "current_password",
                            "password_hash", "api_key", "key_hash", "secret", "recovery_codes", "device_token"})
FAILED_SUFFIX = "_failed"  # an action named ``*_failed`` records a failure unless told otherwise
TARGET_KIND_OF = {"template": "application"}  # action prefixes whose target is not what they name

MAX_PAGE = 100
MAX_FILTER = 200
CUSTOMER_SIDE_ACTORS = frozenset({"customer", "public"})  # the customer, or someone at a public journey


def caused_by_customer_or_public(actor_kind: str | None) -> bool:
    """Whether an event came from the customer's side (the customer, or an anonymous public journey),
    whose IP address and user agent the customer may see. False for staff, partners (API keys) and the
    system: their addresses are not the customer's to read."""
    return actor_kind in CUSTOMER_SIDE_ACTORS


def _actor(ctx: Context, actor_kind: str | None, actor_id: str | None) -> tuple[str | None, str | None, str | None]:
    principal: Principal | None = ctx.principal
    if actor_kind is not None or actor_id is not None or principal is None:
        return actor_kind or (principal.kind if principal else None), \
            actor_id or (principal.subject_id if principal else None), None
    if principal.api_key_name is not None:
        return "api_key", principal.subject_id, principal.api_key_name
    return principal.kind, principal.subject_id, None


async def record(ctx: Context, event_type: str, *, subject_id: str | None = None,
                 actor_kind: str | None = None, actor_id: str | None = None, target_kind: str | None = None,
                 result: AuditResult | None = None, **data: Any) -> None:
    """Append one event. ``event_type`` is the action, ``<target kind>.<what happened>``.

    - actor: ``actor_kind``/``actor_id`` when given, else the request's principal (an API key shows as
      kind ``api_key`` with its id and name);
    - target: ``subject_id``, of kind ``target_kind`` (default: the action's first segment);
    - result: ``result``, default ``failure`` for actions ending in ``_failed``, else ``success``;
    - ``data``: more detail, never secrets (a key in ``FORBIDDEN_KEYS`` raises ValueError).
    """
    if FORBIDDEN_KEYS & data.keys():
        raise ValueError(f"audit events never carry secrets: {sorted(FORBIDDEN_KEYS & data.keys())}")
    kind, actor, actor_name = _actor(ctx, actor_kind, actor_id)
    if target_kind is None and subject_id is not None:
        prefix = event_type.split(".", 1)[0]
        target_kind = TARGET_KIND_OF.get(prefix, prefix)
    if result is None:
        result = AuditResult.FAILURE if event_type.endswith(FAILED_SUFFIX) else AuditResult.SUCCESS
    now = ctx.now()
    await audit_store.insert(AuditEventDocument(
        id=new_id(), type=event_type, at=now, at_ms=epoch_ms(now), actor_kind=kind, actor_id=actor, actor_name=actor_name,
        subject_id=subject_id, target_kind=target_kind, result=result, application_id=ctx.application.id,
        ip_address=ctx.request.ip_address, user_agent=ctx.request.user_agent,
        request_id=ctx.request.request_id, data=data,
    ))


# -- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Exact matches on ``actor_id``, ``target_id``, ``action``; ``since`` inclusive, ``until`` exclusive."""

    actor_id: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEventDocument]
    has_next_page: bool


def bad_argument(message: str) -> Denied:
    """A top-level ``BAD_USER_INPUT`` error: connections refuse bad arguments outside their data."""
    return Denied("BAD_USER_INPUT", message)


def encode_cursor(event: AuditEventDocument) -> str:
    """An opaque cursor: the event's place in the ``(at_ms, _id)`` order."""
    return base64.urlsafe_b64encode(f"a:{event.at_ms}:{event.id}".encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    try:
        kind, at_ms, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        if kind != "a" or not at_ms.isdigit() or len(at_ms) > 16 or not event_id or len(event_id) > 64:
            raise ValueError(kind)
        return int(at_ms), event_id
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_argument("`after` is not a cursor of this list.") from None


def _first(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise bad_argument(f"`first` must be between 1 and {MAX_PAGE}.")
    return first


def _ms(moment: datetime | None) -> int | None:
    """Epoch milliseconds of a moment; one without a time zone is taken as UTC."""
    if moment is None:
        return None
    return epoch_ms(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)


async def page(ctx: Context, *, first: int, after: str | None, filter: AuditFilter | None = None) -> EventPage:
    """A page of the audit log, newest first (``auditEvents``). Bad arguments: top-level BAD_USER_INPUT."""
    filter = filter or AuditFilter()
    for name, value in (("actorId", filter.actor_id), ("targetId", filter.target_id), ("action", filter.action)):
        if value is not None and (not value or len(value) > MAX_FILTER or not is_text(value)):
            raise bad_argument(f"`filter.{name}` must be 1 to {MAX_FILTER} characters.")
    since, until = _ms(filter.since), _ms(filter.until)
    if since is not None and until is not None and since >= until:
        raise bad_argument("`filter.from` must be before `filter.to`.")
    events, more = await audit_store.page(
        first=_first(first), after=_decode_cursor(after), actor_id=filter.actor_id, subject_id=filter.target_id,
        action=filter.action, since_ms=since, until_ms=until)
    return EventPage(events, more)


async def security_activity(ctx: Context, customer_id: str, *, first: int, after: str | None) -> EventPage:
    """The events about one customer's account, newest first (``Customer.securityActivity``).

    A customer reads only their own (the customer object they can reach is themselves); an admin needs
    ``customers:read`` (what the customer sees of their own account: customer-safe fields, no staff
    addresses). The whole log, other admins' actions included, is ``audit:read`` (:func:`page`).
    """
    principal = ctx.principal
    if principal is None:
        raise unauthenticated()
    if principal.kind == "admin" and "customers:read" not in principal.permissions:
        raise forbidden()
    if principal.kind == "customer" and principal.subject_id != customer_id:
        return EventPage([], False)
    events, more = await audit_store.page(first=_first(first), after=_decode_cursor(after), subject_id=customer_id)
    return EventPage(events, more)
