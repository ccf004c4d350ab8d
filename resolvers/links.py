"""Emailed one-time links: random, stored only as a SHA-256, bound to a purpose, single use."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from resolvers.context import Context
from resolvers.errors import InvalidToken
from resolvers.security import new_link_token, token_hash
from stores import tokens
from stores.documents import OneTimeTokenDocument

MAX_TOKEN_LENGTH = 256


class LinkState(StrEnum):
    """What an emailed link that changes state can do, or did: what its landing page shows."""

    USABLE = "usable"  # peek: confirming it would take effect
    CONFIRMED = "confirmed"  # consume: this request used it and the change is made
    ALREADY_DONE = "already_done"  # used before and its effect holds (an earlier click, or a mail scanner)
    INVALID = "invalid"  # unknown, expired, superseded, or used without its effect holding


async def issue(ctx: Context, purpose: str, subject_id: str, ttl_minutes: int, path: str,
                base_url: str | None = None) -> str:
    """Create a link token (superseding earlier ones of this purpose) and return the full URL.

    ``base_url`` replaces ``{public_url}{path}`` when the application hosts its own page.
    """
    now = ctx.now()
    await tokens.invalidate_for_subject(subject_id, purpose, ctx.now_ms())
    token = new_link_token()
    await tokens.insert(OneTimeTokenDocument(
        id=token_hash(token), purpose=purpose, subject_id=subject_id, application_id=ctx.application.id,
        created_at=now, expires_at=now + timedelta(minutes=ttl_minutes),
    ))
    target = base_url or f"{ctx.rules.public_url}{path}"
    return f"{target}{'&' if '?' in target else '?'}token={token}"


def _checked(token: str) -> str:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    return token_hash(token.strip())


async def consume(ctx: Context, purpose: str, token: str) -> OneTimeTokenDocument:
    """Use a token up, atomically: of concurrent uses exactly one wins. Unknown, used and expired look alike."""
    found = await tokens.consume_token(_checked(token), purpose, ctx.now(), ctx.now_ms())
    if found is None:
        raise InvalidToken()
    return found


async def peek(ctx: Context, purpose: str, token: str) -> OneTimeTokenDocument:
    """Check a token without using it (to decide which page to show)."""
    found = await tokens.find_usable(_checked(token), purpose, ctx.now())
    if found is None:
        raise InvalidToken()
    return found


async def issuing_application(token: str) -> str | None:
    """The application that issued a link, whatever the link's state; None for an unknown link."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = await tokens.get(token_hash(token.strip()))
    return found.application_id if found else None
