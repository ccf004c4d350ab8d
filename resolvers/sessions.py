"""Signing in and out, and turning a bearer token back into a principal."""

from __future__ import annotations

from datetime import timedelta

from resolvers import audit, ratelimit
from resolvers.context import Clock, Context, Principal, Rules, epoch_ms
from resolvers.errors import AccountNotActivated, InvalidCredentials, Problems, unauthenticated
from resolvers.security import is_text, new_id, new_session_token, normalize_identifier, token_hash
from stores import admins, customers, sessions
from stores.documents import CustomerDocument, CustomerProfile, SessionDocument

MAX_IDENTIFIER = 320
MAX_PASSWORD_INPUT = 1024
MAX_TOKEN = 200

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({
        "customers:read", "customers:write", "sessions:read", "sessions:write", "audit:read",
        "policies:read", "policies:write", "applications:read", "applications:write",
        "templates:read", "templates:write", "admins:read", "admins:write",
    }),
    "admin": frozenset({
        "customers:read", "customers:write", "sessions:read", "sessions:write", "audit:read",
        "policies:read", "policies:write", "applications:read", "applications:write",
        "templates:read", "templates:write",
    }),
    "support": frozenset({"customers:read", "sessions:read", "sessions:write", "audit:read"}),
    "viewer": frozenset({"customers:read", "sessions:read", "audit:read"}),
}


def profile_of(customer: CustomerDocument) -> CustomerProfile:
    return CustomerProfile.model_validate(customer.model_dump(include=set(CustomerProfile.model_fields)))


def _ttl(rules: Rules, kind: str) -> tuple[int, int]:
    if kind == "admin":
        return rules.admin_session_absolute_ttl_seconds, rules.admin_session_idle_ttl_seconds
    return rules.session_absolute_ttl_seconds, rules.session_idle_ttl_seconds


def _credentials(identifier: str, password: str, field: str) -> str:
    problems = Problems()
    if not identifier or not identifier.strip():
        problems.add(field, "REQUIRED", "Enter your email or username." if field == "identifier" else "Enter your email.")
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
    return normalize_identifier(identifier)


async def create_session(ctx: Context, kind: str, subject_id: str,
                         profile: CustomerProfile | None = None) -> tuple[str, SessionDocument]:
    absolute, idle = _ttl(ctx.rules, kind)
    now, now_ms = ctx.now(), ctx.now_ms()
    token = new_session_token(kind)
    session = SessionDocument(
        id=new_id(), token_hash=token_hash(token), kind=kind, subject_id=subject_id,
        created_at=now, expires_at=now + timedelta(seconds=absolute),
        idle_expires_at_ms=now_ms + idle * 1000, last_seen_at_ms=now_ms,
        ip_address=ctx.request.ip_address, user_agent=(ctx.request.user_agent or "")[:512] or None,
        profile=profile,
    )
    await sessions.insert(session)
    return token, session


async def _throttle(ctx: Context, scope: str, identifier_norm: str) -> None:
    await ratelimit.hit(ctx, f"{scope}-login-ip", ctx.request.ip_address, ctx.rules.login_ip)
    await ratelimit.hit(ctx, f"{scope}-login-id", identifier_norm, ctx.rules.login_identifier)


async def _failed(ctx: Context, scope: str, identifier_norm: str, subject_id: str | None) -> InvalidCredentials:
    await audit.record(ctx, f"{scope}.login_failed", subject_id=subject_id, actor_kind="public")
    return InvalidCredentials()


async def sign_in(ctx: Context, identifier: str, password: str) -> tuple[str, SessionDocument]:
    """Customer sign-in. Unknown account, wrong password and disabled account look and time alike."""
    identifier_norm = _credentials(identifier, password, "identifier")
    ctx.hasher.check_capacity()
    await _throttle(ctx, "customer", identifier_norm)
    customer = await customers.get_by_identifier(ctx.application.identity_store_id, identifier_norm)
    ok = await ctx.hasher.verify(customer.password_hash if customer else None, password)
    if not ok or customer is None or customer.status == "disabled":
        raise await _failed(ctx, "customer", identifier_norm, customer.id if customer else None)
    if customer.status != "active":
        raise AccountNotActivated()
    if ctx.hasher.needs_rehash(customer.password_hash):
        await customers.set_password_hash(customer.id, await ctx.hasher.hash(password), ctx.now_ms())
    await ratelimit.reset(ctx, "customer-login-id", identifier_norm, ctx.rules.login_identifier)
    token, session = await create_session(ctx, "customer", customer.id, profile_of(customer))
    await audit.record(ctx, "customer.login_succeeded", subject_id=customer.id,
                       actor_kind="customer", actor_id=customer.id, session_id=session.id)
    return token, session


async def admin_sign_in(ctx: Context, email: str, password: str) -> tuple[str, SessionDocument]:
    email_norm = _credentials(email, password, "email")
    ctx.hasher.check_capacity()
    await _throttle(ctx, "admin", email_norm)
    admin = await admins.get_by_normalized_email(email_norm)
    ok = await ctx.hasher.verify(admin.password_hash if admin else None, password)
    if not ok or admin is None or admin.disabled:
        raise await _failed(ctx, "admin", email_norm, admin.id if admin else None)
    if ctx.hasher.needs_rehash(admin.password_hash):
        await admins.set_password_hash(admin.id, await ctx.hasher.hash(password))
    await ratelimit.reset(ctx, "admin-login-id", email_norm, ctx.rules.login_identifier)
    token, session = await create_session(ctx, "admin", admin.id)
    await audit.record(ctx, "admin.login_succeeded", subject_id=admin.id, actor_kind="admin",
                       actor_id=admin.id, session_id=session.id)
    return token, session


async def sign_out(ctx: Context) -> None:
    if ctx.principal is None:
        raise unauthenticated()
    await sessions.delete(ctx.principal.session_id)
    await audit.record(ctx, f"{ctx.principal.kind}.logout", subject_id=ctx.principal.subject_id,
                       session_id=ctx.principal.session_id)


async def authenticate(rules: Rules, clock: Clock, token: str | None) -> Principal | None:
    """The principal behind a bearer token, or None. Records activity at most once per interval."""
    if not token or len(token) > MAX_TOKEN:
        return None
    now = clock.now()
    now_ms = epoch_ms(now)
    session = await sessions.find_active_by_token_hash(token_hash(token), now, now_ms)
    if session is None:
        return None
    kind, subject_id, session_id = session["kind"], session["subject_id"], session["_id"]
    permissions: frozenset[str] = frozenset()
    if kind == "admin":
        admin = await admins.get(subject_id)
        if admin is None or admin.disabled:
            return None
        permissions = ROLE_PERMISSIONS.get(admin.role, frozenset())
    interval_ms = rules.session_touch_interval_seconds * 1000
    if now_ms - session["last_seen_at_ms"] >= interval_ms:
        _, idle = _ttl(rules, kind)
        await sessions.touch(session_id, now_ms, now_ms + idle * 1000, now_ms - interval_ms + 1)
    return Principal(kind=kind, subject_id=subject_id, session_id=session_id, permissions=permissions,
                     profile=session.get("profile"))
