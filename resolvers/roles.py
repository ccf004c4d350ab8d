"""Admin roles: each is a named bundle of permission strings. The one table both the permission checks
and the documentation come from."""

from __future__ import annotations

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({
        "customers:read", "customers:write", "sessions:read", "sessions:write", "audit:read",
        "policies:read", "policies:write", "applications:read", "applications:write",
        "templates:read", "templates:write", "attributes:read", "attributes:write",
        "admins:read", "admins:write",
    }),
    "admin": frozenset({
        "customers:read", "customers:write", "sessions:read", "sessions:write", "audit:read",
        "policies:read", "policies:write", "applications:read", "applications:write",
        "templates:read", "templates:write", "attributes:read", "attributes:write",
    }),
    "support": frozenset({"customers:read", "sessions:read", "sessions:write", "audit:read"}),
    "viewer": frozenset({"customers:read", "sessions:read", "audit:read"}),
}


def permissions_of(role: str) -> frozenset[str]:
    """The permissions a role grants; none for an unknown role."""
    return ROLE_PERMISSIONS.get(role, frozenset())
