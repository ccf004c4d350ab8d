"""Admin roles: each is a named bundle of permission strings. The one table both the permission checks
and the documentation (docs/permissions.md) come from."""

from __future__ import annotations

# Every permission a field can require, and what it lets an admin (or a partner API key) do.
PERMISSIONS: dict[str, str] = {
    "customers:read": "Read customers: profiles, attributes, status, login methods, MFA factors (no secrets), consents.",
    "customers:write": "Edit customers' profiles and attributes; disable and enable accounts.",
    "customers:delete": "Erase customer accounts (the same sweep as self-service deletion).",
    "customers:recover": "Help customers back in: send password-reset and activation mails, reset their MFA.",
    "sessions:read": "See customers' sessions.",
    "sessions:write": "Revoke customers' sessions.",
    "policies:read": "Read self-service policies.",
    "policies:write": "Create, change and delete self-service policies.",
    "applications:read": "Read applications, their branding, redirect URLs and consent policies.",
    "applications:write": "Create, change and delete applications.",
    "templates:read": "Read and preview email templates.",
    "templates:write": "Change email templates.",
    "attributes:read": "Read the attribute schema.",
    "attributes:write": "Add, change and archive custom attributes.",
    "audit:read": "Read the audit log.",
    "admins:read": "List admins and their roles.",
    "admins:write": "Invite admins, change their roles, disable and enable them.",
    "api_keys:read": "List partner API keys.",
    "api_keys:write": "Create and revoke partner API keys (never beyond one's own permissions).",
}

_EVERYTHING = frozenset(PERMISSIONS)
_ADMIN_MANAGEMENT = frozenset({"admins:read", "admins:write"})

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": _EVERYTHING,
    "admin": _EVERYTHING - _ADMIN_MANAGEMENT,
    # The helpdesk: a customer's account, sessions and security activity, and help back in; not the
    # whole audit log (other admins' actions and addresses) nor any configuration.
    "support": frozenset({"customers:read", "customers:recover", "sessions:read", "sessions:write"}),
    "viewer": frozenset(p for p in PERMISSIONS if p.endswith(":read")),
}


def permissions_of(role: str) -> frozenset[str]:
    """The permissions a role grants; none for an unknown role."""
    return ROLE_PERMISSIONS.get(role, frozenset())
