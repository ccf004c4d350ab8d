"""Password hashing (argon2id in worker threads, bounded) and the password policy.

Passwords are compared in one Unicode form, NFKC, as NIST SP 800-63B (5.1.1.2) asks: a password
typed as "é" (NFC) on one keyboard and "e" + combining accent (NFD) on another is the same password.
Hashing, verifying and the policy's length rule all use that form.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from resolvers.errors import PasswordPolicyViolation, RateLimited
from resolvers.security import is_text
from stores.documents import PasswordPolicy

MAX_PASSWORD_LENGTH = 256


HASH_THREAD_NICENESS = 10


def _lower_priority() -> None:
    """Hash threads yield the CPU to the event loop, so signed-in traffic stays fast during a login flood."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


class PasswordHasher:
    """Hashes off the event loop in low-priority threads, at most ``concurrency`` at once, with a bounded queue.

    When ``queue_limit`` callers are already waiting for a thread, further calls fail fast
    with RateLimited rather than queueing without limit.
    """

    def __init__(self, *, time_cost: int = 2, memory_kib: int = 19 * 1024, parallelism: int = 1,
                 concurrency: int = 0, queue_limit: int = 16) -> None:
        self._argon2 = Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                    hash_len=32, salt_len=16, type=Type.ID)
        self.concurrency = concurrency or os.cpu_count() or 1
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="argon2",
                                            initializer=_lower_priority)
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._queue_limit = queue_limit
        self._waiting = 0
        self._dummy_hash = self._argon2.hash("dummy password for timing equalisation")

    def check_capacity(self) -> None:
        """Raise RateLimited now if a hash would be refused, before spending any other work on the request."""
        if self._waiting >= self._queue_limit + self.concurrency:
            raise RateLimited(1)

    async def _run(self, fn, *args):
        self.check_capacity()
        self._waiting += 1
        try:
            async with self._semaphore:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        """The argon2id hash of the password's NFKC form."""
        return await self._run(self._argon2.hash, normalize_password(password))

    async def verify(self, password_hash: str | None, password: str, *, nfkc: bool = True) -> bool:
        """True when the password matches. With no hash, verifies against a dummy to spend the same time.

        ``nfkc=False`` is for a hash made before passwords were normalised: it is checked against the
        raw form (once; the caller then stores a hash of the NFKC form).
        """
        candidate = normalize_password(password) if nfkc else password
        return await self._run(self._verify_sync, password_hash, candidate)

    def _verify_sync(self, password_hash: str | None, password: str) -> bool:
        try:
            if password_hash is None:
                self._argon2.verify(self._dummy_hash, password)
                return False
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships frequency lists gathered from breached password corpora.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: str, policy: PasswordPolicy, *, context: tuple[str, ...] = (),
                          field: str = "password") -> None:
    """:func:`check_password` with a self-service policy's password rules."""
    check_password(password, min_length=policy.min_length, max_length=policy.max_length,
                   check_common=policy.check_common_passwords, context=context, field=field)


def normalize_password(password: str) -> str:
    """The form a password is hashed, verified and measured in (NIST SP 800-63B 5.1.1.2: NFKC)."""
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, *, min_length: int = 8, max_length: int = MAX_PASSWORD_LENGTH,
                   check_common: bool = True, context: tuple[str, ...] = (), field: str = "password") -> None:
    """NIST 800-63B: length only (8..256 by default), no composition rules, no common or breached passwords.

    Raises PasswordPolicyViolation whose reasons start with a stable code: TOO_SHORT, TOO_LONG, COMMON,
    CONTAINS_IDENTIFIER, INVALID_CHARACTERS. Lengths count code points of the NFKC form (what is hashed).
    """
    reasons: list[str] = []
    if not is_text(password):
        raise PasswordPolicyViolation(["INVALID_CHARACTERS: use only valid Unicode text"], field=field)
    normalized = normalize_password(password)  # the form that is hashed
    length = len(normalized)
    max_length = min(max_length, MAX_PASSWORD_LENGTH)
    if length < min_length:
        reasons.append(f"TOO_SHORT: use at least {min_length} characters")
    if length > max_length:
        reasons.append(f"TOO_LONG: use at most {max_length} characters")
    lowered = normalized.lower()
    if check_common and lowered in _common_passwords():
        reasons.append("COMMON: this password is too common; choose another")
    if any(part and len(part) >= 3 and lowered == normalize_password(part).lower() for part in context):
        reasons.append("CONTAINS_IDENTIFIER: do not use your email or username as your password")
    if reasons:
        raise PasswordPolicyViolation(reasons, field=field)


async def change_password(ctx, current_password: str, new_password: str, confirm_password: str) -> int:
    """The signed-in customer changes their password (``ctx``: a ``resolvers.context.Context``).

    Needs a recent authentication, and the current password (counted against the account's sign-in
    budgets, like a sign-in). The new hash is written with a bumped credential version, only if the
    credentials did not change meanwhile; a "password changed" notice is written before (a durable
    job) and sent for this change only; then every other session of the customer ends and this one
    stays. Returns how many sessions ended.

    FeatureDisabled (area off, passwordless policy, account without a password);
    ReauthenticationRequired; InvalidInput (``currentPassword``/``newPassword``/``confirmPassword``
    REQUIRED, ``confirmPassword`` MISMATCH); PasswordPolicyViolation (on ``newPassword``);
    InvalidCredentials (wrong current password, or the password changed meanwhile); RateLimited.
    """
    # Imported here: resolvers.context imports this module (for PasswordHasher) before these exist.
    from resolvers import audit, notifications
    from resolvers import sessions as sign_in
    from resolvers.errors import FeatureDisabled, InvalidCredentials, Problems, unauthenticated
    from resolvers.self_service import Area, own_account
    from stores import customers, sessions

    customer_id = own_account(ctx, Area.SECURITY_SETTINGS)
    if ctx.policy.passwordless:
        raise FeatureDisabled("This application signs customers in without a password.")
    sign_in.require_recent_authentication(ctx)
    problems = Problems()
    for name, value in (("currentPassword", current_password), ("newPassword", new_password),
                        ("confirmPassword", confirm_password)):
        if not value:
            problems.add(name, "REQUIRED", "Enter a password.")
        elif len(value) > sign_in.MAX_PASSWORD_INPUT:
            problems.add(name, "TOO_LONG", f"Use at most {sign_in.MAX_PASSWORD_INPUT} characters.")
    if new_password and confirm_password and new_password != confirm_password:
        problems.add("confirmPassword", "MISMATCH", "The two new passwords are not the same.")
    problems.raise_if_any()
    customer = await customers.get(customer_id)
    if customer is None:
        raise unauthenticated()
    if customer.password_hash is None:
        raise FeatureDisabled("This account has no password to change.")
    check_password_policy(new_password, ctx.policy.password_policy, field="newPassword",
                          context=(customer.email, customer.email.split("@")[0], customer.username))
    await sign_in.check_own_password(ctx, customer, current_password)
    password_hash = await ctx.hasher.hash(new_password)
    # The follow-up ends the sessions of older credential versions, but never this one (it may run
    # before this session is moved to the new version below).
    change_id = await notifications.prepare_credential_notice(ctx, customer.id, "password_changed",
                                                              keep_session_id=ctx.principal.session_id)
    if not await customers.set_password(customer.id, password_hash, customer.credential_version, ctx.now_ms(),
                                        change_id):
        raise InvalidCredentials("Your password was changed meanwhile. Sign in again.")
    ctx.jobs.start(change_id)
    ended = await sessions.delete_others(customer.id, ctx.principal.session_id)
    await sessions.set_credential_version(ctx.principal.session_id, customer.credential_version + 1)
    await audit.record(ctx, "customer.password_changed", subject_id=customer.id, sessions_ended=ended)
    return ended
