"""The customer's sessions: device, browser and OS, ending one, ending all others, and no one else's."""

from __future__ import annotations

from tests.flows import ME, SIGN_IN, active_customer, admin_token, sign_in
from tests.support import assert_denied, assert_no_errors, unique_email

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"

SESSIONS = "query { me { sessions { id current device browser os userAgent ipAddress createdAt lastSeenAt } } }"

REVOKE = """
mutation Revoke($id: ID!) { sessionRevoke(id: $id) { __typename ... on SessionRevoked { id } ... on Error { code } } }
"""

REVOKE_OTHERS = "mutation { sessionRevokeOthers { __typename ... on SessionsRevoked { count } ... on Error { code } } }"

ADMIN_SESSIONS = "query Customer($id: ID!) { customer(id: $id) { sessions { device browser os current } } }"


async def signed_in_with(gql, email: str, user_agent: str) -> str:
    result = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": "correct horse battery staple"}},
                                        headers={"user-agent": user_agent}))
    return result["sessionCreate"]["token"]


async def test_sessions_show_device_browser_and_os(gql, mailbox):
    # given a customer signed in on an iPhone and on a Windows computer with Firefox
    email = unique_email("devices")
    await active_customer(gql, mailbox, email)
    phone = await signed_in_with(gql, email, IPHONE)
    await signed_in_with(gql, email, WINDOWS_FIREFOX)

    # when they list their sessions on the phone
    listed = assert_no_errors(await gql(SESSIONS, token=phone))["me"]["sessions"]

    # then each shows what it was signed in with, in words
    described = {(s["device"], s["browser"], s["os"]) for s in listed if s["userAgent"] in (IPHONE, WINDOWS_FIREFOX)}
    assert described == {("iPhone", "Mobile Safari 17", "iOS 17.1"), (None, "Firefox 121", "Windows 10")}
    assert [s["current"] for s in listed if s["userAgent"] == IPHONE] == [True]


async def test_an_unknown_user_agent_shows_nothing_rather_than_guessing(gql, mailbox):
    # given a customer signed in from a script
    email = unique_email("script")
    await active_customer(gql, mailbox, email)
    token = await signed_in_with(gql, email, "curl/8.5.0-custom-agent")

    # when they list their sessions
    listed = assert_no_errors(await gql(SESSIONS, token=token))["me"]["sessions"]

    # then device and OS are empty, the browser is named only as the agent says
    current = [s for s in listed if s["current"]][0]
    assert current["device"] is None and current["os"] is None


async def test_revoking_a_session_ends_that_session_only(gql, mailbox):
    # given a customer signed in on a laptop and a phone
    email = unique_email("revoke")
    laptop = await active_customer(gql, mailbox, email)
    phone = (await sign_in(gql, email))["token"]
    phone_id = [s["id"] for s in assert_no_errors(await gql(SESSIONS, token=phone))["me"]["sessions"] if s["current"]][0]

    # when they end the phone's session from the laptop
    revoked = assert_no_errors(await gql(REVOKE, {"id": phone_id}, token=laptop))["sessionRevoke"]

    # then the phone is signed out and the laptop is not
    assert revoked == {"__typename": "SessionRevoked", "id": phone_id}
    assert_denied(await gql(ME, token=phone), "UNAUTHENTICATED")
    assert [s["current"] for s in assert_no_errors(await gql(SESSIONS, token=laptop))["me"]["sessions"]] == [True]


async def test_another_customers_session_id_is_not_found_like_an_unknown_one(gql, mailbox):
    # given a customer with a session, and another customer
    victim = await active_customer(gql, mailbox, unique_email("victim"))
    victim_session = assert_no_errors(await gql(SESSIONS, token=victim))["me"]["sessions"][0]["id"]
    intruder = await active_customer(gql, mailbox, unique_email("intruder"))

    # when the other customer ends it by id, and an id that does not exist
    foreign = assert_no_errors(await gql(REVOKE, {"id": victim_session}, token=intruder))["sessionRevoke"]
    unknown = assert_no_errors(await gql(REVOKE, {"id": "f" * 32}, token=intruder))["sessionRevoke"]

    # then both answers are the same NotFoundError, and the session lives on
    assert foreign == unknown == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    assert assert_no_errors(await gql(ME, token=victim))["me"]["id"]


async def test_revoking_the_others_leaves_exactly_one_session(gql, mailbox):
    # given a customer signed in three times
    email = unique_email("others")
    first = await active_customer(gql, mailbox, email)
    second = (await sign_in(gql, email))["token"]
    third = (await sign_in(gql, email))["token"]

    # when they end every other session from the second
    revoked = assert_no_errors(await gql(REVOKE_OTHERS, token=second))["sessionRevokeOthers"]

    # then exactly one session is left, the second
    assert revoked == {"__typename": "SessionsRevoked", "count": 2}
    listed = assert_no_errors(await gql(SESSIONS, token=second))["me"]["sessions"]
    assert [s["current"] for s in listed] == [True]
    for token in (first, third):
        assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")


async def test_session_management_is_off_when_the_policy_turns_security_settings_off(gql, mailbox, runtime):
    # given a customer of an application whose policy has the security settings area off
    from tests.flows import new_application

    _, client_id = await new_application(runtime, account_management={"security_settings": False})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("area-off"), headers=headers)

    # when they end their other sessions there
    result = assert_no_errors(await gql(REVOKE_OTHERS, token=token, headers=headers))["sessionRevokeOthers"]

    # then the area is disabled
    assert result == {"__typename": "FeatureDisabledError", "code": "FEATURE_DISABLED"}


async def test_an_admin_with_sessions_read_sees_a_customers_devices(gql, mailbox, runtime):
    # given a customer signed in on an iPhone, and an admin
    email = unique_email("admin-devices")
    await active_customer(gql, mailbox, email)
    phone = await signed_in_with(gql, email, IPHONE)
    customer_id = assert_no_errors(await gql("query { me { id } }", token=phone))["me"]["id"]
    admin = await admin_token(runtime, gql)

    # when the admin lists the customer's sessions
    listed = assert_no_errors(await gql(ADMIN_SESSIONS, {"id": customer_id}, token=admin))["customer"]["sessions"]

    # then they see the devices, and none is the admin's own
    assert {"device": "iPhone", "browser": "Mobile Safari 17", "os": "iOS 17.1", "current": False} in listed
    assert not any(s["current"] for s in listed)


async def test_session_revocation_needs_a_customer(gql, runtime):
    # given no token, and an admin token
    admin = await admin_token(runtime, gql)

    # when either ends sessions
    # then they are told to sign in as a customer
    assert_denied(await gql(REVOKE_OTHERS), "UNAUTHENTICATED")
    assert_denied(await gql(REVOKE, {"id": "x"}, token=admin), "FORBIDDEN")


async def test_listing_sessions_reads_the_labels_stored_at_sign_in_and_parses_only_older_sessions(
        gql, mailbox, monkeypatch):
    # given a customer signed in with a browser never seen before, and a session stored before labels were
    # (the same kind of browser, its user agent equally new)
    import uuid

    import ua_parser

    from resolvers.sessions import describe_user_agent
    from stores.documents import SessionDocument

    email = unique_email("labels")
    await active_customer(gql, mailbox, email)
    fresh_agent = f"{WINDOWS_FIREFOX} Build/{uuid.uuid4().hex}"
    token = await signed_in_with(gql, email, fresh_agent)
    me = assert_no_errors(await gql("query { me { id } }", token=token))["me"]["id"]
    sessions = SessionDocument.get_pymongo_collection()
    older_agent = f"{IPHONE} Build/{uuid.uuid4().hex}"
    older = await sessions.find_one({"subject_id": me, "user_agent": fresh_agent})
    await sessions.insert_one({**older, "_id": uuid.uuid4().hex, "token_hash": uuid.uuid4().hex,
                               "user_agent": older_agent, "agent": None})
    parsed: list[str] = []
    real_parse = ua_parser.parse
    monkeypatch.setattr(ua_parser, "parse", lambda agent: parsed.append(agent) or real_parse(agent))
    describe_user_agent.cache_clear()  # as on an instance that did not answer the sign-in

    # when they list their sessions
    listed = assert_no_errors(await gql(SESSIONS, token=token))["me"]["sessions"]

    # then both are described, and only the older session's user agent was parsed for it
    described = {s["userAgent"]: (s["device"], s["browser"], s["os"]) for s in listed}
    assert described[fresh_agent] == (None, "Firefox 121", "Windows 10")
    assert described[older_agent] == ("iPhone", "Mobile Safari 17", "iOS 17.1")
    assert parsed == [older_agent]


async def test_a_sign_in_beyond_the_session_limit_ends_the_least_recently_active_session(settings, clock, mailbox):
    from tests.conftest import running_gateway
    from tests.support import GraphQLClient

    limited = settings.model_copy(update={"max_sessions_per_subject": 3})
    async with running_gateway(limited, clock) as (_, http):
        gql = GraphQLClient(http)
        # given a customer signed in three times, a second apart, with a limit of three sessions
        email = unique_email("limit")
        first = await active_customer(gql, mailbox, email)
        tokens = [first]
        for _ in range(2):
            clock.advance(seconds=1)
            tokens.append((await sign_in(gql, email))["token"])

        # when they sign in a fourth time
        clock.advance(seconds=1)
        fourth = (await sign_in(gql, email))["token"]

        # then the first session has ended, and the other three work
        assert_denied(await gql(ME, token=first), "UNAUTHENTICATED")
        for token in [*tokens[1:], fourth]:
            assert assert_no_errors(await gql(ME, token=token))["me"]["email"] == email
        listed = assert_no_errors(await gql(SESSIONS, token=fourth))["me"]["sessions"]
        assert len(listed) == 3
        # and the customer's security activity says why
        activity = assert_no_errors(await gql(
            "query { me { securityActivity(first: 5) { edges { node { action actorKind } } } } }", token=fourth))
        actions = [edge["node"] for edge in activity["me"]["securityActivity"]["edges"]]
        assert {"action": "customer.sessions_evicted", "actorKind": "system"} in actions
