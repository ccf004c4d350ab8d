"""Permission classes, declared on fields. Denials are top-level errors with extensions.code."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission, PermissionExtension

from resolvers import audit

UNAUTHENTICATED = {"code": "UNAUTHENTICATED"}
FORBIDDEN = {"code": "FORBIDDEN"}


def deny(code: str) -> GraphQLError:
    if code == "UNAUTHENTICATED":
        return GraphQLError("You must be signed in.", extensions=dict(UNAUTHENTICATED))
    return GraphQLError("You do not have permission to do this.", extensions=dict(FORBIDDEN))


class _Principal(BasePermission):
    kind: str | None = None
    permission: str | None = None

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal is None:
            raise deny("UNAUTHENTICATED")
        if self.kind is not None and principal.kind != self.kind:
            raise deny("FORBIDDEN")
        if self.permission is not None and self.permission not in principal.permissions:
            raise deny("FORBIDDEN")
        return True


class IsAuthenticated(_Principal):
    """Any signed-in principal, customer or admin."""


class IsCustomer(_Principal):
    kind = "customer"


class IsAdmin(_Principal):
    kind = "admin"


class HasPermission(_Principal):
    """An admin whose role grants this permission string, e.g. ``customers:read``. An admin (or API key)
    refused for want of it is recorded in the audit log (``admin.permission_denied``, with the field and
    the permission), so probing beyond one's role is visible."""

    kind = "admin"

    def __init__(self, permission: str) -> None:
        self.permission = permission

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal is not None and principal.kind == "admin" and self.permission not in principal.permissions:
            await audit.record(info.context, "admin.permission_denied", subject_id=principal.subject_id,
                               target_kind="api_key" if principal.api_key_name else "admin",
                               field=f"{info.path.typename}.{info.field_name}", permission=self.permission)
        return super().has_permission(source, info, **kwargs)


def requires(*permissions: BasePermission) -> list[PermissionExtension]:
    """Field extensions for ``@strawberry.field(extensions=requires(IsCustomer()))``."""
    return [PermissionExtension(list(permissions), use_directives=False)]
