"""Every limit counts the same key the look-up uses (Hardening II, item 9, and the IPv6 part of item 4).

A variant spelling of the same thing never buys a fresh budget: a reset token with whitespace around it
is the same token; the email and the username of one account are one account; and every per-IP limit
counts an IPv6 client by its /64 (one subscriber's allocation) and an IPv4-mapped IPv6 address as its
IPv4 address.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import running_gateway
from tests.flows import PASSWORD, REGISTER, SIGN_IN, active_customer, new_application, register
from tests.security.support import at_start_of_window
from tests.support import GraphQLClient, Mailbox, assert_no_errors, unique_email, unique_ip

RESET_REQUEST = """
mutation Ask($email: String!) {
  passwordResetRequest(input: {email: $email}) { __typename ... on Error { code message } }
}
"""

RESET = """
mutation Reset($input: PasswordResetInput!) {
  passwordReset(input: $input) { __typename ... on Error { code message field } }
}
"""

REMIND = """
mutation Remind($email: String!) {
  usernameReminderRequest(input: {email: $email}) { __typename ... on Error { code message } }
}
"""

RESEND = """
mutation Resend($email: String!) {
  accountActivationResend(email: $email) { __typename ... on Error { code message } }
}
"""

NEW_PASSWORD = "a brand new passphrase 42"
LONGEST_WINDOW = 3600  # every window used here divides it, so one start-of-window suits them all


def with_limits(settings, **limits):
    """The test settings with real (unscaled) limits, some of them overridden."""
    return settings.model_copy(update={"rate_limit_scale": 1.0, **limits})


async def attempt_sign_in(gql: GraphQLClient, identifier: str, password: str) -> str:
    result = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": identifier, "password": password}}))
    return result["sessionCreate"]["__typename"]


async def customer_with_username(app, http, mailbox: Mailbox) -> tuple[str, str]:
    """An active customer of a USERNAME-mode application; returns (email, username)."""
    _, client_id = await new_application(app.state.runtime, username_mode="USERNAME")
    email = unique_email("both")
    username = f"kate_{uuid.uuid4().hex[:10]}"
    await active_customer(GraphQLClient(http), mailbox, email, headers={"x-application-id": client_id},
                          username=username)
    return email, username


# -- item 9: the key of a limit is the key of the look-up ------------------------------------------------


async def test_a_reset_token_with_added_whitespace_counts_as_the_same_token(settings, clock, mailbox):
    # given 3 attempts per reset token per window, and a customer holding a reset link
    limits = with_limits(settings, password_reset_token_attempts=3)
    at_start_of_window(clock, limits.password_reset_window_seconds)
    async with running_gateway(limits, clock) as (_, http):
        gql = GraphQLClient(http)
        email = unique_email("token-space")
        await active_customer(gql, mailbox, email)
        assert_no_errors(await gql(RESET_REQUEST, {"email": email}))
        token = (await mailbox.wait_for(email, "reset your")).token("/reset-password")

        # when three attempts send the token with whitespace around it, each from its own IP (the link is
        # found each time: the confirmation does not match, so it is not used up)
        for variant in (f" {token}", f"{token}\n", f"\t{token} "):
            answer = assert_no_errors(await GraphQLClient(http)(RESET, {"input": {
                "token": variant, "newPassword": NEW_PASSWORD, "confirmPassword": "not the same passphrase"}}))
            assert answer["passwordReset"]["__typename"] == "PasswordMismatchError", answer

        # then the exact token is throttled: it already had its 3 attempts
        exact = assert_no_errors(await GraphQLClient(http)(RESET, {"input": {
            "token": token, "newPassword": NEW_PASSWORD, "confirmPassword": NEW_PASSWORD}}))
        assert exact["passwordReset"]["__typename"] == "RateLimitedError", exact

        # and the password did not change
        assert await attempt_sign_in(gql, email, PASSWORD) == "SessionCreated"


async def test_the_email_and_the_username_of_one_account_share_its_sign_in_budget(settings, clock, mailbox):
    # given 4 failed sign-ins per account per window (whatever the IP), and a customer with a username
    limits = with_limits(settings, login_identifier_failures=4)
    at_start_of_window(clock, LONGEST_WINDOW)
    async with running_gateway(limits, clock) as (app, http):
        email, username = await customer_with_username(app, http, mailbox)

        # when an attacker fails 4 times, alternating the email and the username, each time from a new IP
        for identifier in (email, username, email.upper(), f" {username} "):
            assert await attempt_sign_in(GraphQLClient(http), identifier, "a wrong guess") == \
                "InvalidCredentialsError"

        # then the account is throttled by either identifier, even with the right password
        assert await attempt_sign_in(GraphQLClient(http), username, PASSWORD) == "RateLimitedError"
        assert await attempt_sign_in(GraphQLClient(http), email, PASSWORD) == "RateLimitedError"


async def test_the_email_and_the_username_of_one_account_share_its_budget_per_client(settings, clock, mailbox):
    # given 4 failed sign-ins per account and client IP per window (and a loose per-account limit)
    limits = with_limits(settings, login_identifier_ip_failures=4, login_identifier_failures=100)
    at_start_of_window(clock, LONGEST_WINDOW)
    async with running_gateway(limits, clock) as (app, http):
        email, username = await customer_with_username(app, http, mailbox)
        attacker = GraphQLClient(http)

        # when one client fails 4 times, alternating the email and the username
        for identifier in (email, username, email, username):
            assert await attempt_sign_in(attacker, identifier, "a wrong guess") == "InvalidCredentialsError"

        # then that client is throttled on this account by either identifier, even with the right password
        assert await attempt_sign_in(attacker, username, PASSWORD) == "RateLimitedError"
        assert await attempt_sign_in(attacker, email, PASSWORD) == "RateLimitedError"

        # and the owner, from another client, still signs in
        assert await attempt_sign_in(GraphQLClient(http), username, PASSWORD) == "SessionCreated"


# -- item 4 (part): per-IP limits count an IPv6 client per /64 ---------------------------------------------


@dataclass(frozen=True)
class PerIpLimit:
    """One per-IP limit, and how a client sees it: ``attempt`` is True when the limit refused the request."""

    setting: str
    prepare: Callable[[Any, Any, Mailbox], Awaitable[dict]]
    attempt: Callable[[GraphQLClient, dict], Awaitable[bool]]


async def nothing(app, http, mailbox) -> dict:
    return {}


async def an_active_customer(app, http, mailbox) -> dict:
    email = unique_email("v6")
    await active_customer(GraphQLClient(http), mailbox, email)
    return {"app": app, "mailbox": mailbox, "email": email}


async def a_pending_customer(app, http, mailbox) -> dict:
    email = unique_email("v6-pending")
    await register(GraphQLClient(http), email)
    await mailbox.wait_for(email, "activate")
    return {"app": app, "mailbox": mailbox, "email": email}


async def a_username_customer(app, http, mailbox) -> dict:
    _, client_id = await new_application(app.state.runtime, username_mode="USERNAME")
    email = unique_email("v6-named")
    await active_customer(GraphQLClient(http), mailbox, email, headers={"x-application-id": client_id},
                          username=f"v6_{uuid.uuid4().hex[:10]}")
    return {"app": app, "mailbox": mailbox, "email": email, "headers": {"x-application-id": client_id}}


async def registers(gql: GraphQLClient, env: dict) -> bool:
    result = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("v6"), "password": PASSWORD}}))
    kind = result["accountRegister"]["__typename"]
    assert kind in ("AccountRegisterAccepted", "RateLimitedError"), result
    return kind == "RateLimitedError"


async def signs_in_to_unknown_accounts(gql: GraphQLClient, env: dict) -> bool:
    kind = await attempt_sign_in(gql, unique_email("nobody"), "a wrong guess")
    assert kind in ("InvalidCredentialsError", "RateLimitedError"), kind
    return kind == "RateLimitedError"


async def guesses_one_account(gql: GraphQLClient, env: dict) -> bool:
    kind = await attempt_sign_in(gql, env["email"], "a wrong guess")
    assert kind in ("InvalidCredentialsError", "RateLimitedError"), kind
    return kind == "RateLimitedError"


async def submits_reset_tokens(gql: GraphQLClient, env: dict) -> bool:
    result = assert_no_errors(await gql(RESET, {"input": {
        "token": uuid.uuid4().hex, "newPassword": NEW_PASSWORD, "confirmPassword": NEW_PASSWORD}}))
    kind = result["passwordReset"]["__typename"]
    assert kind in ("InvalidTokenError", "RateLimitedError"), result
    return kind == "RateLimitedError"


async def settle(runtime) -> None:
    """Wait for the work done after the answer, and for what it starts in turn."""
    for _ in range(4):
        await runtime.drain()


def mails_unless_limited(query: str, field: str, kind: str) -> Callable[[GraphQLClient, dict], Awaitable[bool]]:
    """A request whose work runs after the answer: the limit shows as the mail that is never sent. Mails
    are counted in the outbox, where each is stored before delivery (any instance may deliver it)."""

    async def attempt(gql: GraphQLClient, env: dict) -> bool:
        from stores.documents import OutboxDocument

        async def mails() -> int:
            return await OutboxDocument.get_pymongo_collection().count_documents({"to": env["email"], "kind": kind})

        before = await mails()
        result = assert_no_errors(await gql(query, {"email": env["email"]}, headers=env.get("headers")))
        assert result[field]["__typename"] not in ("InvalidInputError", "FeatureDisabledError"), result
        await settle(env["app"].state.runtime)
        return await mails() == before

    return attempt


PER_IP_LIMITS = [
    pytest.param(PerIpLimit("register_ip_attempts", nothing, registers), id="registration"),
    pytest.param(PerIpLimit("login_ip_attempts", nothing, signs_in_to_unknown_accounts), id="sign-in-per-ip"),
    pytest.param(PerIpLimit("login_identifier_ip_failures", an_active_customer, guesses_one_account),
                 id="sign-in-per-account-and-ip"),
    pytest.param(PerIpLimit("password_reset_ip_attempts", nothing, submits_reset_tokens), id="reset-submit"),
    pytest.param(PerIpLimit("password_reset_ip_attempts", an_active_customer,
                            mails_unless_limited(RESET_REQUEST, "passwordResetRequest", "password_reset")),
                 id="reset-request"),
    pytest.param(PerIpLimit("password_reset_ip_attempts", a_username_customer,
                            mails_unless_limited(REMIND, "usernameReminderRequest", "username_reminder")),
                 id="username-reminder"),
    pytest.param(PerIpLimit("activation_resend_ip_attempts", a_pending_customer,
                            mails_unless_limited(RESEND, "accountActivationResend", "activation")),
                 id="activation-resend"),
]

# Per-email limits are loosened so that only the per-IP limit under test can refuse.
LOOSE_PER_EMAIL = {"password_reset_email_attempts": 100, "activation_resend_email_attempts": 100}


def random_64() -> tuple[list[str], str]:
    """Three addresses of one random /64 (documentation range), and an address of the neighbouring /64."""
    raw = uuid.uuid4().int
    a, b = raw & 0xFFFF, (raw >> 16) & 0xFFFF
    same = [f"2001:db8:{a:x}:{b:x}::1", f"2001:db8:{a:x}:{b:x}:ffff:ffff:ffff:fffe",
            f"2001:db8:{a:x}:{b:x}:1234:5678:9abc:def0"]
    neighbour = f"2001:db8:{a:x}:{b ^ 1:x}::1"
    network = ipaddress.IPv6Network(f"{same[0]}/64", strict=False)
    assert all(ipaddress.IPv6Address(address) in network for address in same)
    assert ipaddress.IPv6Address(neighbour) not in network
    return same, neighbour


@pytest.mark.parametrize("limit", PER_IP_LIMITS)
async def test_clients_in_one_ipv6_64_share_each_per_ip_limit(settings, clock, mailbox, limit: PerIpLimit):
    # given this per-IP limit at 2 per window
    limits = with_limits(settings, **{limit.setting: 2, **LOOSE_PER_EMAIL})
    at_start_of_window(clock, LONGEST_WINDOW)
    async with running_gateway(limits, clock) as (app, http):
        env = await limit.prepare(app, http, mailbox)
        (first, second, third), neighbour = random_64()

        # when two clients of one /64 use it up
        assert not await limit.attempt(GraphQLClient(http, first), env)
        assert not await limit.attempt(GraphQLClient(http, second), env)

        # then a third address of the same /64 is refused
        assert await limit.attempt(GraphQLClient(http, third), env)

        # and a client of the neighbouring /64 is not
        assert not await limit.attempt(GraphQLClient(http, neighbour), env)


@pytest.mark.parametrize("limit", PER_IP_LIMITS)
async def test_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address(settings, clock, mailbox, limit: PerIpLimit):
    # given this per-IP limit at 2 per window
    limits = with_limits(settings, **{limit.setting: 2, **LOOSE_PER_EMAIL})
    at_start_of_window(clock, LONGEST_WINDOW)
    async with running_gateway(limits, clock) as (app, http):
        env = await limit.prepare(app, http, mailbox)
        ipv4 = unique_ip()

        # when one client uses it once as IPv4 and once as an IPv4-mapped IPv6 address
        assert not await limit.attempt(GraphQLClient(http, ipv4), env)
        assert not await limit.attempt(GraphQLClient(http, f"::ffff:{ipv4}"), env)

        # then it has used up the limit, under either spelling
        assert await limit.attempt(GraphQLClient(http, f"::ffff:{ipv4}"), env)
        assert await limit.attempt(GraphQLClient(http, ipv4), env)
