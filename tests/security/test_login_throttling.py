"""Sign-in throttling per account (failures, whatever the IP) and per IP (attempts, whatever the account)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import running_gateway
from tests.flows import PASSWORD, SIGN_IN, active_customer
from tests.security.support import at_start_of_window
from tests.support import GraphQLClient, assert_no_errors, unique_email


async def attempt(gql: GraphQLClient, identifier: str, password: str) -> dict:
    return assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": identifier, "password": password}}))[
        "sessionCreate"]


@pytest.mark.slow
async def test_the_101st_consecutive_failure_for_an_account_is_throttled(settings, clock, mailbox):
    # given the default limits (100 failures per identifier per hour), and a fresh window
    defaults = settings.model_copy(update={"rate_limit_scale": 1.0})
    at_start_of_window(clock, defaults.login_identifier_window_seconds)
    async with running_gateway(defaults, clock) as (_, http):
        email = unique_email("brute")
        await active_customer(GraphQLClient(http), mailbox, email)

        # when an attacker fails 100 times, each time from a different IP
        for i in range(100):
            result = await attempt(GraphQLClient(http), email, f"guess number {i}")
            assert result["__typename"] == "InvalidCredentialsError", (i, result)

        # then the 101st attempt is throttled, even with the right password, from yet another IP
        throttled = await attempt(GraphQLClient(http), email, PASSWORD)
        assert throttled["__typename"] == "RateLimitedError"
        assert throttled["code"] == "RATE_LIMITED"
        assert 0 < throttled["retryAfterSeconds"] <= defaults.login_identifier_window_seconds + 1

        # and after the window the owner can sign in again
        clock.advance(seconds=throttled["retryAfterSeconds"])
        assert (await attempt(GraphQLClient(http), email, PASSWORD))["__typename"] == "SessionCreated"


async def test_a_success_clears_the_failures(settings, clock, mailbox):
    # given an account locked after 3 failures
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_identifier_failures": 3})
    at_start_of_window(clock)
    async with running_gateway(limited, clock) as (_, http):
        gql = GraphQLClient(http)
        email = unique_email("clears")
        await active_customer(gql, mailbox, email)

        # when 2 failures, a success, then 2 more failures
        for password in ("wrong 1", "wrong 2", PASSWORD, "wrong 3", "wrong 4"):
            await attempt(gql, email, password)

        # then only consecutive failures count: the next success goes through
        assert (await attempt(gql, email, PASSWORD))["__typename"] == "SessionCreated"


async def test_one_ip_is_throttled_across_accounts(settings, clock):
    # given 5 sign-in attempts per IP per window
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_ip_attempts": 5})
    at_start_of_window(clock, limited.login_ip_window_seconds)
    async with running_gateway(limited, clock) as (_, http):
        gql = GraphQLClient(http)

        # when one IP tries 5 different accounts
        for i in range(5):
            assert (await attempt(gql, unique_email(f"spray{i}"), "password 1"))["__typename"] == \
                "InvalidCredentialsError"

        # then its 6th attempt is throttled, whatever the account
        throttled = await attempt(gql, unique_email("spray"), "password 1")
        assert throttled["__typename"] == "RateLimitedError"
        assert 0 < throttled["retryAfterSeconds"] <= limited.login_ip_window_seconds + 1

        # and another IP is not
        assert (await attempt(GraphQLClient(http), unique_email("other"), "password 1"))["__typename"] == \
            "InvalidCredentialsError"


async def test_concurrent_guesses_cannot_overshoot_the_account_limit(settings, clock, mailbox):
    # given an account locked after 5 failures
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_identifier_failures": 5})
    at_start_of_window(clock)
    async with running_gateway(limited, clock) as (_, http):
        email = unique_email("burst")
        await active_customer(GraphQLClient(http), mailbox, email)

        # when 30 guesses arrive at once, each from its own IP
        results = await asyncio.gather(*[attempt(GraphQLClient(http), email, f"burst guess {i}") for i in range(30)])

        # then no more than the limit were checked against the password
        kinds = [r["__typename"] for r in results]
        assert kinds.count("InvalidCredentialsError") <= 5, {k: kinds.count(k) for k in set(kinds)}
        assert kinds.count("RateLimitedError") >= 25
