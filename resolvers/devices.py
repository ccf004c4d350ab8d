"""Device tokens: a device that has signed in to an account before gets its own sign-in budget.

OWASP's "Slow Down Online Guessing Attacks with Device Cookies": after a successful sign-in the
client receives a token signed by the gateway (HMAC-SHA-256 under a key derived from the secret key)
that names the account, the account's credential version and a random 128-bit nonce. Presented
with a later sign-in to the same account, its failures count against that device alone, so an
attacker who exhausts the account's budget for unknown clients, from anywhere, does not lock out
the owner's known devices. A token is worthless for any other account, and every token of an
account stops counting as trusted when its credentials change (password reset or change).

Stateless: nothing is stored; a device that fails too often is limited by its own counter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from resolvers.context import Rules

PREFIX = "gwd_"
NONCE_BYTES = 16
MAX_LENGTH = 128


def _key(rules: Rules) -> bytes:
    return hmac.new(rules.secret_key, b"identity-gateway device token v1", hashlib.sha256).digest()


def _mac(rules: Rules, kind: str, subject_id: str, credential_version: int, nonce: str) -> str:
    message = f"{kind}|{subject_id}|{credential_version}|{nonce}".encode()
    return hmac.new(_key(rules), message, hashlib.sha256).hexdigest()[:32]


def issue(rules: Rules, kind: str, subject_id: str, credential_version: int) -> str:
    """A new device token for this account: ``gwd_<nonce>.<mac>``."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    return f"{PREFIX}{nonce}.{_mac(rules, kind, subject_id, credential_version, nonce)}"


def recognise(rules: Rules, token: str | None, kind: str, subject_id: str, credential_version: int) -> str | None:
    """The device's id (its nonce) when the token was issued to this account under its current credentials."""
    if not token or len(token) > MAX_LENGTH or not token.startswith(PREFIX):
        return None
    nonce, _, mac = token[len(PREFIX):].partition(".")
    if not nonce or not mac:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(rules, kind, subject_id, credential_version, nonce).encode()):
        return None
    return nonce
