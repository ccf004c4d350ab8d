"""Self-service policies, the admin side: list, read, create, change (optimistically), delete.

A policy is one document (``stores.documents.PolicyDocument``). Every write is validated here: each
number against its documented bounds (:data:`BOUNDS`, the source of docs/api.md's table) and the rules
between fields. An update is partial (only the fields given change, ``$set``) and carries the version
it was read at: one conditional write on ``{_id, version}`` sets the changes and bumps the version, so
of two admins editing the same version one wins and the other gets ``Conflict`` with the current
version, never a silent overwrite.

Every write drops this instance's cache of applications and policies (``ctx.config_cache``): the
change applies from the very next request here, and on other instances once their cache expires.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from resolvers import audit
from resolvers.bootstrap import DEFAULT_POLICY_ID
from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, PolicyInUse, Problems
from resolvers.recovery import RESET_TTL_MAX_MINUTES, RESET_TTL_MIN_MINUTES
from resolvers.security import is_text, new_id
from stores import config
from stores.documents import MfaMode, PolicyDocument

MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_ID = 64
WEEK_MINUTES = 7 * 24 * 60

# Every number of a policy: (smallest, largest) allowed, both included.
BOUNDS: dict[str, tuple[int, int]] = {
    "registration.activation_link_lifetime_minutes": (5, WEEK_MINUTES),
    "password_reset.link_lifetime_minutes": (RESET_TTL_MIN_MINUTES, RESET_TTL_MAX_MINUTES),
    "email_change.link_lifetime_minutes": (5, WEEK_MINUTES),
    "account_deletion.grace_days": (0, 365),
    # NIST SP 800-63B 5.1.1.2: at least 8 characters; accept at least 64; we hash at most 256.
    "password_policy.min_length": (8, 256),
    "password_policy.max_length": (64, 256),
    "sessions.absolute_lifetime_minutes": (5, 90 * 24 * 60),
    "sessions.idle_timeout_minutes": (1, 30 * 24 * 60),
    "reauthentication_max_age_minutes": (1, 24 * 60),
}
# Fields that may be null: the session lifetimes (null: the GATEWAY_SESSION_* settings apply).
NULLABLE = {"sessions.absolute_lifetime_minutes", "sessions.idle_timeout_minutes"}


def graphql_name(path: str) -> str:
    """``password_policy.min_length`` -> ``passwordPolicy.minLength`` (field errors name the input)."""
    def camel(part: str) -> str:
        head, *rest = part.split("_")
        return head + "".join(word.capitalize() for word in rest)
    return ".".join(camel(part) for part in path.split("."))


def _flatten(changes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested changes (sections as dicts) as dotted paths: ``{"registration": {"enabled": False}}`` ->
    ``{"registration.enabled": False}``. Lists (``mfa.factors``) are one value."""
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _merged(current: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    """The policy as it would be, with the document's shape always: a section given as null (refused by
    ``_validate`` as REQUIRED) leaves the current section, so the rules between fields never read a null
    section."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in current.items()}
    for path, value in flat.items():
        group, _, name = path.rpartition(".")
        target = merged[group] if group else merged
        if value is None and isinstance(target.get(name), dict):
            continue
        target[name] = value
    return merged


def _defaults() -> dict[str, Any]:
    """A new policy's settable fields at their defaults, sections as dicts."""
    defaults: dict[str, Any] = {}
    for name, info in PolicyDocument.model_fields.items():
        if info.is_required() or name in ("id", "revision_id", "version", "updated_at_ms"):
            continue
        value = info.get_default(call_default_factory=True)
        defaults[name] = value.model_dump() if isinstance(value, BaseModel) else value
    return defaults


def _stored(value: Any) -> Any:
    """What is written: enum members as their values."""
    if isinstance(value, list):
        return [_stored(item) for item in value]
    return getattr(value, "value", value)


def _validate(flat: dict[str, Any], merged: dict[str, Any], *, creating: bool) -> None:
    """InvalidInput naming every given field that is out of bounds or breaks a rule between fields."""
    problems = Problems()
    if "name" in flat or creating:
        name = (flat.get("name") or "").strip()
        if not name:
            problems.add("name", "REQUIRED", "Give the policy a name.")
        elif len(name) > MAX_NAME or not is_text(name):
            problems.add("name", "INVALID", f"Use 1 to {MAX_NAME} characters of text.")
        flat["name"] = merged["name"] = name
    if "description" in flat:
        description = (flat["description"] or "").strip()
        if len(description) > MAX_DESCRIPTION or not is_text(description):
            problems.add("description", "INVALID", f"Use at most {MAX_DESCRIPTION} characters of text.")
        flat["description"] = merged["description"] = description
    for path, value in flat.items():
        if path in ("name", "description"):
            continue
        if value is None and path not in NULLABLE:
            problems.add(graphql_name(path), "REQUIRED", "This field cannot be null.")
        elif value is not None and path in BOUNDS:
            low, high = BOUNDS[path]
            if not low <= value <= high:
                problems.add(graphql_name(path), "OUT_OF_RANGE", f"Use a whole number from {low} to {high}.")
    _check_rules(problems, flat, merged)
    problems.raise_if_any()


def _check_rules(problems: Problems, flat: dict[str, Any], merged: dict[str, Any]) -> None:
    """The rules between fields, reported on the field the admin gave (the first of the pair if both)."""
    passwords = merged["password_policy"]
    given = [p for p in ("password_policy.min_length", "password_policy.max_length") if p in flat]
    if given and None not in (passwords["min_length"], passwords["max_length"]) \
            and passwords["min_length"] > passwords["max_length"]:
        problems.add(graphql_name(given[0]), "OUT_OF_RANGE", "minLength cannot be above maxLength.")
    # A passwordless account's first (and usual) way in is an emailed link or code: without it, the
    # customers this policy registers could never sign in (social sign-in is per provider, passkeys are
    # added once signed in).
    given = [p for p in ("passwordless", "email_sign_in.enabled") if p in flat]
    if given and merged["passwordless"] and not merged["email_sign_in"]["enabled"]:
        problems.add(graphql_name(given[0]), "NOT_ALLOWED",
                     "A passwordless policy needs emailed sign-in (emailSignIn.enabled): its customers have no password.")
    sessions = merged["sessions"]
    given = [p for p in ("sessions.idle_timeout_minutes", "sessions.absolute_lifetime_minutes") if p in flat]
    if given and None not in (sessions["idle_timeout_minutes"], sessions["absolute_lifetime_minutes"]) \
            and sessions["idle_timeout_minutes"] > sessions["absolute_lifetime_minutes"]:
        problems.add(graphql_name(given[0]), "OUT_OF_RANGE",
                     "idleTimeoutMinutes cannot be above absoluteLifetimeMinutes.")
    if "mfa.factors" in flat and flat["mfa.factors"] is not None:
        factors = flat["mfa.factors"]
        if len(set(factors)) != len(factors):
            problems.add("mfa.factors", "DUPLICATE", "List each factor once.")
    mfa = merged["mfa"]
    if ("mfa.factors" in flat or "mfa.mode" in flat) and mfa["mode"] not in (None, MfaMode.OFF) \
            and not mfa["factors"]:
        problems.add("mfa.factors" if "mfa.factors" in flat else "mfa.mode", "REQUIRED",
                     "Allow at least one factor, or set the mode to OFF.")


def _changed(ctx: Context) -> None:
    if ctx.config_cache is not None:
        ctx.config_cache.forget()


def _valid_id(policy_id: str) -> bool:
    return bool(policy_id) and len(policy_id) <= MAX_ID and is_text(policy_id)


async def list_policies(ctx: Context) -> list[PolicyDocument]:
    return await config.list_policies()


async def get(ctx: Context, policy_id: str) -> PolicyDocument | None:
    """One policy, or None (batched per request: ``ctx.loaders.policy``)."""
    return await ctx.loaders.policy.load(policy_id) if _valid_id(policy_id) else None


async def create(ctx: Context, changes: dict[str, Any]) -> PolicyDocument:
    """A new policy: the given fields, the defaults for the rest. InvalidInput when a field is invalid."""
    flat = _flatten(changes)
    merged = _merged(_defaults(), flat)
    _validate(flat, merged, creating=True)
    policy = PolicyDocument.model_validate({**merged, "_id": new_id(), "version": 1, "created_at": ctx.now(),
                                            "updated_at_ms": ctx.now_ms()})
    await config.insert_policy(policy)
    _changed(ctx)
    await audit.record(ctx, "policy.created", subject_id=policy.id, name=policy.name)
    return policy


async def update(ctx: Context, policy_id: str, version: int, changes: dict[str, Any]) -> PolicyDocument:
    """Change the given fields of the policy read at ``version``; the policy afterwards (version + 1).

    NotFound for an unknown id; Conflict (with the current version) when someone changed it since;
    InvalidInput when a given field is invalid (nothing is written then). No change given: the policy
    as it is (still Conflict when ``version`` is stale).
    """
    current = await config.get_policy(policy_id) if _valid_id(policy_id) else None
    if current is None:
        raise NotFound("No policy has this id.", field="id")
    if current.version != version:
        raise Conflict(current.version)
    flat = _flatten(changes)
    if not flat:
        return current
    _validate(flat, _merged(current.model_dump(), flat), creating=False)
    fields = {path: _stored(value) for path, value in flat.items()}
    updated = await config.update_if_version(PolicyDocument, current.id, version,
                                          {**fields, "updated_at_ms": ctx.now_ms()})
    if updated is None:  # changed (or deleted) between the read and the write
        again = await config.get_policy(current.id)
        if again is None:
            raise NotFound("No policy has this id.", field="id")
        raise Conflict(again.version)
    _changed(ctx)
    await audit.record(ctx, "policy.updated", subject_id=current.id, fields=sorted(graphql_name(p) for p in fields),
                       version=updated.version)
    return updated


async def delete(ctx: Context, policy_id: str) -> None:
    """Delete a policy no application uses. NotFound for an unknown id; PolicyInUse while assigned;
    InvalidInput (``id`` NOT_ALLOWED) for the default policy.

    The check and the delete are two operations (no transactions on nx-27017), so the applications are
    counted again after the delete: if one was pointed at the policy meanwhile, the policy is put back
    exactly as it was deleted (same id and version) and the answer is PolicyInUse, as if the assignment
    had come first. We restore rather than move the application to the default policy: the admin who
    assigned it chose its rules (a second factor, shorter sessions), and falling back silently would
    weaken them. (An assignment that checks the policy before this delete and writes after the recount
    still points at nothing: ``resolvers.bootstrap.policy_of`` then serves it under the default policy,
    with a warning.)"""
    current = await config.get_policy(policy_id) if _valid_id(policy_id) else None
    if current is None:
        raise NotFound("No policy has this id.", field="id")
    if current.id == DEFAULT_POLICY_ID:
        problems = Problems()
        problems.add("id", "NOT_ALLOWED", "The default self-service policy cannot be deleted.")
        problems.raise_if_any()
    if await config.count_applications_with_policy(current.id):
        raise PolicyInUse()
    deleted = await config.delete_policy(current.id)
    if deleted is None:
        raise NotFound("No policy has this id.", field="id")
    if await config.count_applications_with_policy(current.id):  # assigned while we deleted it
        await config.restore_policy(deleted)
        _changed(ctx)
        raise PolicyInUse()
    _changed(ctx)
    await audit.record(ctx, "policy.deleted", subject_id=current.id, name=current.name)
