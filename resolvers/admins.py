"""Administrators: invitations, roles, disabling and enabling, and password recovery by emailed link.

- ``create_admin`` (the CLI's ``create-admin``) makes an active admin with a password.
- :func:`invite` (``adminCreate``) makes an *invited* admin with no password, who cannot sign in, and
  mails a one-time invitation link (valid ``INVITATION_TTL_MINUTES``); accepting it sets the
  password (the password policy, at least ``MIN_PASSWORD_LENGTH`` characters) and makes the admin
  active. Inviting an address whose invitation is still pending sends a new link (the old one dies).
- :func:`set_role`, :func:`disable`, :func:`enable`: each one conditional write on the admin's
  ``version``. Disabling bumps the credential version (its links die), ends its sessions and revokes
  the API keys it made. The last active owner can be neither demoted nor disabled (``LastOwner``):
  the owner guard (``stores.admins``, ``OwnerGuardDocument``) is updated by one conditional write
  before the admin is, so of two concurrent removals of the last two owners at most one succeeds.
- Password recovery (:func:`request_password_reset`, :func:`reset_password`) follows the customers'
  token rules: the same answer for every address, the work after the answer, per-IP and per-address
  limits, a single-use link bound to the credential version (``RESET_TTL_MINUTES``); the reset bumps
  the credential version, ends every session and clears the sign-in budget of the account, so an
  owner throttled by someone else's guessing is never locked out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resolvers import audit, links, ratelimit
from resolvers.context import Context
from resolvers.errors import (
    Conflict,
    InvalidInput,
    InvalidToken,
    LastOwner,
    NotFound,
    PasswordMismatch,
    Problems,
    RateLimited,
)
from resolvers.identifiers import normalize_identifier, validate_email
from resolvers.passwords import check_password
from resolvers.roles import ROLE_PERMISSIONS
from resolvers.security import is_text, new_id
from stores import admins, api_keys, sessions
from stores.admins import GuardRemoval
from stores.documents import AdminDocument, AdminStatus, AuditResult, OneTimeTokenDocument

INVITATION = "admin_invitation"  # link purposes
PASSWORD_RESET = "admin_password_reset"
INVITATION_PAGE = "/admin/invitation"
RESET_PAGE = "/admin/reset-password"
INVITATION_TTL_MINUTES = 72 * 60
RESET_TTL_MINUTES = 60
MIN_PASSWORD_LENGTH = 12
MAX_ATTEMPTS = 5  # of a conditional admin write that lost to a concurrent change
MAX_ID = 64


class AdminExists(InvalidInput):
    pass


def check_admin_password(ctx: Context, password: str, email: str, field: str = "password") -> None:
    """The password policy of the request's application, with at least MIN_PASSWORD_LENGTH characters."""
    policy = ctx.policy.password_policy
    check_password(password, min_length=max(MIN_PASSWORD_LENGTH, policy.min_length), max_length=policy.max_length,
                   context=(email, email.split("@")[0]), field=field)


def _checked(email: str, role: str) -> str:
    problems = Problems()
    email = validate_email(problems, email)
    if role not in ROLE_PERMISSIONS:
        problems.add("role", "INVALID", f"Choose one of: {', '.join(sorted(ROLE_PERMISSIONS))}.")
    problems.raise_if_any()
    return email


def _taken() -> AdminExists:
    exists = Problems()
    exists.add("email", "TAKEN", "An admin with this email already exists.")
    return AdminExists(exists.items)


async def create_admin(ctx: Context, email: str, password: str, role: str = "owner") -> AdminDocument:
    """An active admin with a password (the CLI). InvalidInput for a bad email, role or a taken email;
    PasswordPolicyViolation."""
    email = _checked(email, role)
    check_admin_password(ctx, password, email)
    admin = AdminDocument(id=new_id(), email=email, email_norm=normalize_identifier(email),
                          password_hash=await ctx.hasher.hash(password), password_nfkc=True, role=role,
                          created_at=ctx.now())
    try:
        await admins.insert(admin)
    except admins.DuplicateAdmin:
        raise _taken() from None
    if admins.is_active_owner(admin):
        await admins.ensure_owner_guard()
        await admins.guard_add(admin.id, admin.version)
    await audit.record(ctx, "admin.created", subject_id=admin.id, actor_kind="system", role=role)
    return admin


async def get_self(ctx: Context) -> AdminDocument | None:
    assert ctx.principal is not None
    return await admins.get(ctx.principal.subject_id)


async def list_admins(ctx: Context) -> list[AdminDocument]:
    return await admins.list_all()


# -- invitations ----------------------------------------------------------------------------------


async def _send_invitation(ctx: Context, admin: AdminDocument) -> None:
    url = await links.issue(ctx, INVITATION, admin.id, INVITATION_TTL_MINUTES, INVITATION_PAGE,
                            credential_version=admin.credential_version)
    await ctx.mailer.send("admin_invitation", admin.email, {
        "admin": {"email": admin.email}, "role": admin.role, "action_url": url,
        "expires_in_minutes": INVITATION_TTL_MINUTES,
    }, ctx.application, subject_id=admin.id)


async def invite(ctx: Context, email: str, role: str) -> AdminDocument:
    """``adminCreate``: an invited admin (no password, cannot sign in) and its mailed invitation.

    An address whose invitation is pending gets a new one (with this role; the old link dies);
    any other admin's address is ``TAKEN``.
    """
    email = _checked(email, role)
    admin = AdminDocument(id=new_id(), email=email, email_norm=normalize_identifier(email), role=role,
                          status=AdminStatus.INVITED, disabled=True, created_at=ctx.now(),
                          invited_by=ctx.principal.subject_id if ctx.principal else None)
    try:
        await admins.insert(admin)
    except admins.DuplicateAdmin:
        existing = await admins.get_by_normalized_email(admin.email_norm)
        if existing is None or existing.status != AdminStatus.INVITED:
            raise _taken() from None
        admin = existing
        if existing.role != role:
            admin = await admins.change(existing.id, existing.version, {"role": role}, now_ms=ctx.now_ms())
            if admin is None:
                raise Conflict(existing.version + 1) from None
    await _send_invitation(ctx, admin)
    await audit.record(ctx, "admin.invited", subject_id=admin.id, role=role)
    return admin


async def _link_password(ctx: Context, purpose: str, status: AdminStatus, token: str, password: str,
                         confirm_password: str, password_field: str) -> tuple[AdminDocument, OneTimeTokenDocument, str]:
    """Check an invitation or reset link and the chosen password, then use the link up.

    Limits per client IP and per link; InvalidToken unless the link is usable for an admin in
    ``status`` with the credential version it was issued under; PasswordMismatch; the policy.
    Returns the admin, the used link and the new password's hash.
    """
    await ratelimit.hit_ip(ctx, "admin-link-ip", ctx.rules.reset_ip)
    await ratelimit.hit(ctx, "admin-link-token", links.token_key(token), ctx.rules.reset_token)
    found = await links.peek(ctx, purpose, token)
    admin = await admins.get(found.subject_id)
    if admin is None or admin.status != status:
        raise InvalidToken()
    links.check_version(found, admin.credential_version)
    if password != confirm_password:
        raise PasswordMismatch(field="confirmPassword")
    check_admin_password(ctx, password or "", admin.email, password_field)
    password_hash = await ctx.hasher.hash(password)
    used = await links.consume(ctx, purpose, token)  # of concurrent uses, exactly one gets here
    if used.subject_id != admin.id:
        raise InvalidToken()
    return admin, used, password_hash


async def accept_invitation(ctx: Context, token: str, password: str, confirm_password: str) -> AdminDocument:
    """Set the invited admin's password from the invitation link and make it active."""
    admin, used, password_hash = await _link_password(ctx, INVITATION, AdminStatus.INVITED, token, password,
                                                      confirm_password, "password")
    accepted = await admins.accept_invitation(admin.id, used.credential_version, password_hash, ctx.now_ms())
    if accepted is None:
        raise InvalidToken()  # disabled or changed since the link was issued
    if admins.is_active_owner(accepted):
        await admins.ensure_owner_guard()
        await admins.guard_add(accepted.id, accepted.version)
    await audit.record(ctx, "admin.invitation_accepted", subject_id=admin.id, actor_kind="admin", actor_id=admin.id)
    return accepted


async def link_is_usable(ctx: Context, purpose: str, token: str) -> bool:
    """Whether an invitation or reset link would be accepted now (the hosted page's GET). Reads only."""
    try:
        found = await links.peek(ctx, purpose, token)
    except InvalidToken:
        return False
    admin = await admins.get(found.subject_id)
    status = AdminStatus.INVITED if purpose == INVITATION else AdminStatus.ACTIVE
    return admin is not None and admin.status == status and admin.credential_version == found.credential_version


# -- password recovery ----------------------------------------------------------------------------


async def request_password_reset(ctx: Context, email: str) -> None:
    """Always the same answer; the look-up, limits and mail run after it. Only active admins get a link."""
    problems = Problems()
    email = validate_email(problems, email)
    problems.raise_if_any()
    ctx.defer(_send_reset(ctx, email))


async def _send_reset(ctx: Context, email: str) -> None:
    email_norm = normalize_identifier(email)
    try:
        await ratelimit.hit_ip(ctx, "admin-reset-ip", ctx.rules.reset_ip)
        await ratelimit.hit(ctx, "admin-reset-email", email_norm, ctx.rules.reset_email)
    except RateLimited:
        return
    admin = await admins.get_by_normalized_email(email_norm)
    if admin is None or admin.status != AdminStatus.ACTIVE:
        return
    url = await links.issue(ctx, PASSWORD_RESET, admin.id, RESET_TTL_MINUTES, RESET_PAGE,
                            credential_version=admin.credential_version)
    await audit.record(ctx, "admin.password_reset_requested", subject_id=admin.id, actor_kind="public")
    await ctx.mailer.send("admin_password_reset", admin.email, {
        "admin": {"email": admin.email}, "action_url": url, "expires_in_minutes": RESET_TTL_MINUTES,
    }, ctx.application, subject_id=admin.id)


async def reset_password(ctx: Context, token: str, new_password: str, confirm_password: str) -> None:
    """Set a new password from a reset link: the hash and a bumped credential version in one write (only
    if the credentials are still the link's), then every session ends and the account's sign-in
    budget is cleared."""
    admin, used, password_hash = await _link_password(ctx, PASSWORD_RESET, AdminStatus.ACTIVE, token, new_password,
                                                      confirm_password, "newPassword")
    if not await admins.set_password(admin.id, used.credential_version, password_hash, ctx.now_ms()):
        raise InvalidToken()
    ended = await sessions.delete_for_subject(admin.id)
    await ratelimit.reset(ctx, "admin-login-id", f"account:{admin.id}", ctx.rules.login_identifier)
    await audit.record(ctx, "admin.password_reset", subject_id=admin.id, actor_kind="admin", actor_id=admin.id,
                       sessions_ended=ended)


# -- roles and status -----------------------------------------------------------------------------


async def _existing(admin_id: str) -> AdminDocument:
    admin = await admins.get(admin_id) if admin_id and len(admin_id) <= MAX_ID and is_text(admin_id) else None
    if admin is None:
        raise NotFound("No admin has this id.", field="id")
    return admin


async def _release_owner(admin: AdminDocument) -> GuardRemoval:
    """Take an active owner out of the owner guard before demoting or disabling it.

    When the guard says it is the last, the guard is first brought up to date with the active owners
    (an owner whose own update was lost to a crash or a race is added back, each at its version), then
    asked once more.
    """
    outcome = await admins.guard_remove(admin.id, admin.version + 1)
    if outcome is GuardRemoval.LAST:
        for owner in await admins.active_owners():
            await admins.guard_add(owner.id, owner.version)
        outcome = await admins.guard_remove(admin.id, admin.version + 1)
    return outcome


async def _update(ctx: Context, action: str, admin_id: str,
                  changes_for: Callable[[AdminDocument], dict[str, Any] | None], *,
                  bump_credentials: bool = False) -> tuple[AdminDocument, AdminDocument]:
    """Change an admin in one conditional write on its version, keeping an active owner.

    ``changes_for(admin)`` gives the fields to set, or None when there is nothing to do. Returns the
    admin before and after. NotFound; LastOwner (recorded as a failed ``action``); Conflict when
    concurrent changes kept winning.
    """
    await admins.ensure_owner_guard()
    for _ in range(MAX_ATTEMPTS):
        admin = await _existing(admin_id)
        changes = changes_for(admin)
        if changes is None:
            return admin, admin
        if admins.is_active_owner(admin) and not admins.is_active_owner(admin.model_copy(update=changes)):
            outcome = await _release_owner(admin)
            if outcome is GuardRemoval.LAST:
                await audit.record(ctx, action, subject_id=admin.id, result=AuditResult.FAILURE, reason="last_owner")
                raise LastOwner()
            if outcome is GuardRemoval.STALE:
                continue
        updated = await admins.change(admin.id, admin.version, changes, now_ms=ctx.now_ms(),
                                      bump_credentials=bump_credentials)
        if updated is None:
            continue
        if admins.is_active_owner(updated):
            await admins.guard_add(updated.id, updated.version)
        return admin, updated
    raise Conflict(admin.version)


async def set_role(ctx: Context, admin_id: str, role: str) -> AdminDocument:
    """``adminRoleSet``: the new role applies to the admin's next request (and to its API keys)."""
    if role not in ROLE_PERMISSIONS:
        problems = Problems()
        problems.add("role", "INVALID", f"Choose one of: {', '.join(sorted(ROLE_PERMISSIONS))}.")
        problems.raise_if_any()
    before, after = await _update(ctx, "admin.role_changed", admin_id,
                                  lambda admin: None if admin.role == role else {"role": role})
    if before.role != after.role:
        await audit.record(ctx, "admin.role_changed", subject_id=after.id, role=role, previous_role=before.role)
    return after


async def disable(ctx: Context, admin_id: str) -> AdminDocument:
    """``adminDisable``: cannot sign in; its sessions end, its links die (credential version), and the
    API keys it made are revoked. Disabling a disabled admin changes nothing."""
    def changes(admin: AdminDocument) -> dict[str, Any] | None:
        if admin.status == AdminStatus.DISABLED:
            return None
        return {"status": AdminStatus.DISABLED, "disabled": True}

    before, after = await _update(ctx, "admin.disabled", admin_id, changes, bump_credentials=True)
    if before.status != after.status:
        ended = await sessions.delete_for_subject(after.id)
        revoked = await api_keys.revoke_created_by(after.id, ctx.now_ms(), revoked_by="system")
        await audit.record(ctx, "admin.disabled", subject_id=after.id, sessions_ended=ended, api_keys_revoked=revoked)
    return after


async def enable(ctx: Context, admin_id: str) -> AdminDocument:
    """``adminEnable``: an admin with a password is active again (API keys revoked when it was disabled
    stay revoked); one that never accepted its invitation is invited again, with a new link."""
    def changes(admin: AdminDocument) -> dict[str, Any] | None:
        if admin.status != AdminStatus.DISABLED:
            return None
        status = AdminStatus.ACTIVE if admin.password_hash else AdminStatus.INVITED
        return {"status": status, "disabled": status != AdminStatus.ACTIVE}

    before, after = await _update(ctx, "admin.enabled", admin_id, changes)
    if before.status != after.status:
        if after.status == AdminStatus.INVITED:
            await _send_invitation(ctx, after)
        await audit.record(ctx, "admin.enabled", subject_id=after.id, status=str(after.status))
    return after
