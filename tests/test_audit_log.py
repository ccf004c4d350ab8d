"""The audit log: an event for each admin and key mutation, with actor, target, result, IP and user agent;
never secrets; append-only; paged by a stable cursor; and a customer's own security activity."""

from __future__ import annotations

import json

import pytest

from schema.root import build_schema
from stores.documents import AuditEventDocument
from tests.flows import PASSWORD, SIGN_IN, active_customer, admin_token
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email
from tests.test_admins import (
    ACCEPT,
    ADMIN_CREATE,
    ADMIN_ME,
    DISABLE,
    ENABLE,
    NEW_PASSWORD,
    RESET,
    RESET_REQUEST,
    ROLE_SET,
    new_admin,
    sign_in,
    signed_in_admin,
)
from tests.test_api_keys import CREATE as KEY_CREATE
from tests.test_api_keys import REVOKE as KEY_REVOKE

EVENTS = """
query Events($first: Int, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id action at result ipAddress userAgent requestId details
                          actor { kind id name } target { kind id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
ACTIVITY = """
query Activity($first: Int, $after: String) {
  me { securityActivity(first: $first, after: $after) {
    edges { cursor node { action at result ipAddress userAgent actorKind } } pageInfo { hasNextPage endCursor } } }
}
"""
CUSTOMER_ACTIVITY = """
query CustomerActivity($id: ID!) { customer(id: $id) { securityActivity { edges { node { action } } } } }
"""
ME_ID = "query { me { id } }"


async def events(gql: GraphQLClient, token: str, **filter_) -> list[dict]:
    page = assert_no_errors(await gql(EVENTS, {"first": 100, "filter": filter_}, token=token))["auditEvents"]
    return [edge["node"] for edge in page["edges"]]


async def test_each_admin_and_key_mutation_records_an_event_with_its_actor_and_target(gql, runtime, mailbox):
    # given a signed-in owner
    owner_id, _, owner = await signed_in_admin(runtime, gql)
    headers = {"user-agent": "audit-test/1.0"}

    # when they invite an admin who accepts, change its role, disable and enable it, it resets its
    # password by link, and the owner makes and revokes an API key
    email = unique_email("audited")
    invited = assert_no_errors(await gql(ADMIN_CREATE, {"input": {"email": email, "role": "viewer"}}, token=owner,
                                         headers=headers))["adminCreate"]["admin"]["id"]
    link = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")
    assert_no_errors(await gql(ACCEPT, {"input": {"token": link, "password": NEW_PASSWORD,
                                                  "confirmPassword": NEW_PASSWORD}}))
    assert_no_errors(await gql(ROLE_SET, {"input": {"id": invited, "role": "support"}}, token=owner, headers=headers))
    assert_no_errors(await gql(DISABLE, {"id": invited}, token=owner, headers=headers))
    assert_no_errors(await gql(ENABLE, {"id": invited}, token=owner, headers=headers))
    assert_no_errors(await gql(RESET_REQUEST, {"email": email}))
    reset = (await mailbox.wait_for(email, "reset your")).token("/admin/reset-password")
    assert_no_errors(await gql(RESET, {"input": {"token": reset, "newPassword": NEW_PASSWORD + "!",
                                                 "confirmPassword": NEW_PASSWORD + "!"}}))
    key = assert_no_errors(await gql(KEY_CREATE, {"input": {"name": "audited key", "permissions": ["audit:read"]}},
                                     token=owner, headers=headers))["apiKeyCreate"]["apiKey"]["id"]
    assert_no_errors(await gql(KEY_REVOKE, {"id": key}, token=owner, headers=headers))

    # then the log shows one event for each, newest first, with who, what, whom, from where and the result
    about_admin = await events(gql, owner, targetId=invited)
    assert [e["action"] for e in about_admin] == [
        "admin.password_reset", "admin.password_reset_requested", "admin.enabled", "admin.disabled",
        "admin.role_changed", "admin.invitation_accepted", "admin.invited"]
    by_owner = {e["action"]: e for e in about_admin if e["actor"]["id"] == owner_id}
    assert set(by_owner) == {"admin.invited", "admin.role_changed", "admin.disabled", "admin.enabled"}
    changed = by_owner["admin.role_changed"]
    assert changed["actor"] == {"kind": "admin", "id": owner_id, "name": None}
    assert changed["target"] == {"kind": "admin", "id": invited}
    assert changed["result"] == "SUCCESS" and changed["ipAddress"] == gql.ip
    assert changed["userAgent"] == "audit-test/1.0" and changed["requestId"]
    assert changed["details"] == {"role": "support", "previous_role": "viewer"}
    about_key = await events(gql, owner, targetId=key)
    assert [(e["action"], e["target"]["kind"]) for e in about_key] == [("api_key.revoked", "api_key"),
                                                                        ("api_key.created", "api_key")]


async def test_failures_are_recorded_as_failures(gql, runtime):
    # given an admin
    admin_id, email = await new_admin(runtime, "viewer")
    _, _, owner = await signed_in_admin(runtime, gql)

    # when someone signs in to it with a wrong password
    await sign_in(gql, email, "not the password at all")

    # then the log has a failed sign-in about that admin, by someone not signed in
    failed = await events(gql, owner, targetId=admin_id, action="admin.login_failed")
    assert len(failed) == 1 and failed[0]["result"] == "FAILURE" and failed[0]["actor"]["kind"] == "public"


async def test_an_api_key_shows_as_the_actor_by_id_and_name(gql, runtime):
    # given a key that may change email templates, and the default application's id
    _, _, owner = await signed_in_admin(runtime, gql)
    created = assert_no_errors(await gql(KEY_CREATE, {"input": {"name": "template robot",
                                                                "permissions": ["templates:write"]}},
                                         token=owner))["apiKeyCreate"]
    application = runtime.default_application.id

    # when the key resets a template
    reset = await gql("""mutation($app: ID!) { emailTemplateReset(input: {applicationId: $app, kind: "activation"}) {
                           __typename } }""", {"app": application}, token=created["key"])

    # then the event names the key (kind, id and name) as the actor, and carries no key
    assert_no_errors(reset)
    found = await events(gql, owner, actorId=created["apiKey"]["id"])
    assert [e["action"] for e in found] == ["template.reset"]
    assert found[0]["actor"] == {"kind": "api_key", "id": created["apiKey"]["id"], "name": "template robot"}
    assert found[0]["target"] == {"kind": "application", "id": application}


async def test_no_event_carries_a_password_token_or_key(gql, runtime, mailbox):
    # given flows that handle passwords, link tokens, session tokens and an API key
    _, _, owner = await signed_in_admin(runtime, gql)
    email = unique_email("secretless")
    assert_no_errors(await gql(ADMIN_CREATE, {"input": {"email": email, "role": "viewer"}}, token=owner))
    link = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")
    assert_no_errors(await gql(ACCEPT, {"input": {"token": link, "password": NEW_PASSWORD,
                                                  "confirmPassword": NEW_PASSWORD}}))
    session = (await sign_in(gql, email, NEW_PASSWORD))["token"]
    key = assert_no_errors(await gql(KEY_CREATE, {"input": {"name": "k", "permissions": ["audit:read"]}},
                                     token=owner))["apiKeyCreate"]["key"]

    # when every stored event is read as it is stored
    stored = json.dumps(await AuditEventDocument.get_pymongo_collection().find({}).to_list(), default=str)

    # then none of these secrets is in it
    for secret in (NEW_PASSWORD, link, session, owner, key):
        assert secret not in stored


async def test_the_log_is_append_only():
    # given the schema
    schema = build_schema()

    # when its mutations are listed
    mutations = [field.name for field in schema.get_type_by_name("Mutation").fields]

    # then none edits or deletes audit events
    assert not [name for name in mutations if "audit" in name.lower()]


async def test_pages_follow_a_stable_cursor_even_as_events_arrive(gql, runtime):
    # given an admin with seven role changes in the log
    _, _, owner = await signed_in_admin(runtime, gql)
    target, _ = await new_admin(runtime, "viewer")
    roles = ["support", "viewer"] * 4
    for role in roles[:7]:
        assert_no_errors(await gql(ROLE_SET, {"input": {"id": target, "role": role}}, token=owner))
    everything = await events(gql, owner, targetId=target)

    # when the owner pages through three at a time, and one more change lands after the first page
    seen, after, pages = [], None, 0
    while True:
        page = assert_no_errors(await gql(EVENTS, {"first": 3, "after": after, "filter": {"targetId": target}},
                                          token=owner))["auditEvents"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        pages += 1
        if pages == 1:
            assert_no_errors(await gql(ROLE_SET, {"input": {"id": target, "role": "viewer" if roles[6] == "support"
                                                            else "support"}}, token=owner))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # then every event that was there is seen once, newest first, and the late one is not slipped in
    assert seen == [e["id"] for e in everything] and len(seen) == 8  # created + 7 changes
    assert pages == 3
    times = [e["at"] for e in everything]
    assert times == sorted(times, reverse=True)


async def test_filters_by_action_actor_and_time(gql, runtime, clock):
    # given an admin whose role changed an hour ago and now
    owner_id, owner_email, _ = await signed_in_admin(runtime, gql)
    target, _ = await new_admin(runtime, "viewer")
    before = clock.now()
    owner = (await sign_in(gql, owner_email))["token"]
    assert_no_errors(await gql(ROLE_SET, {"input": {"id": target, "role": "support"}}, token=owner))
    clock.advance(hours=1)
    middle = clock.now()
    owner = (await sign_in(gql, owner_email))["token"]
    assert_no_errors(await gql(ROLE_SET, {"input": {"id": target, "role": "viewer"}}, token=owner))

    # when the log is filtered by action and target, by actor, and by a time window
    changes = await events(gql, owner, targetId=target, action="admin.role_changed")
    by_actor = await events(gql, owner, actorId=owner_id, action="admin.role_changed")
    earlier = await events(gql, owner, targetId=target, action="admin.role_changed",
                           **{"from": before.isoformat(), "to": middle.isoformat()})
    later = await events(gql, owner, targetId=target, **{"from": middle.isoformat()})

    # then each holds exactly the events that match
    assert [e["details"]["role"] for e in changes] == ["viewer", "support"]
    assert {e["target"]["id"] for e in by_actor} == {target} and len(by_actor) == 2
    assert [e["details"]["role"] for e in earlier] == ["support"]
    assert [e["action"] for e in later] == ["admin.role_changed"]


@pytest.mark.parametrize("variables", [
    {"first": 0}, {"first": 101}, {"first": 5, "after": "garbage"},
    {"first": 5, "after": "YTpub3RhbnVtYmVyOng="},  # "a:notanumber:x"
    {"first": 5, "filter": {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}},
    {"first": 5, "filter": {"action": "x" * 201}},
], ids=["first-0", "first-101", "after-garbage", "after-forged", "from-after-to", "action-long"])
async def test_bad_arguments_are_a_top_level_bad_user_input(gql, runtime, variables):
    # given an admin who may read the log
    _, _, owner = await signed_in_admin(runtime, gql, "viewer")

    # when they ask with a bad argument
    result = await gql(EVENTS, variables, token=owner)

    # then there is no page, and one BAD_USER_INPUT error
    assert result["data"] is None
    assert_denied(result, "BAD_USER_INPUT")


async def test_a_customer_sees_their_own_security_activity_and_nobody_elses(gql, mailbox, runtime):
    # given a customer who signed in after a failed attempt, and another customer
    email = unique_email("activity")
    token = await active_customer(gql, mailbox, email, headers={"user-agent": "Browser/1"})
    await gql(SIGN_IN, {"input": {"identifier": email, "password": "wrong " + PASSWORD}})
    other = await active_customer(gql, mailbox, unique_email("other"))

    # when each reads their security activity, one event a page
    mine = assert_no_errors(await gql(ACTIVITY, {"first": 10}, token=token))["me"]["securityActivity"]
    first = assert_no_errors(await gql(ACTIVITY, {"first": 1}, token=token))["me"]["securityActivity"]
    second = assert_no_errors(await gql(ACTIVITY, {"first": 1, "after": first["pageInfo"]["endCursor"]},
                                        token=token))["me"]["securityActivity"]
    theirs = assert_no_errors(await gql(ACTIVITY, {"first": 10}, token=other))["me"]["securityActivity"]

    # then the customer sees the failed attempt and the sign-in, newest first, and the other sees neither
    actions = [(e["node"]["action"], e["node"]["result"]) for e in mine["edges"]]
    assert actions[:2] == [("customer.login_failed", "FAILURE"), ("customer.login_succeeded", "SUCCESS")]
    assert ("customer.activated", "SUCCESS") in actions
    assert mine["edges"][0]["node"]["ipAddress"] == gql.ip
    assert [e["node"]["action"] for e in first["edges"] + second["edges"]] == [a for a, _ in actions[:2]]
    assert "customer.login_failed" not in [e["node"]["action"] for e in theirs["edges"]]
    assert len(theirs["edges"]) >= 1


async def test_security_events_carry_no_actor_ids_or_details():
    # given the schema
    schema = build_schema()

    # when the fields of a customer's security event are listed
    fields = {field.name for field in schema.get_type_by_name("SecurityEvent").fields}

    # then they are the customer-safe ones only
    assert fields == {"id", "action", "at", "result", "ip_address", "user_agent", "actor_kind"}


async def test_the_helpdesk_reads_a_customers_activity_without_staff_addresses_but_not_the_whole_log(
        gql, mailbox, runtime):
    # given a customer who signed in, whose sessions an owner then revoked from the console
    token = await active_customer(gql, mailbox, unique_email("watched"))
    customer_id = assert_no_errors(await gql(ME_ID, token=token))["me"]["id"]
    _, _, owner = await signed_in_admin(runtime, gql)
    revoke = "mutation($id: ID!) { customerSessionsRevoke(id: $id) { __typename } }"
    assert_no_errors(await gql(revoke, {"id": customer_id}, token=owner))
    helpdesk = await admin_token(runtime, gql, "support")
    detailed = CUSTOMER_ACTIVITY.replace("{ action }", "{ action actorKind ipAddress }")

    # when the helpdesk reads the customer's security activity, and the whole audit log
    activity = await gql(detailed, {"id": customer_id}, token=helpdesk)
    log = await gql(EVENTS, {"first": 1}, token=helpdesk)

    # then it sees the customer's sign-in with its address and the owner's action without the owner's,
    # and the whole log (other admins' actions) is refused
    events = [e["node"] for e in assert_no_errors(activity)["customer"]["securityActivity"]["edges"]]
    signed_in = next(e for e in events if e["action"] == "customer.login_succeeded")
    by_owner = next(e for e in events if e["actorKind"] == "admin")
    assert signed_in["ipAddress"] == gql.ip
    assert by_owner["ipAddress"] is None
    assert_denied(log, "FORBIDDEN")

    # and the refusal is in the audit log, for those who may read it
    denied = assert_no_errors(await gql(EVENTS, {"first": 5, "filter": {"action": "admin.permission_denied"}},
                                        token=owner))["auditEvents"]["edges"]
    assert denied[0]["node"]["details"] == {"field": "Query.auditEvents", "permission": "audit:read"}


async def test_audit_events_need_audit_read(gql, mailbox, runtime):
    # given a customer token, and no token
    customer = await active_customer(gql, mailbox, unique_email("nosy"))

    # when each asks for the log
    as_customer = await gql(EVENTS, {"first": 1}, token=customer)
    anonymous = await gql(EVENTS, {"first": 1})

    # then both are refused
    assert_denied(as_customer, "FORBIDDEN")
    assert_denied(anonymous, "UNAUTHENTICATED")
    assert_no_errors(await gql(ADMIN_ME, token=(await signed_in_admin(runtime, gql, "support"))[2]))
