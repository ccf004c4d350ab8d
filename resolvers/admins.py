"""Administrators: created from the CLI, signed in through the admin API."""

from __future__ import annotations

from resolvers import audit
from resolvers.context import Context
from resolvers.errors import InvalidInput, Problems
from resolvers.identifiers import normalize_identifier, validate_email
from resolvers.passwords import check_password
from resolvers.roles import ROLE_PERMISSIONS
from resolvers.security import new_id
from stores import admins
from stores.documents import AdminDocument


class AdminExists(InvalidInput):
    pass


async def create_admin(ctx: Context, email: str, password: str, role: str = "owner") -> AdminDocument:
    problems = Problems()
    email = validate_email(problems, email)
    if role not in ROLE_PERMISSIONS:
        problems.add("role", "INVALID", f"Choose one of: {', '.join(sorted(ROLE_PERMISSIONS))}.")
    problems.raise_if_any()
    check_password(password, min_length=max(12, ctx.policy.password_policy.min_length), context=(email,))
    admin = AdminDocument(id=new_id(), email=email, email_norm=normalize_identifier(email),
                          password_hash=await ctx.hasher.hash(password), password_nfkc=True, role=role,
                          created_at=ctx.now())
    try:
        await admins.insert(admin)
    except admins.DuplicateAdmin:
        exists = Problems()
        exists.add("email", "TAKEN", "An admin with this email already exists.")
        raise AdminExists(exists.items) from None
    await audit.record(ctx, "admin.created", subject_id=admin.id, actor_kind="system", role=role)
    return admin


async def get_self(ctx: Context) -> AdminDocument | None:
    assert ctx.principal is not None
    return await admins.get(ctx.principal.subject_id)
