"""Session tokens: unguessable, new on every sign-in, dead after sign-out and after either expiry."""

from __future__ import annotations

import math
import re

from tests.flows import ME, SIGN_OUT, active_customer, admin_token, sign_in
from tests.support import assert_denied, assert_no_errors, unique_email

URLSAFE_BASE64 = re.compile(r"^[A-Za-z0-9_-]+$")
PREFIX = re.compile(r"^gw[ca]_")


def random_bits(token: str) -> float:
    """Entropy of the random part, assuming each base64url character carries log2(64) = 6 bits."""
    body = PREFIX.sub("", token)
    assert URLSAFE_BASE64.match(body), token
    return len(body) * math.log2(64)


async def test_tokens_carry_at_least_128_random_bits(gql, mailbox, runtime):
    # given customer and admin tokens
    email = unique_email("entropy")
    tokens = [await active_customer(gql, mailbox, email)]
    tokens += [(await sign_in(gql, email))["token"] for _ in range(3)]
    tokens.append(await admin_token(runtime, gql))

    # then each has a known prefix, a base64url body and at least 128 bits of randomness
    for token in tokens:
        assert PREFIX.match(token), token
        assert random_bits(token) >= 128, token
    # and no two share a body, nor a long common prefix after the kind prefix
    bodies = [PREFIX.sub("", t) for t in tokens]
    assert len(set(bodies)) == len(bodies)
    assert len({b[:8] for b in bodies}) == len(bodies)


async def test_each_sign_in_issues_a_new_token(gql, mailbox):
    # given a customer signed in once
    email = unique_email("rotate")
    first = await active_customer(gql, mailbox, email)

    # when they sign in again
    second = (await sign_in(gql, email))["token"]

    # then the token is new, and each names its own session
    assert second != first
    me_first = assert_no_errors(await gql(ME, token=first))["me"]["sessions"]
    current = {s["id"] for s in me_first if s["current"]}
    me_second = assert_no_errors(await gql(ME, token=second))["me"]["sessions"]
    assert current.isdisjoint({s["id"] for s in me_second if s["current"]})


async def test_a_token_is_dead_after_sign_out(gql, mailbox):
    # given
    email = unique_email("logout")
    token = await active_customer(gql, mailbox, email)
    other = (await sign_in(gql, email))["token"]

    # when
    assert assert_no_errors(await gql(SIGN_OUT, token=token)) == {"sessionEnd": {"ended": True}}

    # then that token no longer works (not even to sign out again), the other session still does
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert_denied(await gql(SIGN_OUT, token=token), "UNAUTHENTICATED")
    assert assert_no_errors(await gql(ME, token=other))["me"]["email"] == email


async def test_a_token_dies_after_the_idle_timeout(gql, mailbox, clock, settings):
    # given a customer session, idle for just under the idle timeout
    token = await active_customer(gql, mailbox, unique_email("idle"))
    idle_hours = settings.session_idle_ttl_seconds / 3600
    clock.advance(hours=idle_hours - 1)

    # then it still works, and using it restarts the idle timer
    assert_no_errors(await gql(ME, token=token))
    clock.advance(hours=idle_hours - 1)
    assert_no_errors(await gql(ME, token=token))

    # when it is left idle past the timeout
    clock.advance(hours=idle_hours + 0.1)

    # then it is dead
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")


async def test_a_token_dies_at_the_absolute_lifetime_even_when_active(gql, mailbox, clock, settings):
    # given a customer session used every 20 hours
    token = await active_customer(gql, mailbox, unique_email("absolute"))
    absolute_hours = settings.session_absolute_ttl_seconds / 3600
    step = 20
    elapsed = 0
    while elapsed + step < absolute_hours:
        clock.advance(hours=step)
        elapsed += step
        assert_no_errors(await gql(ME, token=token))

    # when the absolute lifetime passes, though it was used recently
    clock.advance(hours=absolute_hours - elapsed + 0.1)
    assert absolute_hours - elapsed + 0.1 < settings.session_idle_ttl_seconds / 3600

    # then it is dead
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
