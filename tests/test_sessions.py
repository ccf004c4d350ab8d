"""Sessions: who may call what, signing out, idle and absolute expiry, and the session list."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.flows import ME, PASSWORD, SIGN_IN, SIGN_OUT, active_customer, admin_token, new_application, sign_in
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

ADMIN_ME = "query { adminMe { id email role } }"
CUSTOMERS = "query { customers(first: 5) { __typename } }"
CUSTOMER = 'query { customer(id: "someone") { id } }'
MY_SESSIONS = "query { me { sessions { id ipAddress userAgent current createdAt lastSeenAt expiresAt } } }"

ADMIN_FIELDS = [ADMIN_ME, CUSTOMERS, CUSTOMER]


@pytest.mark.parametrize("query", ADMIN_FIELDS, ids=["adminMe", "customers", "customer"])
async def test_a_customer_token_is_forbidden_on_admin_fields(gql, mailbox, query):
    # given a signed-in customer
    token = await active_customer(gql, mailbox, unique_email("nosy"))

    # when they ask an admin field
    result = await gql(query, token=token)

    # then they are forbidden, and get no data
    assert_denied(result, "FORBIDDEN")
    assert not any((result["data"] or {}).values())


@pytest.mark.parametrize("query", [ME, SIGN_OUT, *ADMIN_FIELDS],
                         ids=["me", "sessionEnd", "adminMe", "customers", "customer"])
async def test_without_a_token_every_protected_field_says_unauthenticated(gql, query):
    # given no token at all, and then a token nobody issued
    # when the field is asked
    anonymous = await gql(query)
    forged = await gql(query, token="gwc_" + "A" * 43)

    # then both are told to sign in
    assert_denied(anonymous, "UNAUTHENTICATED")
    assert_denied(forged, "UNAUTHENTICATED")


async def test_an_admin_token_is_forbidden_on_me(gql, runtime):
    # given a signed-in admin
    token = await admin_token(runtime, gql)

    # when they ask the customer's own field
    result = await gql(ME, token=token)

    # then they are forbidden
    assert_denied(result, "FORBIDDEN")


async def test_signing_out_ends_only_that_session(gql, mailbox):
    # given a customer signed in on two devices
    email = unique_email("two-devices")
    phone = await active_customer(gql, mailbox, email)
    laptop = (await sign_in(gql, email))["token"]

    # when they sign out on the phone
    ended = assert_no_errors(await gql(SIGN_OUT, token=phone))

    # then the phone's token is dead, twice over, and the laptop still works
    assert ended == {"sessionEnd": {"ended": True}}
    assert_denied(await gql(ME, token=phone), "UNAUTHENTICATED")
    assert_denied(await gql(SIGN_OUT, token=phone), "UNAUTHENTICATED")
    me = assert_no_errors(await gql(MY_SESSIONS, token=laptop))["me"]
    assert len(me["sessions"]) == 1 and me["sessions"][0]["current"] is True


async def test_an_unused_session_expires_after_24_idle_hours(gql, mailbox, clock):
    # given a signed-in customer
    token = await active_customer(gql, mailbox, unique_email("idle"))

    # when they come back after 23 hours, the session still works (and counts as activity)
    clock.advance(hours=23)
    assert_no_errors(await gql(ME, token=token))

    # and 23 hours after that it still works, because the idle clock restarted
    clock.advance(hours=23)
    assert_no_errors(await gql(ME, token=token))

    # when they then stay away for 25 hours
    clock.advance(hours=25)
    result = await gql(ME, token=token)

    # then the session has expired
    assert_denied(result, "UNAUTHENTICATED")


async def test_an_active_session_still_ends_after_7_days(gql, mailbox, clock):
    # given a customer who uses their session every 20 hours
    token = await active_customer(gql, mailbox, unique_email("absolute"))
    for _ in range(8):  # 160 hours: under 7 days
        clock.advance(hours=20)
        assert_no_errors(await gql(ME, token=token))

    # when 7 days have passed since sign-in (168 hours), even though they were never idle for long
    clock.advance(hours=9)
    result = await gql(ME, token=token)

    # then the session has ended
    assert_denied(result, "UNAUTHENTICATED")


async def test_session_list_shows_address_agent_and_which_one_is_current(http, mailbox, gql):
    # given a customer signed in from two places
    email = unique_email("list")
    await active_customer(gql, mailbox, email)
    office = GraphQLClient(http)
    home = GraphQLClient(http)
    credentials = {"input": {"identifier": email, "password": PASSWORD}}
    office_session = assert_no_errors(
        await office(SIGN_IN, credentials, headers={"user-agent": "OfficeBrowser/1.0"}))["sessionCreate"]
    home_session = assert_no_errors(
        await home(SIGN_IN, credentials, headers={"user-agent": "HomeBrowser/2.0"}))["sessionCreate"]

    # when they list their sessions from home
    sessions = assert_no_errors(await home(MY_SESSIONS, token=home_session["token"]))["me"]["sessions"]

    # then each session shows where it came from, and only the home one is current
    by_id = {s["id"]: s for s in sessions}
    assert len(sessions) == 3  # plus the one from active_customer
    assert by_id[home_session["session"]["id"]]["current"] is True
    assert by_id[home_session["session"]["id"]]["ipAddress"] == home.ip
    assert by_id[home_session["session"]["id"]]["userAgent"] == "HomeBrowser/2.0"
    assert by_id[office_session["session"]["id"]]["current"] is False
    assert by_id[office_session["session"]["id"]]["ipAddress"] == office.ip
    assert by_id[office_session["session"]["id"]]["userAgent"] == "OfficeBrowser/1.0"
    assert [s["current"] for s in sessions].count(True) == 1
    assert sessions == sorted(sessions, key=lambda s: s["createdAt"], reverse=True)


async def test_another_customer_cannot_see_my_sessions(gql, mailbox):
    # given two signed-in customers
    mine = await active_customer(gql, mailbox, unique_email("mine"))
    theirs = await active_customer(gql, mailbox, unique_email("theirs"))

    # when each lists their sessions
    my_ids = {s["id"] for s in assert_no_errors(await gql(MY_SESSIONS, token=mine))["me"]["sessions"]}
    their_ids = {s["id"] for s in assert_no_errors(await gql(MY_SESSIONS, token=theirs))["me"]["sessions"]}

    # then neither sees the other's
    assert len(my_ids) == len(their_ids) == 1
    assert not my_ids & their_ids


async def test_signing_out_ends_an_admin_session(gql, runtime):
    # given a signed-in admin
    token = await admin_token(runtime, gql)
    assert assert_no_errors(await gql(ADMIN_ME, token=token))["adminMe"]["role"] == "owner"

    # when they sign out
    assert assert_no_errors(await gql(SIGN_OUT, token=token)) == {"sessionEnd": {"ended": True}}

    # then the admin token no longer works
    assert_denied(await gql(ADMIN_ME, token=token), "UNAUTHENTICATED")


async def test_an_admin_session_expires_after_30_idle_minutes(gql, runtime, clock):
    # given a signed-in admin
    token = await admin_token(runtime, gql)

    # when they come back after 29 minutes it works; after another 31 idle minutes it does not
    clock.advance(minutes=29)
    assert_no_errors(await gql(ADMIN_ME, token=token))
    clock.advance(minutes=31)

    # then they must sign in again
    assert_denied(await gql(ADMIN_ME, token=token), "UNAUTHENTICATED")


async def test_a_policy_with_a_one_minute_idle_timeout_keeps_a_session_used_every_30_seconds(gql, mailbox, clock,
                                                                                           runtime):
    # given an application whose policy ends sessions after one idle minute (the touch interval setting is 60 s)
    _, client_id = await new_application(runtime, sessions={"idle_timeout_minutes": 1,
                                                            "absolute_lifetime_minutes": 60})
    headers = {"x-application-id": client_id}
    token = (await sign_in_with(gql, mailbox, headers))["token"]

    # when the customer uses it every 30 seconds for ten minutes
    for _ in range(20):
        clock.advance(seconds=30)
        assert_no_errors(await gql(ME, token=token, headers=headers))

    # then it is still alive; and once left alone for just over a minute, it has expired
    clock.advance(seconds=61)
    assert_denied(await gql(ME, token=token, headers=headers), "UNAUTHENTICATED")


async def test_a_policy_sets_the_absolute_lifetime_of_its_sessions(gql, mailbox, clock, runtime):
    # given an application whose policy ends every session after two hours
    _, client_id = await new_application(runtime, sessions={"absolute_lifetime_minutes": 120})
    headers = {"x-application-id": client_id}
    signed_in = await sign_in_with(gql, mailbox, headers)

    # then the session says so, and ends then however active it is
    expires = datetime.fromisoformat(signed_in["session"]["expiresAt"])
    assert timedelta(minutes=119) < expires - clock.now() <= timedelta(minutes=120)
    clock.advance(minutes=119)
    assert_no_errors(await gql(ME, token=signed_in["token"], headers=headers))
    clock.advance(minutes=2)
    assert_denied(await gql(ME, token=signed_in["token"], headers=headers), "UNAUTHENTICATED")


async def sign_in_with(gql, mailbox, headers) -> dict:
    email = unique_email("lifetime")
    await active_customer(gql, mailbox, email, headers=headers)
    result = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": PASSWORD}},
                                        headers=headers))
    return result["sessionCreate"]
