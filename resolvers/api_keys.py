"""Partner API keys: long-lived bearer credentials for server-to-server use of the admin API.

A key is ``gwk_`` + 256 random bits (``secrets.token_urlsafe(32)``), shown once at creation and
stored only as its SHA-256 (like session tokens: the secret is random, so a fast hash suffices). It
is sent as ``Authorization: Bearer gwk_…`` and becomes an admin principal whose permissions are, on
every request, the key's own permissions intersected with its creator's *current* role. So:

- a key never exceeds its creator: creation refuses permissions the creator lacks, and a later
  demotion shrinks the key at once;
- it dies when revoked, when its ``expiresAt`` passes, or when its creator is disabled (checked on
  every request; disabling also revokes the creator's keys for good);
- ``admins:write`` and ``api_keys:write`` are never granted to a key (``NOT_GRANTABLE``): a leaked key
  cannot mint new keys or admins that would outlive its revocation.

Authentication costs two reads (the key by its hash, its creator by id) and, at most once per
``TOUCH_INTERVAL_MS``, a write recording its last use. A key's id and name appear as the actor of the
audit events it causes.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from resolvers import audit
from resolvers.context import Clock, Context, Principal, Rules, epoch_ms
from resolvers.errors import NotFound, Problems
from resolvers.roles import PERMISSIONS, permissions_of
from resolvers.security import is_text, new_id, token_hash
from stores import admins
from stores import api_keys as key_store
from stores.documents import ApiKeyDocument, AuditResult

PREFIX = "gwk_"
KEY_BYTES = 32  # 256 bits
SHOWN_PREFIX_LENGTH = 10  # "gwk_" and six characters: enough to recognise a key, useless to guess it
MAX_KEY_LENGTH = 100
MAX_NAME = 100
MAX_ID = 64
NOT_GRANTABLE = frozenset({"admins:write", "api_keys:write"})
TOUCH_INTERVAL_MS = 10 * 60 * 1000


def is_api_key(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _checked(ctx: Context, name: str, permissions: list[str], expires_at: datetime | None) -> tuple[str, list[str]]:
    problems = Problems()
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not is_text(name):
        problems.add("name", "INVALID", f"Use 1 to {MAX_NAME} characters.")
    granted = sorted(set(permissions))
    own = ctx.principal.permissions if ctx.principal else frozenset()
    if not granted:
        problems.add("permissions", "REQUIRED", "Grant at least one permission.")
    elif unknown := [p for p in granted if p not in PERMISSIONS]:
        problems.add("permissions", "INVALID", f"Unknown permissions: {', '.join(unknown[:5])}.")
    elif never := [p for p in granted if p in NOT_GRANTABLE]:
        problems.add("permissions", "NOT_GRANTABLE", f"API keys cannot hold: {', '.join(never)}.")
    elif beyond := [p for p in granted if p not in own]:
        problems.add("permissions", "EXCEEDS_YOURS", f"You do not hold: {', '.join(beyond)}.")
    if expires_at is not None and _utc(expires_at) <= ctx.now():
        problems.add("expiresAt", "INVALID", "Choose a moment in the future, or none.")
    problems.raise_if_any()
    return name, granted


async def create(ctx: Context, name: str, permissions: list[str],
                 expires_at: datetime | None = None) -> tuple[str, ApiKeyDocument]:
    """``apiKeyCreate``: a new key, and the key itself (shown this once; only its hash is kept).

    InvalidInput: ``name`` INVALID; ``permissions`` REQUIRED, INVALID (unknown), NOT_GRANTABLE, or
    EXCEEDS_YOURS (beyond the creating admin's own); ``expiresAt`` INVALID (not in the future).
    """
    name, granted = _checked(ctx, name, permissions, expires_at)
    key = PREFIX + secrets.token_urlsafe(KEY_BYTES)
    document = ApiKeyDocument(id=new_id(), name=name, key_hash=token_hash(key), prefix=key[:SHOWN_PREFIX_LENGTH],
                              permissions=granted, created_by=ctx.principal.subject_id, created_at=ctx.now(),
                              expires_at=_utc(expires_at) if expires_at else None)
    await key_store.insert(document)
    await audit.record(ctx, "api_key.created", subject_id=document.id, name=name, permissions=granted,
                       expires_at=document.expires_at.isoformat() if document.expires_at else None)
    return key, document


async def list_keys(ctx: Context) -> list[ApiKeyDocument]:
    return await key_store.list_all()


async def revoke(ctx: Context, key_id: str) -> ApiKeyDocument:
    """``apiKeyRevoke``: the key stops working on its next request. Revoking a revoked key changes
    nothing; NotFound for an unknown id."""
    revoked = await key_store.revoke(key_id, ctx.now_ms(), ctx.principal.subject_id) \
        if key_id and len(key_id) <= MAX_ID and is_text(key_id) else None
    if revoked is None:
        existing = await key_store.get(key_id) if key_id and len(key_id) <= MAX_ID and is_text(key_id) else None
        if existing is None:
            raise NotFound("No API key has this id.", field="id")
        return existing
    await audit.record(ctx, "api_key.revoked", subject_id=revoked.id, name=revoked.name)
    return revoked


def status_of(key: ApiKeyDocument, now: datetime) -> str:
    """ACTIVE, REVOKED or EXPIRED (a key whose creator is disabled is revoked)."""
    if key.revoked_at_ms is not None:
        return "REVOKED"
    if key.expires_at is not None and _utc(key.expires_at) <= now:
        return "EXPIRED"
    return "ACTIVE"


async def record_refusal(ctx: Context, token: str) -> None:
    """Audit a refused use of a known key (``api_key.refused`` with why: revoked, expired, or its creator
    disabled), at most once per key per ``TOUCH_INTERVAL_MS``; an unknown key is not recorded (anyone
    can make those up, and the log must not be theirs to fill)."""
    if not is_api_key(token) or len(token) > MAX_KEY_LENGTH:
        return
    key = await key_store.find_by_hash(token_hash(token))
    if key is None:
        return
    now = ctx.now()
    reason = {"REVOKED": "revoked", "EXPIRED": "expired"}.get(status_of(key, now), "creator_disabled")
    now_ms = epoch_ms(now)
    if await key_store.claim_refusal_log(key.id, now_ms, now_ms - TOUCH_INTERVAL_MS + 1):
        await audit.record(ctx, "api_key.refused", subject_id=key.id, actor_kind="api_key", actor_id=key.id,
                           result=AuditResult.FAILURE, name=key.name, reason=reason)


async def authenticate(rules: Rules, clock: Clock, token: str | None) -> Principal | None:
    """The principal behind an API key, or None (unknown, revoked, expired, or its creator disabled)."""
    if not is_api_key(token) or len(token) > MAX_KEY_LENGTH:
        return None
    now = clock.now()
    key = await key_store.find_usable_by_hash(token_hash(token), now)
    if key is None:
        return None
    creator = await admins.get(key["created_by"])
    if creator is None or creator.disabled:
        return None
    permissions = (frozenset(key["permissions"]) & permissions_of(creator.role)) - NOT_GRANTABLE
    now_ms = epoch_ms(now)
    last_used = key.get("last_used_at_ms")
    if last_used is None or now_ms - last_used >= TOUCH_INTERVAL_MS:
        await key_store.touch(key["_id"], now_ms, now_ms - TOUCH_INTERVAL_MS + 1)
    return Principal(kind="admin", subject_id=key["_id"], session_id="", permissions=permissions,
                     api_key_name=key["name"])
