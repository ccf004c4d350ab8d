"""Emailed one-time links: random, stored only as a SHA-256, bound to a purpose and to the subject's
credential version, single use, and one per (purpose, subject): a new link revokes the previous one.

Every look-up and every limit on a link token goes through :func:`token_key`, so a token with added
whitespace is the same token to both (never a fresh attempt budget).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

from resolvers.context import Context
from resolvers.errors import InvalidToken
from resolvers.security import new_link_token, token_hash
from resolvers.urls import within
from stores import tokens
from stores.documents import OneTimeTokenDocument

MAX_TOKEN_LENGTH = 256

logger = logging.getLogger("resolvers.links")


class LinkState(StrEnum):
    """What an emailed link that changes state can do, or did: what its landing page shows."""

    USABLE = "usable"  # peek: confirming it would take effect
    CONFIRMED = "confirmed"  # consume: this request used it and the change is made
    ALREADY_DONE = "already_done"  # used before and its effect holds (an earlier click, or a mail scanner)
    INVALID = "invalid"  # unknown, expired, superseded, or used without its effect holding


def token_key(token: object) -> str | None:
    """The canonical form of a link token, as stored and as rate limits count it: the SHA-256 of the
    trimmed token. None for something that cannot be a token."""
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token_hash(token.strip())


async def issue(ctx: Context, purpose: str, subject_id: str, ttl_minutes: int, path: str, *,
                credential_version: int, base_url: str | None = None, new_email: str | None = None,
                fields: dict[str, Any] | None = None) -> str:
    """Create a link token, revoking the subject's earlier link of this purpose in the same write, and
    return the full URL.

    ``credential_version`` is the subject's current one (required: every link is bound to it, and
    whoever consumes the link checks it with :func:`check_version`). ``new_email`` is kept with an
    email-change link (the address it verifies). ``fields``: more ``OneTimeTokenDocument`` fields written in
    the same write (an emailed sign-in's code and destination).

    ``base_url`` replaces ``{public_url}{path}`` when the application hosts its own page; it is used only
    when it falls within the application's ``redirect_urls`` (``resolvers.urls.within``), else the hosted
    page is (a warning is logged): no link ever points at a site the application did not allow.
    """
    if base_url is not None and not within(ctx.application.redirect_urls, base_url):
        logger.warning("link base URL outside the redirect URLs of application %s: the hosted page is used",
                       ctx.application.id)
        base_url = None
    now = ctx.now()
    token = new_link_token()
    await tokens.issue(OneTimeTokenDocument(
        id=tokens.link_id(purpose, subject_id), token_hash=token_hash(token), purpose=purpose,
        subject_id=subject_id, credential_version=credential_version, application_id=ctx.application.id,
        created_at=now, expires_at=now + timedelta(minutes=ttl_minutes), new_email=new_email, **(fields or {}),
    ))
    target = base_url or f"{ctx.rules.public_url}{path}"
    return f"{target}{'&' if '?' in target else '?'}token={token}"


def _checked(token: object) -> str:
    key = token_key(token)
    if key is None:
        raise InvalidToken()
    return key


async def consume(ctx: Context, purpose: str, token: str) -> OneTimeTokenDocument:
    """Use a token up, atomically: of concurrent uses exactly one wins. Unknown, used and expired look alike.

    The caller still checks ``credential_version`` against the subject's (see :func:`check_version`).
    """
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


def check_version(link: OneTimeTokenDocument, credential_version: int) -> None:
    """InvalidToken when the subject's credentials changed since the link was issued."""
    if link.credential_version != credential_version:
        raise InvalidToken()


async def find_any(token: str) -> OneTimeTokenDocument | None:
    """A link whatever its state (used, expired); None for an unknown one. Only to tell its holder what
    already happened, or which application issued it."""
    key = token_key(token)
    return await tokens.get(key) if key else None


async def issuing_application(token: str) -> str | None:
    """The application that issued a link, whatever the link's state; None for an unknown link."""
    found = await find_any(token)
    return found.application_id if found else None
