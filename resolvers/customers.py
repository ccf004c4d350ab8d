"""Customers: the signed-in customer's own account, and what admins do to accounts."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from resolvers import audit, notifications, ratelimit, recovery, registration
from resolvers.context import Context
from resolvers.errors import BadUserInput, FeatureDisabled, NotFound, Problems, unauthenticated
from resolvers.identifiers import normalize_identifier
from resolvers.security import is_text
from resolvers.sessions import profile_of
from stores import customers, sessions
from stores.documents import CustomerDocument, CustomerProfile, CustomerStatus

MAX_PAGE = 100
MAX_SEARCH = 100
MAX_ID = 64
CURSOR_VERSION = "c1"


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
    if not customer_id or len(customer_id) > MAX_ID or not is_text(customer_id):
        return None
    customer = await ctx.loaders.customer.load(customer_id)
    if customer is None or customer.store_id != ctx.application.identity_store_id:
        return None
    return customer


@dataclass(frozen=True)
class Listing:
    """Which customers an admin listing holds: a normalised ``search`` prefix and the filters."""

    search: str | None = None
    status: CustomerStatus | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive

    def query(self) -> dict:
        return asdict(self)


async def session_count(ctx: Context, customer_id: str) -> int:
    """How many active sessions the customer has; batched (``ctx.loaders.session_count``), so a page of
    customers costs one query."""
    return await ctx.loaders.session_count.load(customer_id)


async def mfa_enabled(ctx: Context, customer_id: str) -> bool:
    """True when at least one of the customer's second factors is confirmed (an enrolment not yet proved by
    a first code does not count); batched like :func:`session_count`."""
    return await ctx.loaders.mfa_enabled.load(customer_id)


def encode_cursor(customer: CustomerDocument) -> str:
    """The customer's place in the listing's order (its id), opaque to clients."""
    return base64.urlsafe_b64encode(f"{CURSOR_VERSION}:{customer.id}".encode()).decode()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _decode_cursor(problems: Problems, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        version, customer_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        if version != CURSOR_VERSION or not customer_id or len(customer_id) > MAX_ID or not is_text(customer_id):
            raise ValueError
        return customer_id
    except (binascii.Error, UnicodeError, ValueError):
        problems.add("after", "INVALID", "This cursor is not valid: use an endCursor or an edge's cursor.")
        return None


def build_listing(*, search: str | None = None, status: str | None = None, created_after: datetime | None = None,
                  created_before: datetime | None = None, problems: Problems) -> Listing:
    """The listing these arguments ask for; what is wrong with them goes to ``problems`` (see :func:`page`)."""
    if search is not None and len(search) > MAX_SEARCH:
        problems.add("search", "TOO_LONG", f"Use at most {MAX_SEARCH} characters.")
        search = None
    elif search is not None and not is_text(search):
        problems.add("search", "INVALID", "Remove characters that are not valid text.")
        search = None
    after = _utc(created_after) if created_after is not None else None
    before = _utc(created_before) if created_before is not None else None
    if after is not None and before is not None and after >= before:
        problems.add("filter.createdBefore", "OUT_OF_RANGE", "Must be after filter.createdAfter.")
    normalized = normalize_identifier(search) if search and search.strip() else None
    return Listing(search=normalized or None, status=CustomerStatus(status) if status else None,
                   created_after=after, created_before=before)


async def page(ctx: Context, *, first: int, after: str | None, listing: Listing | None = None,
               problems: Problems | None = None) -> tuple[list[CustomerDocument], bool]:
    """A page of the customers of the request application's identity store, in id order (ids never change:
    a customer added meanwhile never shifts a later page; the order is stable, not chronological). BadUserInput
    (top level) for a ``first`` outside 1..100, a cursor that is not ours, or the problems already found."""
    problems = problems if problems is not None else Problems()
    if first < 1 or first > MAX_PAGE:
        problems.add("first", "OUT_OF_RANGE", f"Ask for 1 to {MAX_PAGE} customers.")
    position = _decode_cursor(problems, after)
    if problems.items:
        raise BadUserInput(problems.items)
    listing = listing or Listing()
    docs, has_next = await customers.page(ctx.application.identity_store_id, first=first, after=position,
                                          **listing.query())
    for doc in docs:
        ctx.loaders.customer.prime(doc.id, doc)
    return docs, has_next


async def count(ctx: Context, listing: Listing) -> int:
    """How many customers the listing holds, all pages together (one count query)."""
    return await customers.count_matching(ctx.application.identity_store_id, **listing.query())


async def _found(ctx: Context, customer_id: str) -> CustomerDocument:
    customer = await get(ctx, customer_id)
    if customer is None:
        raise NotFound("No customer has this id.", field="id")
    return customer


def _not_allowed(message: str) -> None:
    problems = Problems()
    problems.add("id", "NOT_ALLOWED", message)
    problems.raise_if_any()


async def disable(ctx: Context, customer_id: str) -> CustomerDocument:
    """Disable an account: it can no longer sign in, and every session ends at once. The account afterwards.

    One write sets the status and bumps the credential version (so a sign-in racing this one cannot
    keep its session, see ``resolvers.sessions``); then the sessions are deleted. NotFound for an id
    outside this identity store.
    """
    customer = await get(ctx, customer_id)
    if customer is None:
        raise NotFound("No customer has this id.", field="id")
    change_id = await notifications.prepare_credential_notice(ctx, customer.id, None)  # ends sessions durably
    if not await customers.disable(customer.id, ctx.now_ms(), change_id):
        raise NotFound("No customer has this id.", field="id")
    ended = await sessions.delete_for_subject(customer.id)
    ctx.jobs.start(change_id)
    await audit.record(ctx, "customer.disabled", subject_id=customer.id, sessions_ended=ended)
    return await _found_fresh(customer.id)


async def _found_fresh(customer_id: str) -> CustomerDocument:
    customer = await customers.get(customer_id)
    if customer is None:
        raise NotFound("No customer has this id.", field="id")
    return customer


async def enable(ctx: Context, customer_id: str) -> CustomerDocument:
    """Undo :func:`disable`: the account gets back the status it had (active when it was ever activated,
    else pending) and can sign in again with its password. A pending self-deletion is cancelled in the same
    write (its erasure job then does nothing, even if the account is disabled again); once the erasure has
    begun the account stays disabled. An account that is not disabled is returned unchanged. NotFound for
    an id outside this identity store."""
    customer = await _found(ctx, customer_id)
    if customer.status != CustomerStatus.DISABLED:
        return customer
    restored = CustomerStatus.ACTIVE if customer.activated_at_ms or customer.email_verified else CustomerStatus.PENDING
    enabled = await customers.enable(customer.id, restored, ctx.now_ms())
    if enabled is None:  # enabled (or gone) meanwhile
        return await _found_fresh(customer.id)
    await sessions.refresh_profile(enabled.id, profile_of(enabled).model_dump())
    await audit.record(ctx, "customer.enabled", subject_id=enabled.id, status=enabled.status.value)
    return enabled


async def revoke_sessions(ctx: Context, customer_id: str) -> int:
    """End every session of the customer at once (their tokens stop working on the next request); the
    account stays as it is. How many sessions ended. NotFound for an id outside this identity store."""
    customer = await _found(ctx, customer_id)
    ended = await sessions.delete_for_subject(customer.id)
    await audit.record(ctx, "customer.sessions_revoked", subject_id=customer.id, sessions_ended=ended)
    return ended


async def send_password_reset(ctx: Context, customer_id: str) -> None:
    """Send the customer the normal password-reset mail (``resolvers.recovery``), as the request's
    application (its policy, reset page and branding). Counted against the same per-address budget as
    the public request, but said: RateLimited when it is spent. NotFound; FeatureDisabled when the
    policy has reset off; InvalidInput (``id`` NOT_ALLOWED) unless the account is active."""
    customer = await _found(ctx, customer_id)
    if not ctx.policy.password_reset.enabled:
        raise FeatureDisabled()
    if customer.status != CustomerStatus.ACTIVE:
        _not_allowed("Only an active account can reset its password: a pending one needs its activation mail, "
                     "a disabled one to be enabled.")
    await ratelimit.hit(ctx, "reset-email", customer.email_norm, ctx.rules.reset_email)
    await recovery.send_reset_mail(ctx, customer)
    await audit.record(ctx, "customer.password_reset_sent", subject_id=customer.id)


async def resend_activation(ctx: Context, customer_id: str) -> None:
    """Send a pending customer a new activation link (``resolvers.registration.send_activation``; the
    previous link stops working). Counted against the same per-address budget as the public re-send:
    RateLimited when spent. NotFound; InvalidInput (``id`` NOT_ALLOWED) unless the account is pending."""
    customer = await _found(ctx, customer_id)
    if customer.status != CustomerStatus.PENDING:
        _not_allowed("Only a pending account has an activation mail to send.")
    await ratelimit.hit(ctx, "resend-email", customer.email_norm, ctx.rules.activation_resend_email)
    await registration.send_activation(ctx, customer)
    await audit.record(ctx, "customer.activation_resent", subject_id=customer.id)
