"""Attackers cannot lock the owner out: a tight budget per (account, IP), a softer one per account for
unknown clients, and a device that signed in before keeps its own budget (OWASP device cookies)."""

from __future__ import annotations

import pytest

from tests.conftest import running_gateway
from tests.flows import ADMIN_PASSWORD, PASSWORD, active_customer
from tests.security.support import at_start_of_window
from tests.support import GraphQLClient, assert_no_errors, unique_email
from tests.test_recovery import NEW_PASSWORD, RESET, reset_input, reset_token

SIGN_IN = """
mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    __typename
    ... on SessionCreated { token deviceToken }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

ADMIN_SIGN_IN = """
mutation AdminSignIn($input: AdminSessionCreateInput!) {
  adminSessionCreate(input: $input) { __typename ... on SessionCreated { token deviceToken } }
}
"""

# Soft per-account budget 5, tight per (account, IP) budget 3, per device 3; IP limits out of the way.
LIMITS = {"rate_limit_scale": 1.0, "login_identifier_failures": 5, "login_identifier_ip_failures": 3,
          "login_device_failures": 3, "login_ip_attempts": 1000, "register_ip_attempts": 1000}


async def attempt(gql: GraphQLClient, identifier: str, password: str, device_token: str | None = None) -> dict:
    variables = {"input": {"identifier": identifier, "password": password, "deviceToken": device_token}}
    return assert_no_errors(await gql(SIGN_IN, variables))["sessionCreate"]


async def admin_attempt(gql: GraphQLClient, email: str, password: str, device_token: str | None = None) -> dict:
    variables = {"input": {"email": email, "password": password, "deviceToken": device_token}}
    return assert_no_errors(await gql(ADMIN_SIGN_IN, variables))["adminSessionCreate"]


@pytest.fixture
async def limited(settings, clock):
    at_start_of_window(clock)
    async with running_gateway(settings.model_copy(update=LIMITS), clock) as (app, http):
        yield app, http


async def owner_with_device(http, mailbox, prefix: str) -> tuple[str, GraphQLClient, str]:
    """An active customer who signed in once from their own IP; returns (email, their client, device token)."""
    email, home = unique_email(prefix), GraphQLClient(http)
    await active_customer(home, mailbox, email)
    signed_in = await attempt(home, email, PASSWORD)
    assert signed_in["__typename"] == "SessionCreated" and signed_in["deviceToken"].startswith("gwd_")
    return email, home, signed_in["deviceToken"]


async def test_a_distributed_attack_cannot_lock_the_owner_out_of_a_known_device(limited, mailbox):
    _, http = limited
    # given an owner who signed in before from their device
    email, home, device = await owner_with_device(http, mailbox, "owner")

    # when an attacker fails from six addresses, exhausting the account's budget for unknown clients
    for i in range(6):
        await attempt(GraphQLClient(http), email, f"guess {i}")

    # then unknown clients are throttled, even with the right password (the owner on a new device too)
    assert (await attempt(GraphQLClient(http), email, PASSWORD))["__typename"] == "RateLimitedError"
    assert (await attempt(home, email, PASSWORD))["__typename"] == "RateLimitedError"

    # and the owner's known device still signs in
    assert (await attempt(home, email, PASSWORD, device))["__typename"] == "SessionCreated"


async def test_one_address_gets_a_tight_budget_per_account_and_others_keep_theirs(limited, mailbox):
    _, http = limited
    # given an active customer
    email = unique_email("tight")
    await active_customer(GraphQLClient(http), mailbox, email)
    attacker = GraphQLClient(http)

    # when one address fails three times for that account
    for i in range(3):
        assert (await attempt(attacker, email, f"guess {i}"))["__typename"] == "InvalidCredentialsError"

    # then that address is throttled for it, even with the right password
    assert (await attempt(attacker, email, PASSWORD))["__typename"] == "RateLimitedError"

    # and another address is not: the account's softer budget still has room
    assert (await attempt(GraphQLClient(http), email, PASSWORD))["__typename"] == "SessionCreated"


async def test_a_known_device_has_its_own_budget(limited, mailbox):
    _, http = limited
    # given an owner with a device token, and a second device that signed in too
    email, home, device = await owner_with_device(http, mailbox, "device-budget")
    laptop = GraphQLClient(http)
    other_device = (await attempt(laptop, email, PASSWORD))["deviceToken"]

    # when the first device fails three times, then tries again
    for i in range(3):
        assert (await attempt(home, email, f"typo {i}", device))["__typename"] == "InvalidCredentialsError"
    throttled = await attempt(home, email, PASSWORD, device)

    # then that device is throttled, but neither the other device nor unknown clients lost anything
    assert throttled["__typename"] == "RateLimitedError" and throttled["retryAfterSeconds"] > 0
    assert (await attempt(laptop, email, PASSWORD, other_device))["__typename"] == "SessionCreated"
    assert (await attempt(GraphQLClient(http), email, PASSWORD))["__typename"] == "SessionCreated"


async def test_a_device_token_of_another_account_or_a_forged_one_buys_nothing(limited, mailbox):
    _, http = limited
    # given two owners with device tokens, and the second one's budget for unknown clients exhausted
    _, _, first_device = await owner_with_device(http, mailbox, "first")
    second, home, second_device = await owner_with_device(http, mailbox, "second")
    for i in range(6):
        await attempt(GraphQLClient(http), second, f"guess {i}")
    forged = second_device[:-4] + ("0000" if not second_device.endswith("0000") else "1111")

    # when the second account is tried with the first account's device token, or a forged one
    borrowed = await attempt(home, second, PASSWORD, first_device)
    tampered = await attempt(home, second, PASSWORD, forged)

    # then both count as unknown clients: throttled; the genuine token still works
    assert borrowed["__typename"] == "RateLimitedError"
    assert tampered["__typename"] == "RateLimitedError"
    assert (await attempt(home, second, PASSWORD, second_device))["__typename"] == "SessionCreated"


async def test_a_password_reset_stops_trusting_earlier_device_tokens(limited, mailbox):
    _, http = limited
    # given an owner with a device token
    email, home, device = await owner_with_device(http, mailbox, "reset-device")

    # when the password is reset, the owner signs in on another device, and the account is then attacked
    token = await reset_token(home, mailbox, email)
    assert_no_errors(await home(RESET, reset_input(token)))
    phone = GraphQLClient(http)
    new_device = (await attempt(phone, email, NEW_PASSWORD))["deviceToken"]
    for i in range(6):
        await attempt(GraphQLClient(http), email, f"guess {i}")

    # then the old device token is just an unknown client, while the token from the sign-in since the reset works
    assert (await attempt(home, email, NEW_PASSWORD, device))["__typename"] == "RateLimitedError"
    assert (await attempt(phone, email, NEW_PASSWORD, new_device))["__typename"] == "SessionCreated"


async def test_a_known_device_keeps_an_admin_signed_in_through_an_attack(limited):
    app, http = limited
    from resolvers.admins import create_admin
    from resolvers.context import RequestMeta

    # given an admin who signed in before from their device
    email = unique_email("admin-lockout")
    ctx = await app.state.runtime.context(client_id=None, principal=None, request=RequestMeta())
    await create_admin(ctx, email, ADMIN_PASSWORD, "owner")
    desk = GraphQLClient(http)
    device = (await admin_attempt(desk, email, ADMIN_PASSWORD))["deviceToken"]

    # when the admin email is attacked from six addresses
    for i in range(6):
        await admin_attempt(GraphQLClient(http), email, f"guess {i}")

    # then unknown clients are throttled and the admin's device is not
    assert (await admin_attempt(GraphQLClient(http), email, ADMIN_PASSWORD))["__typename"] == "RateLimitedError"
    assert (await admin_attempt(desk, email, ADMIN_PASSWORD, device))["__typename"] == "SessionCreated"


REAUTHENTICATE = """
mutation Reauth($password: String!) {
  sessionReauthenticate(input: {password: $password}) { __typename ... on SessionReauthenticated { token } }
}
"""


async def test_an_attack_on_the_account_does_not_stop_its_owner_from_reauthenticating(limited, mailbox):
    _, http = limited
    # given an owner signed in on their device
    email, home, device = await owner_with_device(http, mailbox, "reauth-attack")
    session = (await attempt(home, email, PASSWORD, device))["token"]

    # when an attacker exhausts the account's budgets for unknown clients, from many addresses and from the
    # owner's own address
    for i in range(6):
        await attempt(GraphQLClient(http), email, f"guess {i}")
    for i in range(4):
        await attempt(GraphQLClient(http, ip=home.ip), email, f"guess {i}")

    # then the owner can still confirm a sensitive change from their session
    renewed = assert_no_errors(await home(REAUTHENTICATE, {"password": PASSWORD}, token=session))
    assert renewed["sessionReauthenticate"]["__typename"] == "SessionReauthenticated"


async def test_reauthentication_guesses_are_limited_per_session(limited, mailbox):
    _, http = limited
    # given a stolen session (the thief does not know the password)
    email, home, device = await owner_with_device(http, mailbox, "reauth-guess")
    session = (await attempt(home, email, PASSWORD, device))["token"]

    # when the thief guesses the password three times through re-authentication
    for i in range(3):
        wrong = assert_no_errors(await home(REAUTHENTICATE, {"password": f"guess {i}"}, token=session))
        assert wrong["sessionReauthenticate"]["__typename"] == "InvalidCredentialsError"

    # then that session is throttled, even with the right password
    throttled = assert_no_errors(await home(REAUTHENTICATE, {"password": PASSWORD}, token=session))
    assert throttled["sessionReauthenticate"]["__typename"] == "RateLimitedError"
