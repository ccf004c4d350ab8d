"""Admins and roles: listing, invitations, role changes, disabling, and admin password recovery.

Also :func:`field_access` and :func:`permissions_markdown`: which permission each root field
declares, and ``docs/permissions.md`` made from it and the role table (``resolvers/roles.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import strawberry
from strawberry.permission import PermissionExtension
from strawberry.types import Info

from resolvers import admins
from resolvers.roles import PERMISSIONS, ROLE_PERMISSIONS, permissions_of
from schema.errors import (
    ConflictError,
    InvalidInputError,
    InvalidTokenError,
    LastOwnerError,
    NotFoundError,
    PasswordMismatchError,
    PasswordPolicyError,
    RateLimitedError,
)
from schema.permissions import HasPermission, IsAdmin, IsAuthenticated, IsCustomer, requires
from schema.types import Admin
from stores.documents import AdminDocument


def _admin(doc: AdminDocument) -> Admin:
    return Admin.from_doc(doc, permissions_of(doc.role))


@strawberry.input
class AdminCreateInput:
    email: str
    role: str = strawberry.field(description="owner, admin, support or viewer (docs/permissions.md).")


@strawberry.input
class AdminRoleSetInput:
    id: strawberry.ID
    role: str = strawberry.field(description="owner, admin, support or viewer (docs/permissions.md).")


@strawberry.input
class AdminInvitationAcceptInput:
    token: str = strawberry.field(description="From the invitation link.")
    password: str = strawberry.field(description="At least 12 characters (or the policy's minimum, if longer).")
    confirm_password: str


@strawberry.input
class AdminPasswordResetRequestInput:
    email: str


@strawberry.input
class AdminPasswordResetInput:
    token: str = strawberry.field(description="From the reset link.")
    new_password: str = strawberry.field(description="At least 12 characters (or the policy's minimum, if longer).")
    confirm_password: str


@strawberry.type(description="The admin is created as INVITED, and an invitation link is on its way to the address.")
class AdminCreated:
    admin: Admin


@strawberry.type(description="The admin as it is now.")
class AdminUpdated:
    admin: Admin


@strawberry.type(description="The password is set and the admin is active: sign in with adminSessionCreate.")
class AdminInvitationAccepted:
    admin: Admin


@strawberry.type(description="Always the answer: if an active admin has this email, a reset link is on its way.")
class AdminPasswordResetRequested:
    accepted: bool = True


@strawberry.type(description="The password was replaced and every session of the admin ended. Sign in again.")
class AdminPasswordResetDone:
    done: bool = True


AdminCreateResult = Annotated[AdminCreated | InvalidInputError | ConflictError, strawberry.union("AdminCreateResult")]
AdminRoleSetResult = Annotated[
    AdminUpdated | NotFoundError | InvalidInputError | LastOwnerError | ConflictError,
    strawberry.union("AdminRoleSetResult"),
]
AdminDisableResult = Annotated[AdminUpdated | NotFoundError | LastOwnerError | ConflictError,
                               strawberry.union("AdminDisableResult")]
AdminEnableResult = Annotated[AdminUpdated | NotFoundError | ConflictError, strawberry.union("AdminEnableResult")]
AdminInvitationAcceptResult = Annotated[
    AdminInvitationAccepted | InvalidTokenError | PasswordMismatchError | PasswordPolicyError | RateLimitedError,
    strawberry.union("AdminInvitationAcceptResult"),
]
AdminPasswordResetRequestResult = Annotated[
    AdminPasswordResetRequested | InvalidInputError | RateLimitedError,
    strawberry.union("AdminPasswordResetRequestResult"),
]
AdminPasswordResetResult = Annotated[
    AdminPasswordResetDone | InvalidTokenError | PasswordMismatchError | PasswordPolicyError | RateLimitedError,
    strawberry.union("AdminPasswordResetResult"),
]


@strawberry.type
class AdminsQueries:
    @strawberry.field(description="Every admin, oldest first, with role, permissions and status.",
                      extensions=requires(HasPermission("admins:read")))
    async def admins(self, info: Info) -> list[Admin]:
        return [_admin(doc) for doc in await admins.list_admins(info.context)]


@strawberry.type
class AdminsMutations:
    @strawberry.mutation(description="Invites an admin: created INVITED (cannot sign in), with a one-time link "
                                     "mailed to set a password (valid 72 hours). Inviting a pending address again "
                                     "sends a new link.",
                         extensions=requires(HasPermission("admins:write")))
    async def admin_create(self, info: Info, input: AdminCreateInput) -> AdminCreateResult:
        return AdminCreated(admin=_admin(await admins.invite(info.context, input.email, input.role)))

    @strawberry.mutation(description="Changes an admin's role; it applies to their next request. The last active "
                                     "owner cannot be demoted.",
                         extensions=requires(HasPermission("admins:write")))
    async def admin_role_set(self, info: Info, input: AdminRoleSetInput) -> AdminRoleSetResult:
        return AdminUpdated(admin=_admin(await admins.set_role(info.context, str(input.id), input.role)))

    @strawberry.mutation(description="Disables an admin: no sign-in, every session ended, their API keys revoked. "
                                     "The last active owner cannot be disabled.",
                         extensions=requires(HasPermission("admins:write")))
    async def admin_disable(self, info: Info, id: strawberry.ID) -> AdminDisableResult:
        return AdminUpdated(admin=_admin(await admins.disable(info.context, str(id))))

    @strawberry.mutation(description="Enables a disabled admin (one who never accepted their invitation is "
                                     "invited again).",
                         extensions=requires(HasPermission("admins:write")))
    async def admin_enable(self, info: Info, id: strawberry.ID) -> AdminEnableResult:
        return AdminUpdated(admin=_admin(await admins.enable(info.context, str(id))))

    @strawberry.mutation(description="Accepts an admin invitation: sets the password from the emailed link.")
    async def admin_invitation_accept(self, info: Info,
                                      input: AdminInvitationAcceptInput) -> AdminInvitationAcceptResult:
        accepted = await admins.accept_invitation(info.context, input.token, input.password, input.confirm_password)
        return AdminInvitationAccepted(admin=_admin(accepted))

    @strawberry.mutation(description="Emails a one-time password reset link to an active admin with this email.")
    async def admin_password_reset_request(self, info: Info,
                                           input: AdminPasswordResetRequestInput) -> AdminPasswordResetRequestResult:
        await admins.request_password_reset(info.context, input.email)
        return AdminPasswordResetRequested()

    @strawberry.mutation(description="Sets an admin's new password from an emailed reset link.")
    async def admin_password_reset(self, info: Info, input: AdminPasswordResetInput) -> AdminPasswordResetResult:
        await admins.reset_password(info.context, input.token, input.new_password, input.confirm_password)
        return AdminPasswordResetDone()


# -- who may call what ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldAccess:
    """What a root field declares: ``who`` is public, customer, authenticated, admin or permission;
    ``permission`` is set for the last."""

    operation: str  # Query | Mutation
    name: str
    who: str
    permission: str | None = None


def field_access(schema: strawberry.Schema) -> list[FieldAccess]:
    """Every root field and the principal its PermissionExtension requires (public: none declared)."""
    found = []
    for operation in ("Query", "Mutation"):
        definition = schema.get_type_by_name(operation)
        for field in definition.fields:
            name = schema.config.name_converter.get_graphql_name(field)
            checks = [check for extension in field.extensions if isinstance(extension, PermissionExtension)
                      for check in extension.permissions]
            access = FieldAccess(operation, name, "public")
            for check in checks:
                if isinstance(check, HasPermission):
                    access = FieldAccess(operation, name, "permission", check.permission)
                elif isinstance(check, IsAdmin):
                    access = FieldAccess(operation, name, "admin")
                elif isinstance(check, IsCustomer):
                    access = FieldAccess(operation, name, "customer")
                elif isinstance(check, IsAuthenticated):
                    access = FieldAccess(operation, name, "authenticated")
            found.append(access)
    return found


ROLE_ORDER = ("owner", "admin", "support", "viewer")


def permissions_markdown(schema: strawberry.Schema) -> str:
    """docs/permissions.md: the role table and every field's requirement, from the code."""
    access = field_access(schema)
    roles = [role for role in ROLE_ORDER if role in ROLE_PERMISSIONS] + sorted(set(ROLE_PERMISSIONS) - set(ROLE_ORDER))
    lines = [
        "# Permissions",
        "",
        "<!-- Generated from resolvers/roles.py and the schema: `identity-gateway export-permissions > "
        "docs/permissions.md`. A test fails when this file is stale. -->",
        "",
        "An admin's role is a bundle of permissions; a partner API key holds the permissions it was given,",
        "limited on every request to those its creator's current role grants. Every admin field declares the",
        "one permission it needs: without a token the answer is `UNAUTHENTICATED`, with a customer token or",
        "without the permission `FORBIDDEN` (a top-level error, `extensions.code`).",
        "",
        "## Roles",
        "",
        "| Permission | " + " | ".join(f"`{role}`" for role in roles) + " | What it allows |",
        "|---|" + ":-:|" * len(roles) + "---|",
    ]
    for permission, description in PERMISSIONS.items():
        marks = " | ".join("✓" if permission in ROLE_PERMISSIONS[role] else "" for role in roles)
        lines.append(f"| `{permission}` | {marks} | {description} |")
    lines += ["", "API keys can never hold `admins:write` or `api_keys:write`: a key cannot create admins or keys.",
              "", "## Fields", "", "| Permission | Queries | Mutations |", "|---|---|---|"]

    def names(operation: str, permission: str) -> str:
        return ", ".join(f"`{a.name}`" for a in access if a.operation == operation and a.permission == permission)

    for permission in PERMISSIONS:
        if names("Query", permission) or names("Mutation", permission):
            lines.append(f"| `{permission}` | {names('Query', permission)} | {names('Mutation', permission)} |")
    lines += ["", "Other fields:", "", "| Who | Fields |", "|---|---|"]
    for who, label in (("admin", "any admin (session or API key)"), ("customer", "a signed-in customer"),
                       ("authenticated", "any signed-in customer or admin"), ("public", "anyone")):
        listed = ", ".join(f"`{a.name}`" for a in access if a.who == who)
        if listed:
            lines.append(f"| {label} | {listed} |")
    lines += ["", "Some fields of returned objects need more: `Customer.sessions` needs `sessions:read` and",
              "`Customer.securityActivity` needs `customers:read` when an admin reads them (the customer's own",
              "view of their account; the whole log is `audit:read`).", ""]
    return "\n".join(lines)
