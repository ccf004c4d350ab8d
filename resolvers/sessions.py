"""Signing in and out, and turning a bearer token back into a principal.

Customers and admins sign in through one function, :func:`sign_in`; what differs between them (where
the account lives, who may sign in, how long a session lasts) is an :class:`AccountKind`.

Guessing is limited by several counters, all counted before the password is checked (so parallel
guesses cannot slip past) and cleared by a successful sign-in:

- per client IP (an IPv6 client per /64), whatever the account: ``login_ip``;
- per account and client IP, tight: ``login_identifier_ip``;
- per account, for clients that never signed in to it, softer: ``login_identifier``;
- per known device (a device token from an earlier sign-in, see ``resolvers.devices``), instead of
  the two above: ``login_device``. So failures from anywhere else never lock the owner out of a
  device they have used before.

"Per account" means the account the identifier matches (so its email and username share one
budget), or the normalised identifier when none matches.

A sign-in only stands if the account's credentials did not change while it ran: the session is
written first, then one conditional write on the account (same password hash, same credential
version, still allowed to sign in) records the sign-in and stores any rehash; if that write finds
nothing, the session is deleted and the sign-in fails. A password change bumps the version and then
ends every session, so in every interleaving the sign-in that verified the old password ends up
with no session.

With a second factor (``resolvers.mfa``: the customer has one, or the policy requires one) the
password step writes no session: it creates a challenge (random token stored as SHA-256, 5 minutes,
bound to the credential version and a digest of the password hash it verified) and answers
:class:`MfaRequired`. The budgets are not cleared then. :func:`verify_mfa` counts each code against
the challenge (the fifth wrong one ends it) and against the same budgets as a password, before
checking it; a right code is used up once, and only then is the session written, followed by the
same conditional ``confirm_sign_in``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import ua_parser

from resolvers import audit, devices, mfa, ratelimit
from resolvers.context import Clock, Context, Principal, Rules, epoch_ms
from resolvers.errors import (
    AccountNotActivated,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    Problems,
    ReauthenticationRequired,
    forbidden,
    unauthenticated,
)
from resolvers.identifiers import identifier_key
from resolvers.roles import permissions_of
from resolvers.security import is_text, new_id, new_session_token, token_hash
from resolvers.self_service import Area, own_account
from stores import admins, customers, mfa_challenges, sessions
from stores import mfa as mfa_factors
from stores.documents import (
    CustomerDocument,
    CustomerProfile,
    CustomerStatus,
    FactorType,
    MfaChallengePurpose,
    SessionDocument,
    SessionPolicy,
    UserAgentLabels,
)

MAX_IDENTIFIER = 320
MAX_PASSWORD_INPUT = 1024
MAX_TOKEN = 200

CUSTOMER = "customer"
ADMIN = "admin"


def profile_of(customer: CustomerDocument) -> CustomerProfile:
    return CustomerProfile.model_validate(customer.model_dump(include=set(CustomerProfile.model_fields)))


@dataclass(frozen=True)
class AccountKind:
    """What differs between signing in a customer and an admin."""

    name: str  # customer | admin: the session kind and the prefix of audit events and counters
    identifier_field: str  # the input field named in problems
    find: Callable[[Context, str], Awaitable[Any]]  # (ctx, normalised identifier) -> account or None
    load: Callable[[str], Awaitable[Any]]  # id -> account or None
    may_sign_in: Callable[[Any], bool]
    confirm: Callable[..., Awaitable[bool]]  # stores.<kind>.confirm_sign_in
    profile: Callable[[Any], CustomerProfile | None]


async def _find_customer(ctx: Context, identifier_norm: str) -> CustomerDocument | None:
    return await customers.get_by_identifier(ctx.application.identity_store_id, identifier_norm)


async def _find_admin(ctx: Context, identifier_norm: str):
    return await admins.get_by_normalized_email(identifier_norm)


CUSTOMERS = AccountKind(CUSTOMER, "identifier", _find_customer, customers.get,
                        lambda c: c.status != CustomerStatus.DISABLED, customers.confirm_sign_in, profile_of)
ADMINS = AccountKind(ADMIN, "email", _find_admin, admins.get, lambda a: not a.disabled, admins.confirm_sign_in,
                     lambda _: None)
KINDS = {CUSTOMER: CUSTOMERS, ADMIN: ADMINS}


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: SessionDocument
    device_token: str = ""


@dataclass(frozen=True)
class MfaRequired:
    """The password was right; ``verify_mfa`` with one of ``factors`` completes the sign-in."""

    challenge_token: str
    factors: list[FactorType]
    expires_at_ms: int
    code_sent: bool  # an emailed code is on its way


WRONG_CODE = "The code is not right."
CHALLENGE_ENDED = "This sign-in has expired or ended. Please sign in again."


def _ttl(rules: Rules, kind: str, policy: SessionPolicy | None = None) -> tuple[int, int]:
    """(absolute, idle) lifetimes in seconds: an admin's from the settings, a customer's from the
    application's policy where it sets them, else from the settings."""
    if kind == ADMIN:
        return rules.admin_session_absolute_ttl_seconds, rules.admin_session_idle_ttl_seconds
    absolute, idle = rules.session_absolute_ttl_seconds, rules.session_idle_ttl_seconds
    if policy is not None:
        absolute = policy.absolute_lifetime_minutes * 60 if policy.absolute_lifetime_minutes else absolute
        idle = policy.idle_timeout_minutes * 60 if policy.idle_timeout_minutes else idle
    return absolute, idle


def touch_interval_ms(rules: Rules, idle_seconds: int) -> int:
    """How often activity is written: the setting, but never more than half the idle timeout, so that a
    session used at least once per idle timeout never expires while in use."""
    return max(1, min(rules.session_touch_interval_seconds, idle_seconds // 2)) * 1000


def _credentials(identifier: str, password: str, field: str) -> str:
    problems = Problems()
    if not identifier or not identifier.strip():
        problems.add(field, "REQUIRED",
                     "Enter your email or username." if field == "identifier" else "Enter your email.")
    elif len(identifier) > MAX_IDENTIFIER:
        problems.add(field, "TOO_LONG", f"Use at most {MAX_IDENTIFIER} characters.")
    elif not is_text(identifier):
        problems.add(field, "INVALID", "Remove characters that are not valid text.")
    if not password:
        problems.add("password", "REQUIRED", "Enter your password.")
    elif len(password) > MAX_PASSWORD_INPUT:
        problems.add("password", "TOO_LONG", f"Use at most {MAX_PASSWORD_INPUT} characters.")
    elif not is_text(password):
        problems.add("password", "INVALID", "Remove characters that are not valid text.")
    problems.raise_if_any()
    return identifier_key(identifier)


async def create_session(ctx: Context, kind: str, subject_id: str, profile: CustomerProfile | None = None,
                         credential_version: int = 0) -> tuple[str, SessionDocument]:
    """Write a new session (every way of signing in ends here) and return its token and document.

    The user agent is parsed once, now (``agent``: device, browser, OS), so listing sessions parses
    nothing. The subject then keeps at most ``GATEWAY_MAX_SESSIONS_PER_SUBJECT`` live sessions: the least
    recently active beyond it end (an audit event ``<kind>.sessions_evicted`` names them), and the
    subject's expired sessions are deleted.
    """
    absolute, idle = _ttl(ctx.rules, kind, ctx.policy.sessions)
    now, now_ms = ctx.now(), ctx.now_ms()
    token = new_session_token(kind)
    user_agent = (ctx.request.user_agent or "")[:512] or None
    session = SessionDocument(
        id=new_id(), token_hash=token_hash(token), kind=kind, subject_id=subject_id,
        credential_version=credential_version, application_id=ctx.application.id if kind == CUSTOMER else None,
        created_at=now, expires_at=now + timedelta(seconds=absolute),
        idle_expires_at_ms=now_ms + idle * 1000, idle_timeout_ms=idle * 1000, authenticated_at_ms=now_ms,
        last_seen_at_ms=now_ms,
        ip_address=ctx.request.ip_address, user_agent=user_agent, agent=describe_user_agent(user_agent),
        profile=profile,
    )
    await sessions.insert(session)
    limit = ctx.rules.max_sessions_per_subject
    evicted, _ = await sessions.end_beyond_limit(subject_id, limit, now, now_ms)
    if evicted:
        await audit.record(ctx, f"{kind}.sessions_evicted", subject_id=subject_id, actor_kind="system",
                           actor_id=None, sessions_ended=len(evicted), session_ids=evicted, limit=limit)
    return token, session


def _budgets(ctx: Context, kind: AccountKind, account: Any, identifier_norm: str,
             device_token: str | None, *, device: str | None = None) -> list[tuple[str, str, Any]]:
    """The counters this attempt is counted against, besides the per-IP one: (bucket, key, limit).

    ``device``: a device already recognised from its token (a second-factor step of its sign-in)."""
    rules = ctx.rules
    if account is not None:
        device = device or devices.recognise(rules, device_token, kind.name, account.id, account.credential_version)
        if device is not None:
            return [(f"{kind.name}-login-device", device, rules.login_device)]
        account_key = f"account:{account.id}"
    else:
        account_key = f"identifier:{identifier_norm}"
    client = ratelimit.ip_key(ctx.request.ip_address) or ratelimit.UNKNOWN_CLIENT
    return [(f"{kind.name}-login-id-ip", f"{account_key}|{client}", rules.login_identifier_ip),
            (f"{kind.name}-login-id", account_key, rules.login_identifier)]


def _session_budget(ctx: Context, kind: AccountKind) -> list[tuple[str, str, Any]]:
    """The budget of password or code checks made from a signed-in session (re-authentication, a
    password change's current password): its own, with a known device's numbers."""
    return [(f"{kind.name}-reauthenticate", f"session:{ctx.principal.session_id}", ctx.rules.login_device)]


def sign_in_budgets(ctx: Context, customer: CustomerDocument | None, device_token: str | None,
                    identifier_norm: str = "") -> list[tuple[str, str, Any]]:
    """The budgets a customer's sign-in attempt by another first factor (a passkey, an emailed code) counts
    against: the password's, so every way in shares one budget per account (and a known device its own);
    for an unknown account, the normalised identifier's."""
    return _budgets(ctx, CUSTOMERS, customer, identifier_norm, device_token)


async def count_attempt(ctx: Context, budgets: list[tuple[str, str, Any]]) -> None:
    """Count one attempt against each of ``budgets``, before checking it; RateLimited over any."""
    await _count(ctx, budgets)


async def _count(ctx: Context, budgets: list[tuple[str, str, Any]]) -> None:
    """Count one attempt against each budget (before the check it guards); RateLimited over any."""
    for bucket, key, limit in budgets:
        await ratelimit.hit(ctx, bucket, key, limit)


async def _clear(ctx: Context, budgets: list[tuple[str, str, Any]]) -> None:
    await ratelimit.reset_many(ctx, budgets)


async def _failed(ctx: Context, kind: AccountKind, account: Any) -> InvalidCredentials:
    await audit.record(ctx, f"{kind.name}.login_failed", subject_id=account.id if account else None,
                       actor_kind="public")
    return InvalidCredentials()


async def sign_in(ctx: Context, kind_name: str, identifier: str, password: str,
                  device_token: str | None = None) -> SignedIn | MfaRequired:
    """Sign a customer (``kind_name="customer"``) or an admin in.

    Unknown account, wrong password and disabled account give the same InvalidCredentials, with the
    same work: an unknown account is verified against a dummy hash. A customer who has not activated
    is told so only after the right password. Raises RateLimited when a counter is over its limit
    (see the module docstring) or when the hash threads are saturated. A customer who must give a
    second factor gets :class:`MfaRequired` and no session (see :func:`verify_mfa`).
    """
    kind = KINDS[kind_name]
    identifier_norm = _credentials(identifier, password, kind.identifier_field)
    ctx.hasher.check_capacity()
    await ratelimit.hit_ip(ctx, f"{kind.name}-login-ip", ctx.rules.login_ip)
    account = await kind.find(ctx, identifier_norm)
    budgets = _budgets(ctx, kind, account, identifier_norm, device_token)
    await _count(ctx, budgets)
    nfkc = account.password_nfkc if account is not None else True
    ok = await ctx.hasher.verify(account.password_hash if account else None, password, nfkc=nfkc)
    if not ok or account is None or not kind.may_sign_in(account):
        raise await _failed(ctx, kind, account)
    if kind is CUSTOMERS and account.status != CustomerStatus.ACTIVE:
        raise AccountNotActivated()
    new_hash = await ctx.hasher.hash(password) if not nfkc or ctx.hasher.needs_rehash(account.password_hash) else None
    if kind is CUSTOMERS:
        return await complete_sign_in(ctx, account, method="password", budgets=budgets, new_hash=new_hash)
    return await _write_session(ctx, kind, account, budgets, new_hash, method="password")


async def complete_sign_in(ctx: Context, customer: CustomerDocument, *, method: str,
                           budgets: list[tuple[str, str, Any]] = (), new_hash: str | None = None,
                           second_factor: bool = False) -> SignedIn | MfaRequired:
    """A customer proved a first factor (``method``: password, passkey, a social identity, an emailed
    link): ask for a second factor when the policy and their factors call for one (:class:`MfaRequired`,
    no session), else write the session. Every way of signing in ends here, so the rules after the first
    factor are the same for all of them.

    ``second_factor``: the proof was already multi-factor (a passkey with user verification), so no
    second factor is asked. ``budgets`` are the counters the attempt was counted against (cleared on
    success). The session stands only if the account is still active with the credentials read (see the
    module docstring); otherwise InvalidCredentials. AccountNotActivated for a pending account.
    """
    if customer.status != CustomerStatus.ACTIVE:
        raise AccountNotActivated() if customer.status == CustomerStatus.PENDING else await _failed(ctx, CUSTOMERS,
                                                                                                     customer)
    if not second_factor:  # held factors are asked under every application, mfa.mode OFF included
        factors = mfa.offered_factors(ctx.policy, await mfa_factors.list_for_customer(customer.id))
        if factors:
            return await _challenge(ctx, customer, factors, list(budgets), new_hash)
    return await _write_session(ctx, CUSTOMERS, customer, list(budgets), new_hash, method=method)


async def _write_session(ctx: Context, kind: AccountKind, account: Any, budgets: list[tuple[str, str, Any]],
                         new_hash: str | None, *, method: str) -> SignedIn:
    """Write the session, then the conditional confirmation on the account (see the module docstring)."""
    token, session = await create_session(ctx, kind.name, account.id, kind.profile(account), account.credential_version)
    if not await kind.confirm(account.id, account.password_hash, account.credential_version, ctx.now_ms(), new_hash):
        await sessions.delete(session.id)  # the credentials changed while we checked them
        raise await _failed(ctx, kind, account)
    await _clear(ctx, budgets)
    await audit.record(ctx, f"{kind.name}.login_succeeded", subject_id=account.id, actor_kind=kind.name,
                       actor_id=account.id, session_id=session.id, method=method)
    return SignedIn(token, session, devices.issue(ctx.rules, kind.name, account.id, account.credential_version))


async def _challenge(ctx: Context, account: CustomerDocument, factors: list[FactorType],
                     budgets: list[tuple[str, str, Any]], new_hash: str | None) -> MfaRequired:
    """The password step of a sign-in that needs a second factor: a challenge, no session, budgets kept.

    A rehash the password step found due is written now (the code step never sees the password), under
    the same condition as at a full sign-in; the challenge is then bound to the new hash."""
    if new_hash is not None:
        if not await customers.confirm_sign_in(account.id, account.password_hash, account.credential_version,
                                               ctx.now_ms(), new_hash):
            raise await _failed(ctx, CUSTOMERS, account)
        account = account.model_copy(update={"password_hash": new_hash})
    device = next((key for bucket, key, _ in budgets if bucket == "customer-login-device"), None)
    challenge = await mfa.start_sign_in(ctx, account, factors, device)
    return MfaRequired(challenge.token, challenge.factors, challenge.expires_at_ms, challenge.code_sent)


async def verify_mfa(ctx: Context, challenge_token: str, factor: FactorType | None, code: str | None) -> SignedIn:
    """Complete a sign-in with a second factor's code (:func:`complete_mfa`). A passkey answers through
    ``resolvers.passkeys.finish_sign_in`` instead (InvalidInput on ``factor`` here)."""
    problems = mfa.code_problems(factor, code)
    if factor == FactorType.PASSKEY:
        problems.add("factor", "INVALID", "A passkey answers with passkeySignInStart and passkeySignInFinish.")
    if mfa.challenge_key(challenge_token) is None:
        problems.add("challengeToken", "REQUIRED", "Sign in with your password first.")
    problems.raise_if_any()
    return await complete_mfa(ctx, challenge_token, factor,
                              lambda customer, challenge: mfa.check_code(ctx, customer.id, factor, code, challenge))


async def complete_mfa(ctx: Context, challenge_token: str, factor: FactorType,
                       check: Callable[[CustomerDocument, Any], Awaitable[bool]]) -> SignedIn:
    """Complete a sign-in's second-factor step with ``factor``, whose answer ``check(customer, challenge)``
    verifies (and uses up).

    Each answer counts against the challenge (the fifth wrong one ends it) and against the account's
    sign-in budgets (those of the password step's client), before it is checked. InvalidCredentials
    for a wrong (or already used) answer; InvalidToken for an unknown, expired or ended challenge, or
    when the account's credentials changed since the password step; RateLimited over a budget.
    """
    key = mfa.challenge_key(challenge_token)
    if key is None:
        raise InvalidToken(CHALLENGE_ENDED)
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    challenge = await mfa_challenges.count_attempt({"token_hash": key}, ctx.now(), mfa.MAX_ATTEMPTS)
    if challenge is None or challenge.purpose != MfaChallengePurpose.SIGN_IN \
            or challenge.application_id != ctx.application.id:  # a session is made under the sign-in's policy
        raise InvalidToken(CHALLENGE_ENDED)
    customer = await customers.get(challenge.customer_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE \
            or customer.credential_version != challenge.credential_version \
            or mfa.password_digest(customer.password_hash) != challenge.password_hash_digest:
        await mfa_challenges.delete(challenge.id)
        raise InvalidToken(CHALLENGE_ENDED)
    budgets = _budgets(ctx, CUSTOMERS, customer, "", None, device=challenge.device)
    await _count(ctx, budgets)
    if factor not in challenge.factors or not await check(customer, challenge):
        if challenge.attempts >= mfa.MAX_ATTEMPTS:
            await mfa_challenges.delete(challenge.id)
        await audit.record(ctx, "customer.mfa_failed", subject_id=customer.id, actor_kind="public",
                           factor=factor.value, attempt=challenge.attempts)
        raise InvalidCredentials(WRONG_CODE, field="code")
    if not await mfa_challenges.consume(challenge.id):
        raise InvalidToken(CHALLENGE_ENDED)  # a concurrent request completed it
    token, session = await create_session(ctx, CUSTOMER, customer.id, profile_of(customer),
                                          customer.credential_version)
    if not await customers.confirm_sign_in(customer.id, customer.password_hash, customer.credential_version,
                                           ctx.now_ms()):
        await sessions.delete(session.id)  # the credentials changed while we checked the code
        raise await _failed(ctx, CUSTOMERS, customer)
    await _clear(ctx, budgets)
    await audit.record(ctx, "customer.login_succeeded", subject_id=customer.id, actor_kind=CUSTOMER,
                       actor_id=customer.id, session_id=session.id, factor=factor.value)
    return SignedIn(token, session, devices.issue(ctx.rules, CUSTOMER, customer.id, customer.credential_version))


def require_recent_authentication(ctx: Context) -> None:
    """ReauthenticationRequired unless the session proved who it is within the policy's
    ``reauthenticationMaxAgeMinutes`` (OWASP ASVS 3.7.1: re-authenticate before sensitive changes)."""
    if ctx.principal is None:
        raise unauthenticated()
    max_age = ctx.policy.reauthentication_max_age_minutes
    if ctx.now_ms() - ctx.principal.authenticated_at_ms > max_age * 60_000:
        raise ReauthenticationRequired(max_age)


async def reauthenticate(ctx: Context, password: str | None = None, factor: FactorType | None = None,
                         code: str | None = None) -> SignedIn:
    """Prove it is still you, with the password or with a second factor's code (``factor`` and ``code``):
    the session is marked freshly authenticated and gets a new token (the old one stops working),
    returned here.

    A customer may use the factors sign-in would ask them for (and an emailed code when the account has
    no password; ``mfa.send_reauthentication_code`` mails it). Counted against the session's own budget
    (``login_device``'s numbers), never the account's budget for unknown clients: a session is proof of
    an earlier sign-in, like a device token, so attacks on the account from elsewhere cannot stop its
    owner from confirming a change. InvalidInput unless exactly one of the two ways is given;
    InvalidCredentials for a wrong password or code; RateLimited over the budget.
    """
    if ctx.principal is None:
        raise unauthenticated()
    kind = KINDS[ctx.principal.kind]
    by_code = factor is not None or code is not None
    problems = Problems()
    if password is not None and by_code:
        problems.add("password", "INVALID", "Give either your password, or a factor and its code.")
    elif by_code:
        problems = mfa.code_problems(factor, code)
        if kind is not CUSTOMERS:
            problems.add("factor", "INVALID", "Administrators confirm it is them with their password.")
    elif not password:
        problems.add("password", "REQUIRED", "Enter your password.")
    elif len(password) > MAX_PASSWORD_INPUT or not is_text(password):
        problems.add("password", "INVALID", "Enter your password.")
    problems.raise_if_any()
    if not by_code:
        ctx.hasher.check_capacity()
    account = await kind.load(ctx.principal.subject_id)
    if account is None or not kind.may_sign_in(account):
        raise unauthenticated()
    budgets = _session_budget(ctx, kind)
    await _count(ctx, budgets)
    if by_code:
        ok = await _reauthentication_code(ctx, account, factor, code)
    else:
        ok = await ctx.hasher.verify(account.password_hash, password, nfkc=account.password_nfkc)
    if not ok:
        await audit.record(ctx, f"{kind.name}.reauthentication_failed", subject_id=account.id,
                           method=factor.value if by_code else "password")
        raise InvalidCredentials(WRONG_CODE, field="code") if by_code else InvalidCredentials()
    token = new_session_token(kind.name)
    if not await sessions.rotate(ctx.principal.session_id, ctx.principal.token_hash, token_hash(token), ctx.now_ms()):
        raise unauthenticated()  # the session ended, or was rotated by a concurrent request
    await _clear(ctx, budgets)
    await audit.record(ctx, f"{kind.name}.reauthenticated", subject_id=account.id,
                       session_id=ctx.principal.session_id, method=factor.value if by_code else "password")
    session = await sessions.get(ctx.principal.session_id)
    return SignedIn(token, session)


async def check_own_password(ctx: Context, customer: CustomerDocument, password: str) -> None:
    """InvalidCredentials unless ``password`` is the signed-in customer's (a password change's current
    password). Counted against the session's own budget first, as re-authentication is (an attack on the
    account from elsewhere cannot stop its owner); a right one clears it."""
    ctx.hasher.check_capacity()
    budgets = _session_budget(ctx, CUSTOMERS)
    await _count(ctx, budgets)
    if not await ctx.hasher.verify(customer.password_hash, password, nfkc=customer.password_nfkc):
        await audit.record(ctx, "customer.password_check_failed", subject_id=customer.id)
        raise InvalidCredentials("Your current password is not right.", field="currentPassword")
    await _clear(ctx, budgets)


async def _reauthentication_code(ctx: Context, customer: CustomerDocument, factor: FactorType, code: str) -> bool:
    """Check (and use up) a code the signed-in customer may re-authenticate with. An emailed code lives on
    the session's re-authentication challenge, counted like a sign-in challenge (five wrong codes end it)."""
    offered = mfa.offered_for_reauthentication(ctx.policy, await mfa_factors.list_for_customer(customer.id), customer)
    challenge = None
    if factor == FactorType.EMAIL_OTP:
        challenge = await mfa_challenges.count_attempt(
            {"_id": mfa.reauthentication_challenge_id(ctx.principal.session_id)}, ctx.now(), mfa.MAX_ATTEMPTS)
        if challenge is None or challenge.credential_version != customer.credential_version:
            return False
    ok = factor in offered and await mfa.check_code(ctx, customer.id, factor, code, challenge)
    if challenge is not None:
        if ok:
            return await mfa_challenges.consume(challenge.id)
        if challenge.attempts >= mfa.MAX_ATTEMPTS:
            await mfa_challenges.delete(challenge.id)
    return ok


async def sign_out(ctx: Context) -> None:
    """End the session that made the request. Forbidden for a partner API key: it has no session (revoke
    the key instead)."""
    if ctx.principal is None:
        raise unauthenticated()
    if ctx.principal.api_key_name is not None:
        raise forbidden()
    await sessions.delete(ctx.principal.session_id)
    await audit.record(ctx, f"{ctx.principal.kind}.logout", subject_id=ctx.principal.subject_id,
                       session_id=ctx.principal.session_id)


async def authenticate(rules: Rules, clock: Clock, token: str | None) -> Principal | None:
    """The principal behind a bearer token, or None. Records activity at most once per interval.

    A customer session is refused unless its copy of the profile says the account is active (every
    status change rewrites or deletes the copies), so this costs one round trip; an admin's session
    loads the admin for its role and ``disabled`` flag.
    """
    if not token or len(token) > MAX_TOKEN:
        return None
    now = clock.now()
    now_ms = epoch_ms(now)
    hashed = token_hash(token)
    session = await sessions.find_active_by_token_hash(hashed, now, now_ms)
    if session is None:
        return None
    kind, subject_id, session_id = session["kind"], session["subject_id"], session["_id"]
    permissions: frozenset[str] = frozenset()
    profile = session.get("profile")
    if kind == ADMIN:
        admin = await admins.get(subject_id)
        if admin is None or admin.disabled:
            return None
        permissions = permissions_of(admin.role)
    elif not profile or profile.get("status") != CustomerStatus.ACTIVE:
        return None
    idle_ms = session.get("idle_timeout_ms") or _ttl(rules, kind)[1] * 1000
    interval_ms = touch_interval_ms(rules, idle_ms // 1000)
    if now_ms - session["last_seen_at_ms"] >= interval_ms:
        await sessions.touch(session_id, now_ms, now_ms + idle_ms, now_ms - interval_ms + 1)
    authenticated_at_ms = session.get("authenticated_at_ms") or epoch_ms(session["created_at"])
    return Principal(kind=kind, subject_id=subject_id, session_id=session_id, permissions=permissions,
                     profile=profile, authenticated_at_ms=authenticated_at_ms, token_hash=hashed,
                     application_id=session.get("application_id"))


async def own_sessions(ctx: Context) -> list[SessionDocument]:
    """The signed-in customer's active sessions, newest first (the hosted portal's list; ``me.sessions``
    reads the same loader). FeatureDisabled when security settings are off."""
    return await ctx.loaders.sessions.load(own_account(ctx, Area.SECURITY_SETTINGS))


async def revoke(ctx: Context, session_id: str) -> None:
    """End one of the signed-in customer's sessions (this one included). NotFound for an unknown id and
    for another customer's alike."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    if not isinstance(session_id, str) or not session_id or len(session_id) > 64 \
            or not await sessions.delete_own(customer_id, session_id):
        raise NotFound()
    await audit.record(ctx, "customer.session_revoked", subject_id=customer_id, session_id=session_id)


async def revoke_others(ctx: Context) -> int:
    """End every session of the signed-in customer but the current one; returns how many ended."""
    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    ended = await sessions.delete_others(customer_id, ctx.principal.session_id)
    await audit.record(ctx, "customer.sessions_revoked", subject_id=customer_id, sessions_ended=ended,
                       session_id=ctx.principal.session_id)
    return ended


@lru_cache(maxsize=1024)
def describe_user_agent(user_agent: str | None) -> UserAgentLabels:
    """What a user agent says, for people: ``browser`` "Firefox 121", ``os`` "Windows 10", ``device``
    "iPhone"; None where it says nothing recognisable. Parsed with ``ua-parser`` and its precompiled rules
    (``ua-parser-builtins``), once per session at sign-in; memoised, since most sign-ins share a few agents."""
    if not user_agent:
        return UserAgentLabels()
    parsed = ua_parser.parse(user_agent)

    def named(family: str | None, *parts: str | None) -> str | None:
        if not family or family == "Other":
            return None
        version = ".".join(p for p in parts if p)
        return f"{family} {version}" if version else family

    agent, system, device = parsed.user_agent, parsed.os, parsed.device
    return UserAgentLabels(
        device=named(device.family) if device else None,
        browser=named(agent.family, agent.major) if agent else None,
        os=named(system.family, system.major, system.minor) if system else None,
    )


def labels_of(session: SessionDocument) -> UserAgentLabels:
    """A session's device, browser and OS: those stored at sign-in; for a session written before they were
    stored, parsed now from its user agent (memoised; such sessions end within the absolute lifetime)."""
    return session.agent if session.agent is not None else describe_user_agent(session.user_agent)
