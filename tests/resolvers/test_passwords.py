"""Pure rules: the password policy and the bounded hasher (no database)."""

from __future__ import annotations

import asyncio

import pytest

from resolvers.errors import PasswordPolicyViolation, RateLimited
from resolvers.passwords import PasswordHasher, check_password


def reasons(password: str, **kwargs) -> list[str]:
    with pytest.raises(PasswordPolicyViolation) as caught:
        check_password(password, **kwargs)
    return [r.split(":")[0] for r in caught.value.reasons]


def test_length_is_the_only_composition_rule():
    check_password("lowercase only words here")  # no digits, no symbols, no upper case: fine
    check_password("a" * 256)  # 256 characters are allowed
    assert reasons("short1!") == ["TOO_SHORT"]
    assert reasons("p" * 257) == ["TOO_LONG"]
    assert reasons("just-ok-9", min_length=12) == ["TOO_SHORT"]


def test_common_and_breached_passwords_are_refused_whatever_the_case():
    assert "COMMON" in reasons("password")
    assert "COMMON" in reasons("Qwertyuiop")
    assert "COMMON" in reasons("iloveyou")


def test_the_password_may_not_be_the_identifier():
    assert reasons("ada.lovelace@example.com", context=("ada.lovelace@example.com",)) == ["CONTAINS_IDENTIFIER"]


async def test_hashes_verify_and_wrong_passwords_do_not():
    hasher = PasswordHasher(time_cost=1, memory_kib=8 * 1024)
    stored = await hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert await hasher.verify(stored, "correct horse battery staple")
    assert not await hasher.verify(stored, "Correct horse battery staple")
    assert not await hasher.verify(None, "anything")  # dummy verification for unknown accounts
    assert not await hasher.verify("not a hash", "anything")


async def test_owasp_parameters_by_default_and_rehash_when_they_change():
    default = PasswordHasher()
    stored = await default.hash("correct horse battery staple")
    assert "$m=19456,t=2,p=1$" in stored
    weaker = PasswordHasher(time_cost=1, memory_kib=8 * 1024)
    assert default.needs_rehash(await weaker.hash("x")) is True
    assert default.needs_rehash(stored) is False


async def test_an_overloaded_hasher_sheds_load_quickly_instead_of_queueing():
    hasher = PasswordHasher(concurrency=1, queue_limit=2)
    stored = await hasher.hash("correct horse battery staple")

    results = await asyncio.gather(*[hasher.verify(stored, "guess") for _ in range(10)], return_exceptions=True)

    shed = [r for r in results if isinstance(r, RateLimited)]
    done = [r for r in results if r is False]
    assert len(done) == 3 and len(shed) == 7
    assert all(r.retry_after_seconds >= 1 for r in shed)
