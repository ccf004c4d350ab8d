"""Customers: the signed-in customer's own account, and what admins do to accounts."""

from __future__ import annotations

import base64
import binascii

from resolvers import audit, notifications
from resolvers.context import Context
from resolvers.errors import NotFound, Problems, unauthenticated
from resolvers.identifiers import normalize_identifier
from resolvers.security import is_text
from stores import customers, sessions
from stores.documents import CustomerDocument, CustomerProfile

MAX_PAGE = 100
MAX_SEARCH = 100


async def me(ctx: Context) -> CustomerDocument | CustomerProfile:
    """The signed-in customer: from the session's profile copy when it has one (no second round trip)."""
    if ctx.principal is None or ctx.principal.kind != "customer":
        raise unauthenticated()
    if ctx.principal.profile is not None:
        return CustomerProfile.model_validate(ctx.principal.profile)
    customer = await ctx.loaders.customer.load(ctx.principal.subject_id)
    if customer is None:
        raise unauthenticated()
    return customer


async def get(ctx: Context, customer_id: str) -> CustomerDocument | None:
    if not customer_id or len(customer_id) > 64 or not is_text(customer_id):
        return None
    customer = await ctx.loaders.customer.load(customer_id)
    if customer is None or customer.store_id != ctx.application.identity_store_id:
        return None
    return customer


def encode_cursor(customer_id: str) -> str:
    return base64.urlsafe_b64encode(f"c:{customer_id}".encode()).decode()


def _decode_cursor(problems: Problems, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raw = ""
    if not raw.startswith("c:") or len(raw) > 70:
        problems.add("after", "INVALID", "This cursor is not valid.")
        return None
    return raw[2:]


async def page(ctx: Context, *, first: int, after: str | None, search: str | None):
    problems = Problems()
    if first < 1 or first > MAX_PAGE:
        problems.add("first", "OUT_OF_RANGE", f"Ask for 1 to {MAX_PAGE} customers.")
    after_id = _decode_cursor(problems, after)
    if search is not None and len(search) > MAX_SEARCH:
        problems.add("search", "TOO_LONG", f"Use at most {MAX_SEARCH} characters.")
    elif search is not None and not is_text(search):
        problems.add("search", "INVALID", "Remove characters that are not valid text.")
    problems.raise_if_any()
    docs, has_next = await customers.page(
        ctx.application.identity_store_id, first=first, after=after_id,
        search=normalize_identifier(search) if search else None,
    )
    for doc in docs:
        ctx.loaders.customer.prime(doc.id, doc)
    return docs, has_next


async def disable(ctx: Context, customer_id: str) -> None:
    """Disable an account: it can no longer sign in, and every session ends at once.

    One write sets the status and bumps the credential version (so a sign-in racing this one cannot
    keep its session, see ``resolvers.sessions``); then the sessions are deleted. NotFound for an id
    outside this identity store.
    """
    customer = await get(ctx, customer_id)
    if customer is None:
        raise NotFound()
    change_id = await notifications.prepare_credential_notice(ctx, customer.id, None)  # ends sessions durably
    if not await customers.disable(customer.id, ctx.now_ms(), change_id):
        raise NotFound()
    ended = await sessions.delete_for_subject(customer.id)
    ctx.jobs.start(change_id)
    await audit.record(ctx, "customer.disabled", subject_id=customer.id, sessions_ended=ended)
