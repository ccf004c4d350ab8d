"""Account settings: login methods and linked identities (the social sign-in flow that creates links
comes later; these tests link identities through the store)."""

from __future__ import annotations

import asyncio
import uuid

from stores import config, customers
from stores.documents import AuditEventDocument, CustomerDocument
from tests.flows import PASSWORD, active_customer, add_totp_factor, admin_token, link_identity, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

LOGIN_METHODS = """
query { me { id loginMethods { __typename
  ... on LoginMethods { password mfaFactors { id type createdAt lastUsedAt }
                        linkedIdentities { id provider subject email linkedAt } }
  ... on Error { code message } } } }
"""

CUSTOMER_LOGIN_METHODS = """
query Customer($id: ID!) { customer(id: $id) { id loginMethods { __typename
  ... on LoginMethods { password mfaFactors { type } linkedIdentities { id provider } }
  ... on Error { code } } } }
"""

REMOVE = """
mutation Remove($id: ID!) { linkedIdentityRemove(id: $id) { __typename
  ... on LinkedIdentityRemoved { loginMethods { password linkedIdentities { id provider } } }
  ... on ReauthenticationRequiredError { maxAgeMinutes }
  ... on Error { code message field } } }
"""

REAUTHENTICATE = """
mutation Reauth($password: String!) { sessionReauthenticate(input: {password: $password}) {
  __typename ... on SessionReauthenticated { token } } }
"""


async def customer_id(gql: GraphQLClient, token: str, headers: dict | None = None) -> str:
    return assert_no_errors(await gql("{ me { id } }", token=token, headers=headers))["me"]["id"]


async def audit_events(subject: str, event_type: str) -> list[dict]:
    return await AuditEventDocument.get_pymongo_collection().find({"subject_id": subject, "type": event_type}).to_list()


async def make_passwordless(customer: str) -> None:
    await CustomerDocument.get_pymongo_collection().update_one({"_id": customer}, {"$set": {"password_hash": None}})


async def test_login_methods_list_the_password_each_factor_and_each_linked_identity(gql, mailbox, runtime):
    # given a customer with a password, a TOTP factor and a linked Google identity
    token = await active_customer(gql, mailbox, unique_email("methods"))
    me = await customer_id(gql, token)
    await add_totp_factor(me, runtime.clock.now(), "encrypted-totp-secret")
    google = await link_identity(me, "google", "kate@gmail.example")

    # when they look at their login methods
    result = assert_no_errors(await gql(LOGIN_METHODS, token=token))["me"]["loginMethods"]

    # then all three show, and the factor shows no secret
    assert result["__typename"] == "LoginMethods" and result["password"] is True
    assert [f["type"] for f in result["mfaFactors"]] == ["TOTP"]
    assert result["linkedIdentities"] == [{"id": google.id, "provider": "google", "subject": google.subject,
                                           "email": "kate@gmail.example", "linkedAt": "2023-11-14T22:13:20+00:00"}]
    assert "encrypted-totp-secret" not in str(result)


async def test_an_admin_reads_the_login_methods_of_the_customer_asked_about(gql, mailbox, runtime):
    # given a customer with a linked identity, and a support admin (customers:read)
    token = await active_customer(gql, mailbox, unique_email("adminview"))
    me = await customer_id(gql, token)
    await link_identity(me, "apple")
    admin = await admin_token(runtime, gql, "support")

    # when the admin reads that customer
    found = assert_no_errors(await gql(CUSTOMER_LOGIN_METHODS, {"id": me}, token=admin))["customer"]

    # then they see that customer's methods (not their own)
    assert found["id"] == me
    assert found["loginMethods"] == {"__typename": "LoginMethods", "password": True, "mfaFactors": [],
                                     "linkedIdentities": [found["loginMethods"]["linkedIdentities"][0]]}
    assert found["loginMethods"]["linkedIdentities"][0]["provider"] == "apple"


async def test_unlinking_needs_a_recent_authentication_then_works(gql, mailbox, clock):
    # given a customer with a linked identity who signed in 11 minutes ago
    token = await active_customer(gql, mailbox, unique_email("unlink"))
    me = await customer_id(gql, token)
    github = await link_identity(me, "github")
    clock.advance(minutes=11)

    # when they unlink it, re-authenticate, and unlink it again
    stale = assert_no_errors(await gql(REMOVE, {"id": github.id}, token=token))["linkedIdentityRemove"]
    fresh = assert_no_errors(await gql(REAUTHENTICATE, {"password": PASSWORD}, token=token))
    token = fresh["sessionReauthenticate"]["token"]
    done = assert_no_errors(await gql(REMOVE, {"id": github.id}, token=token))["linkedIdentityRemove"]

    # then the first asks for re-authentication, the second unlinks it, and it is gone from the account
    assert (stale["__typename"], stale["maxAgeMinutes"]) == ("ReauthenticationRequiredError", 10)
    assert done == {"__typename": "LinkedIdentityRemoved", "loginMethods": {"password": True, "linkedIdentities": []}}
    assert (await customers.get(me)).linked_identities == []
    events = await audit_events(me, "customer.linked_identity_removed")
    assert len(events) == 1 and events[0]["data"] == {"provider": "github"}


async def test_the_last_way_to_sign_in_cannot_be_unlinked(gql, mailbox):
    # given a passwordless customer whose only way in is one linked identity
    token = await active_customer(gql, mailbox, unique_email("lastway"))
    me = await customer_id(gql, token)
    only = await link_identity(me, "google")
    await make_passwordless(me)

    # when they unlink it
    refused = assert_no_errors(await gql(REMOVE, {"id": only.id}, token=token))["linkedIdentityRemove"]

    # then it is refused and stays linked
    assert refused["__typename"] == "LastLoginMethodError" and refused["code"] == "LAST_LOGIN_METHOD"
    assert [i.id for i in (await customers.get(me)).linked_identities] == [only.id]
    methods = assert_no_errors(await gql(LOGIN_METHODS, token=token))["me"]["loginMethods"]
    assert methods["password"] is False


async def test_two_concurrent_unlinks_of_the_last_two_ways_in_leave_one(gql, mailbox):
    # given a passwordless customer with two linked identities
    token = await active_customer(gql, mailbox, unique_email("race"))
    me = await customer_id(gql, token)
    first, second = await link_identity(me, "google"), await link_identity(me, "apple")
    await make_passwordless(me)

    # when both are unlinked at the same moment
    results = await asyncio.gather(gql(REMOVE, {"id": first.id}, token=token),
                                   gql(REMOVE, {"id": second.id}, token=token))

    # then one is unlinked and the other refused: one way in is left
    kinds = sorted(assert_no_errors(r)["linkedIdentityRemove"]["__typename"] for r in results)
    assert kinds == ["LastLoginMethodError", "LinkedIdentityRemoved"]
    assert len((await customers.get(me)).linked_identities) == 1


async def test_another_customers_linked_identity_is_not_found_like_an_unknown_one(gql, mailbox):
    # given two customers, the first with a linked identity
    victim_token = await active_customer(gql, mailbox, unique_email("victim"))
    victim = await customer_id(gql, victim_token)
    identity = await link_identity(victim, "google")
    attacker = await active_customer(gql, mailbox, unique_email("attacker"))

    # when the second tries to unlink the first's identity, and an id that does not exist
    foreign = assert_no_errors(await gql(REMOVE, {"id": identity.id}, token=attacker))["linkedIdentityRemove"]
    unknown = assert_no_errors(await gql(REMOVE, {"id": uuid.uuid4().hex}, token=attacker))["linkedIdentityRemove"]

    # then both get the same NotFoundError, and the first customer's identity stays
    assert foreign == unknown
    assert foreign["__typename"] == "NotFoundError" and foreign["field"] == "id"
    assert [i.id for i in (await customers.get(victim)).linked_identities] == [identity.id]


async def test_account_settings_switched_off_answer_feature_disabled(gql, mailbox, runtime):
    # given a customer of an application whose policy turns account settings off
    application_id, client_id = await new_application(runtime, account_management={"account_settings": False})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("settingsoff"), headers=headers)
    identity = await link_identity(await customer_id(gql, token, headers))

    # when they read their login methods and unlink an identity
    methods = assert_no_errors(await gql(LOGIN_METHODS, token=token, headers=headers))["me"]["loginMethods"]
    removed = assert_no_errors(await gql(REMOVE, {"id": identity.id}, token=token,
                                         headers=headers))["linkedIdentityRemove"]

    # then both say the feature is disabled
    assert methods["__typename"] == removed["__typename"] == "FeatureDisabledError"
    assert (await config.get_application(application_id)) is not None


async def test_login_methods_need_a_customer(gql, runtime):
    # given no token, and an admin token
    admin = await admin_token(runtime, gql)

    # when each asks for me.loginMethods and tries to unlink
    anonymous = await gql(LOGIN_METHODS)
    as_admin = await gql(REMOVE, {"id": "x"}, token=admin)

    # then the first is unauthenticated and the admin forbidden
    assert_denied(anonymous, "UNAUTHENTICATED")
    assert_denied(as_admin, "FORBIDDEN")
