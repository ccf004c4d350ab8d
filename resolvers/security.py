"""Secrets, their hashes, and identifier normalisation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

# Session tokens carry 256 random bits, one-time link tokens 192: both above the 128-bit floor.
SESSION_TOKEN_BYTES = 32
LINK_TOKEN_BYTES = 24


def new_id() -> str:
    return uuid.uuid4().hex


def new_session_token(kind: str) -> str:
    prefix = "gwc_" if kind == "customer" else "gwa_"
    return prefix + secrets.token_urlsafe(SESSION_TOKEN_BYTES)


def new_link_token() -> str:
    return secrets.token_urlsafe(LINK_TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def keyed_hash(secret_key: bytes, value: str) -> str:
    """Keyed digest for rate-limit keys, so counters never store raw emails or IPs."""
    return hmac.new(secret_key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def is_text(value: str) -> bool:
    """False for a string with a lone surrogate (valid JSON, but not Unicode text: it cannot be stored or hashed)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
