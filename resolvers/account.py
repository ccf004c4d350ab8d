"""Account settings: the ways to sign in, linked identities, and deleting the account.

**Ways in.** A customer signs in with their password (if they have one), a linked social identity or
a passkey (:func:`ways_in`). MFA factors are listed among the login methods but
are second factors, never a way in on their own. Unlinking the last way in is refused
(``LastLoginMethod``), with one conditional write, so two concurrent unlinks cannot both pass.

**Deletion** (``accountDelete``, under recent re-authentication and the current password):

- With the policy's ``accountDeletion.graceDays`` at 0, the account is erased now, in the request
  (:func:`erase_account`). The erasure job is written first, so an erasure cut short by a crash is
  finished by any instance's sweep.
- With N > 0 the account is disabled at once (its credential version bumps and its sessions end),
  an erasure job is scheduled N days ahead, and a notice job mails an undo link (one use, valid N
  days, confirmed on the ``/account/restore`` page). Undoing makes the account active again; the
  erasure job then finds the account no longer waits for it and does nothing. The job and the undo
  exclude each other with one conditional write each (``stores.erasure.begin_erasure`` /
  ``cancel_deletion``): once an erasure has begun, undo is too late.
- The erasure (:func:`_erase`) removes every trace ``stores.erasure`` knows of (staff's audit events
  about the customer stay, pseudonymised: :func:`pseudonym_of`), records one audit event that keeps
  only the customer's id, mails the confirmation (no outbox record stays once it is sent), deletes the
  account (freeing the email and username), writes a follow-up job that sweeps again 10 s later
  (:func:`run_erasure_follow_up`: what a request in flight wrote after the sweep), and deletes the
  jobs naming the customer last. Every step can run again: after a crash the job repeats it from the
  start.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from resolvers import audit, links
from resolvers.context import Context, RequestMeta
from resolvers.customers import get as get_in_store
from resolvers.errors import InvalidCredentials, InvalidToken, LastLoginMethod, NotFound, Problems, unauthenticated
from resolvers.links import LinkState
from resolvers.mail_views import customer_view
from resolvers.security import is_text, keyed_hash, new_id
from resolvers.self_service import Area, own_account
from resolvers.sessions import MAX_PASSWORD_INPUT, check_own_password, require_recent_authentication
from stores import customers, erasure, mfa, sessions
from stores import login_methods as login_method_store
from stores import passkeys as passkey_store
from stores.documents import (
    CustomerDocument,
    CustomerStatus,
    FactorType,
    LinkedIdentity,
    MfaFactorDocument,
    PasskeyDocument,
)

ERASURE_JOB = "account_erasure"
ERASURE_FOLLOW_UP_JOB = "account_erasure_follow_up"
FOLLOW_UP_DELAY_MS = 10_000  # long enough for a request that began before the erasure to have written
PSEUDONYM_LABEL = "identity-gateway/erased-customer/v1"
DELETION_NOTICE_JOB = "account_deletion_notice"
IDENTITY_NOTICE_JOB = "linked_identity_notice"  # "a sign-in with <provider> was linked / unlinked" mails
UNDO_PURPOSE = "account_deletion_undo"
UNDO_PATH = "/account/restore"
DAY_MS = 86_400_000
MAX_ID = 64
UNLINK_ATTEMPTS = 5


class Actor(NamedTuple):
    """Who asked for a change: ``kind`` ``customer`` (the account's owner), ``admin`` or ``api_key`` (a
    partner's key), and their id."""

    kind: str
    id: str

    @classmethod
    def staff(cls, ctx: Context) -> Actor:
        """The signed-in admin, or the partner API key, making the request."""
        principal = ctx.principal
        return cls("api_key" if principal.api_key_name is not None else "admin", principal.subject_id)


@dataclass(frozen=True)
class LoginMethods:
    password: bool  # the account has a password
    mfa_factors: list[MfaFactorDocument]  # confirmed second factors, listed but not ways in
    linked_identities: list[LinkedIdentity]
    passkeys: list[PasskeyDocument]  # ways in, and second factors where the policy offers PASSKEY


@dataclass(frozen=True)
class Deletion:
    """What ``accountDelete`` did: erased now, or erasure scheduled for ``erase_at`` (undo possible until then)."""

    erased: bool
    erase_at: datetime | None = None


def ways_in(customer: CustomerDocument) -> int:
    """How many ways the customer can sign in with on their own: the password (if set), each linked
    identity and each passkey (``passkey_count``). Other MFA factors are second factors: not ways in."""
    return (1 if customer.password_hash else 0) + len(customer.linked_identities) + max(0, customer.passkey_count)


async def viewed_customer(ctx: Context, customer_id: str, area: Area) -> CustomerDocument:
    """The customer a ``Customer`` field is about: a signed-in customer's own account (the area must be
    on; any other id is NotFound), or, for an admin (``customers:read`` is declared on ``customer(id)``),
    a customer of the request's identity store."""
    if ctx.principal is None:
        raise unauthenticated()
    if ctx.principal.kind == "customer":
        if own_account(ctx, area) != customer_id:
            raise NotFound()
        customer = await ctx.loaders.customer.load(customer_id)
    else:
        customer = await get_in_store(ctx, customer_id)
    if customer is None:
        raise NotFound()
    return customer


async def login_methods(ctx: Context, customer_id: str) -> LoginMethods:
    """The password (whether set), every confirmed MFA factor (never its secret) and every linked
    identity of the customer. FeatureDisabled when account settings are off (for the customer)."""
    return await _methods_of(await viewed_customer(ctx, customer_id, Area.ACCOUNT_SETTINGS))


async def _methods_of(customer: CustomerDocument) -> LoginMethods:
    factors = [factor for factor in await mfa.list_for_customer(customer.id)
               if factor.confirmed and factor.type != FactorType.PASSKEY]  # passkeys are listed as such
    return LoginMethods(password=customer.password_hash is not None, mfa_factors=factors,
                        linked_identities=list(customer.linked_identities),
                        passkeys=await passkey_store.list_for_customer(customer.id))


async def remove_linked_identity(ctx: Context, identity_id: str) -> LoginMethods:
    """Unlink one of the signed-in customer's social identities, under recent re-authentication.

    NotFound for an id that is not one of theirs (unknown or another customer's alike);
    LastLoginMethod when it is their last way to sign in; ReauthenticationRequired; FeatureDisabled.
    """
    customer_id = own_account(ctx, Area.ACCOUNT_SETTINGS)
    require_recent_authentication(ctx)
    for _ in range(UNLINK_ATTEMPTS):
        customer = await customers.get(customer_id)
        if customer is None:
            raise unauthenticated()
        identity = next((i for i in customer.linked_identities if i.id == identity_id), None)
        if identity is None:
            raise NotFound("No linked identity has this id.", field="id")
        if ways_in(customer) <= 1:
            raise LastLoginMethod()
        notice = await prepare_identity_notice(ctx, customer.id, identity.id, identity.provider, "removed")
        if await login_method_store.remove_linked_identity(
                customer.id, identity.id, expected_count=len(customer.linked_identities),
                expected_password_hash=customer.password_hash, now_ms=ctx.now_ms(),
                expected_passkeys=customer.passkey_count):
            break
        # the ways in changed meanwhile (another unlink, a new link): count them again
    else:
        raise RuntimeError("linked identity removal kept racing with other changes")
    ctx.jobs.start(notice)
    if identity.issuer is not None:
        await login_method_store.release(
            login_method_store.claim_id(customer.store_id, identity.issuer, identity.subject), customer_id)
    await audit.record(ctx, "customer.linked_identity_removed", subject_id=customer_id, provider=identity.provider)
    customer = await customers.get(customer_id)
    if customer is None:
        raise unauthenticated()
    return await _methods_of(customer)


# -- linking (social sign-in, resolvers/social.py) ----------------------------------------------------

class LinkOutcome(StrEnum):
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"  # this customer holds it already: nothing changed
    IN_USE = "in_use"  # another customer of the identity store holds this provider identity


def holds(customer: CustomerDocument, issuer: str, subject: str) -> bool:
    return any(i.issuer == issuer and i.subject == subject for i in customer.linked_identities)


async def identity_holder(store_id: str, issuer: str, subject: str) -> CustomerDocument | None:
    """The customer of the identity store who holds this provider identity, or None. A claim whose
    customer is gone or no longer has the identity (a crash between the two writes) counts as none."""
    found = await login_method_store.get_claim(login_method_store.claim_id(store_id, issuer, subject))
    if found is None:
        return None
    customer = await customers.get(found.customer_id)
    return customer if customer is not None and holds(customer, issuer, subject) else None


async def claim_identity(ctx: Context, store_id: str, issuer: str, subject: str, customer_id: str) -> bool:
    """Make ``customer_id`` the one customer of the store holding this provider identity, before it is
    written to their account (the claim's unique ``_id`` decides between concurrent linkings). False when
    another customer holds it; a stale claim (see :func:`identity_holder`) is taken over."""
    key = login_method_store.claim_id(store_id, issuer, subject)
    for _ in range(UNLINK_ATTEMPTS):
        holder_id = await login_method_store.claim(key, customer_id, store_id, ctx.now())
        if holder_id is None:
            return True
        holder = await customers.get(holder_id)
        if holder is not None and holds(holder, issuer, subject):
            return False
        if await login_method_store.take_over(key, holder_id, customer_id):
            return True
    return False


async def release_identity(store_id: str, issuer: str, subject: str, customer_id: str) -> None:
    """Give up the customer's claim on a provider identity (it did not reach their account after all)."""
    await login_method_store.release(login_method_store.claim_id(store_id, issuer, subject), customer_id)


async def add_linked_identity(ctx: Context, customer: CustomerDocument, *, provider: str, issuer: str,
                              subject: str, email: str | None) -> LinkOutcome:
    """Link a provider identity (``issuer`` and ``subject``, as the provider proved them) to the customer:
    one more way in. IN_USE when another customer of the store holds it (never moved silently);
    ALREADY_LINKED when this customer does. The caller decides that the customer may link (signed in,
    recently authenticated) and records the audit event."""
    if holds(customer, issuer, subject):
        return LinkOutcome.ALREADY_LINKED
    if not await claim_identity(ctx, customer.store_id, issuer, subject, customer.id):
        return LinkOutcome.IN_USE
    identity = LinkedIdentity(id=new_id(), provider=provider, subject=subject, email=email,
                              linked_at_ms=ctx.now_ms(), issuer=issuer)
    notice = await prepare_identity_notice(ctx, customer.id, identity.id, provider, "added")
    if not await login_method_store.add_linked_identity(customer.id, identity):
        await login_method_store.release(login_method_store.claim_id(customer.store_id, issuer, subject), customer.id)
        raise unauthenticated()  # the account is gone
    ctx.jobs.start(notice)
    return LinkOutcome.LINKED


async def prepare_identity_notice(ctx: Context, customer_id: str, identity_id: str, provider: str, change: str) -> str:
    """The durable job mailing "a sign-in with <provider> was linked to / removed from your account",
    written before the change (once made, its notice is not lost; if the change fails, the job finds it
    did not hold and mails nothing)."""
    return await ctx.jobs.enqueue(IDENTITY_NOTICE_JOB, {"customer_id": customer_id, "identity_id": identity_id,
                                                        "provider": provider, "change": change})


async def send_identity_notice(ctx: Context, payload: dict, job_id: str) -> None:
    """The job: mail the account's verified address about a linked or removed identity, if the change held."""
    customer = await customers.get(payload["customer_id"])
    if customer is None or not customer.email_verified:
        return
    added = payload["change"] == "added"
    if added != any(i.id == payload["identity_id"] for i in customer.linked_identities):
        return  # the change failed, or was undone since: nothing to tell
    await ctx.mailer.send("identity_linked" if added else "identity_unlinked", customer.email,
                          {"customer": customer_view(customer), "provider": payload["provider"]},
                          ctx.application, customer.locale, subject_id=customer.id)


# -- deletion ----------------------------------------------------------------------------------------

async def _check_current_password(ctx: Context, customer: CustomerDocument, password: str | None) -> None:
    """The current password, when the account has one (``resolvers.sessions.check_own_password``: the
    session's own budget, as a password change counts it)."""
    if customer.password_hash is None:
        return  # passwordless: the recent authentication is the proof
    problems = Problems()
    if not password:
        problems.add("currentPassword", "REQUIRED", "Enter your password.")
    elif len(password) > MAX_PASSWORD_INPUT or not is_text(password):
        problems.add("currentPassword", "INVALID", "Enter your password.")
    problems.raise_if_any()
    try:
        await check_own_password(ctx, customer, password)
    except InvalidCredentials:
        await audit.record(ctx, "customer.deletion_refused", subject_id=customer.id, reason="wrong_password")
        raise


async def delete_account(ctx: Context, current_password: str | None) -> Deletion:
    """Delete the signed-in customer's account (see the module docstring).

    ReauthenticationRequired unless the session authenticated recently; InvalidCredentials for a wrong
    current password; InvalidInput when it is missing (accounts with a password); RateLimited;
    FeatureDisabled when account deletion is off.
    """
    customer_id = own_account(ctx, Area.ACCOUNT_DELETION)
    require_recent_authentication(ctx)
    customer = await customers.get(customer_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE:
        raise unauthenticated()
    await _check_current_password(ctx, customer, current_password)
    actor = Actor("customer", customer.id)
    grace_days = ctx.policy.account_deletion.grace_days
    if grace_days <= 0:
        await erase_account(ctx, customer.id, actor=actor)
        return Deletion(erased=True)
    now_ms = ctx.now_ms()
    erase_at_ms = now_ms + grace_days * DAY_MS
    job_id = await ctx.jobs.enqueue(ERASURE_JOB, {"customer_id": customer.id, "actor_kind": actor.kind,
                                                  "actor_id": actor.id, "scheduled": True}, run_after_ms=erase_at_ms)
    notice_id = await ctx.jobs.enqueue(DELETION_NOTICE_JOB, {"customer_id": customer.id, "erasure_job_id": job_id})
    if await erasure.schedule_deletion(customer.id, job_id, erase_at_ms, now_ms) is None:
        raise unauthenticated()  # disabled (or deleted) since this request began
    ended = await sessions.delete_for_subject(customer.id)
    ctx.jobs.start(notice_id)
    await audit.record(ctx, "customer.deletion_scheduled", subject_id=customer.id, grace_days=grace_days,
                       sessions_ended=ended)
    return Deletion(erased=False, erase_at=datetime.fromtimestamp(erase_at_ms / 1000, ctx.now().tzinfo))


async def send_deletion_notice(ctx: Context, payload: dict[str, Any], job_id: str) -> None:
    """The job: mail the undo link, if the account still waits for the erasure it was written for."""
    customer = await customers.get(payload["customer_id"])
    if customer is None or customer.deletion_job_id != payload["erasure_job_id"] \
            or customer.erasure_started_at_ms is not None or customer.deletion_due_at_ms is None:
        return
    minutes_left = (customer.deletion_due_at_ms - ctx.now_ms()) / 60_000
    if minutes_left <= 1:
        return
    url = await links.issue(ctx, UNDO_PURPOSE, customer.id, int(minutes_left), UNDO_PATH,
                            credential_version=customer.credential_version)
    await ctx.mailer.send("account_deletion_scheduled", customer.email, {
        "customer": customer_view(customer), "action_url": url, "expires_in_minutes": int(minutes_left),
        "deletion_date": datetime.fromtimestamp(customer.deletion_due_at_ms / 1000, ctx.now().tzinfo).date().isoformat(),
    }, ctx.application, customer.locale, subject_id=customer.id)


async def erase_account(ctx: Context, customer_id: str, *, actor: Actor) -> None:
    """Erase a customer's account and everything they left anywhere, now (self-deletion without grace,
    or an admin's ``customerDelete``). NotFound for an id outside the request's identity store.

    The erasure job is written first: if this process dies midway, any instance's sweep finishes it.
    """
    customer = await customers.get(customer_id) if customer_id and len(customer_id) <= MAX_ID else None
    if customer is None or (actor.kind != "customer" and customer.store_id != ctx.application.identity_store_id):
        raise NotFound()
    job_id = await ctx.jobs.enqueue(ERASURE_JOB, {"customer_id": customer.id, "actor_kind": actor.kind,
                                                  "actor_id": actor.id})
    started = await erasure.begin_erasure(customer.id, job_id, ctx.now_ms(), scheduled_only=False)
    if started is None:
        raise NotFound()
    await _erase(ctx, customer.id, started, actor)


async def run_erasure(ctx: Context, payload: dict[str, Any], job_id: str) -> None:
    """The job (``ERASURE_JOB``): a scheduled deletion whose grace has passed, or an erasure to finish.

    A scheduled one erases only if the account still waits for this job (not undone, not enabled again
    by an admin). An account already gone means an erasure was cut short after deleting it: the rest
    (traces by id, jobs) is done again.
    """
    customer_id = payload["customer_id"]
    actor = Actor(payload.get("actor_kind", "customer"), payload.get("actor_id", customer_id))
    customer = await customers.get(customer_id)
    if customer is None:
        await _erase(ctx, customer_id, None, actor)
        return
    if payload.get("scheduled"):
        started = await erasure.begin_erasure(customer_id, job_id, ctx.now_ms(), scheduled_only=True)
    else:
        started = customer if customer.deletion_job_id == job_id else None
    if started is not None:
        await _erase(ctx, customer_id, started, actor)


def pseudonym_of(ctx: Context, customer_id: str) -> str:
    """What staff's audit events say instead of an erased customer's id (and address): ``erased:`` and a
    keyed hash (HMAC-SHA-256 under ``GATEWAY_SECRET_KEY``, 128 bits) of the id. The same for every event
    of one customer, so an admin's actions about them stay linkable; nobody without the key can tell whom
    it was, and the id itself is gone from everywhere but the one deletion event."""
    return "erased:" + keyed_hash(ctx.rules.secret_key, f"{PSEUDONYM_LABEL}\x00{customer_id}")


async def _erase(ctx: Context, customer_id: str, customer: CustomerDocument | None, actor: Actor) -> None:
    """Every step deletes or writes what is missing, so it can run again (after a crash, or on another instance).

    Before the jobs naming the customer go, a follow-up job (:func:`run_erasure_follow_up`) is written
    for ``FOLLOW_UP_DELAY_MS`` later: it sweeps the traces again, catching what a request in flight
    appended after this sweep (an audit event, a consent, a mail)."""
    addresses = [customer.email] if customer else []
    await erasure.erase_traces(customer_id, addresses, pseudonym_of(ctx, customer_id))
    if not await erasure.deletion_recorded(customer_id):
        # The one event that stays: no IP, user agent or request id (theirs, when they asked), only the id.
        anonymous = dataclasses.replace(ctx, request=RequestMeta())
        await audit.record(anonymous, erasure.DELETION_EVENT, subject_id=customer_id, actor_kind=actor.kind,
                           actor_id=actor.id)
    if customer is not None and customer.email_verified:
        await ctx.mailer.send("account_deleted", customer.email, {"customer": customer_view(customer)},
                              ctx.application, customer.locale, erase_when_done=True)
    await erasure.delete_customer(customer_id)
    await ctx.jobs.enqueue(ERASURE_FOLLOW_UP_JOB, {"erased_customer_id": customer_id, "addresses": addresses},
                           run_after_ms=ctx.now_ms() + FOLLOW_UP_DELAY_MS)
    await erasure.delete_jobs(customer_id, customer.email_norm if customer else None)


async def run_erasure_follow_up(ctx: Context, payload: dict[str, Any], job_id: str) -> None:
    """The job (``ERASURE_FOLLOW_UP_JOB``), ``FOLLOW_UP_DELAY_MS`` after an erasure: sweep the erased
    customer's traces again (``stores.erasure.erase_traces``, same id and addresses) and the jobs naming
    their id. Its payload uses keys of its own (``erased_customer_id``), so the erasure's job clean-up
    leaves it; it is deleted when it completes. Jobs naming only the address are left alone: the address
    is free now, and a new registrant's may name it."""
    customer_id = payload["erased_customer_id"]
    await erasure.erase_traces(customer_id, list(payload.get("addresses") or []), pseudonym_of(ctx, customer_id))
    await erasure.delete_jobs(customer_id, None)


# -- undo (the /account/restore page) ---------------------------------------------------------------

async def peek_undo(ctx: Context, token: str) -> LinkState:
    """What confirming this undo link would do, reading only: USABLE while the account waits for its
    erasure; ALREADY_DONE when the link was used and the account is active; INVALID otherwise."""
    try:
        found = await links.peek(ctx, UNDO_PURPOSE, token)
    except InvalidToken:
        return await _used_state(token)
    customer = await customers.get(found.subject_id)
    waiting = customer is not None and customer.status == CustomerStatus.DISABLED \
        and customer.deletion_job_id is not None and customer.erasure_started_at_ms is None \
        and customer.credential_version == found.credential_version
    return LinkState.USABLE if waiting else LinkState.INVALID


async def confirm_undo(ctx: Context, token: str) -> LinkState:
    """Use the undo link: the account is active again and will not be erased (CONFIRMED); else as
    :func:`peek_undo`."""
    try:
        found = await links.consume(ctx, UNDO_PURPOSE, token)
    except InvalidToken:
        return await _used_state(token)
    if not await erasure.cancel_deletion(found.subject_id, found.credential_version, ctx.now_ms()):
        return LinkState.INVALID
    await audit.record(ctx, "customer.deletion_undone", subject_id=found.subject_id, actor_kind="customer",
                       actor_id=found.subject_id)
    return LinkState.CONFIRMED


async def _used_state(token: str) -> LinkState:
    found = await links.find_any(token)
    if found is None or found.purpose != UNDO_PURPOSE or not found.used:
        return LinkState.INVALID
    customer = await customers.get(found.subject_id)
    active = customer is not None and customer.status == CustomerStatus.ACTIVE and customer.deletion_job_id is None
    return LinkState.ALREADY_DONE if active else LinkState.INVALID
