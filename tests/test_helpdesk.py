"""Helpdesk work through the admin API: the customer listing (a Relay connection, stable under inserts),
and disabling, enabling, ending sessions, and sending reset and activation mails for a customer."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest

from stores import customers as customer_store
from stores.documents import AuditEventDocument
from tests.flows import (
    ACTIVATE,
    activation_token,
    active_customer,
    admin_token,
    isolated_application,
    register,
    sign_in,
    stored_customer,
)
from tests.support import assert_denied, assert_no_errors, unique_email

LIST = """
query List($first: Int!, $after: String, $search: String, $filter: CustomerFilter) {
  customers(first: $first, after: $after, search: $search, filter: $filter) {
    totalCount edges { cursor node { id email status createdAt } } pageInfo { hasNextPage endCursor }
  }
}
"""

ONE = "query One($id: ID!) { customer(id: $id) { id email status sessionCount mfaEnabled } }"
ME = "query { me { id status } }"

DISABLE = """mutation($id: ID!) { customerDisable(id: $id) {
  __typename ... on Customer { id status sessionCount } ... on Error { code field } } }"""
ENABLE = """mutation($id: ID!) { customerEnable(id: $id) {
  __typename ... on Customer { id status } ... on Error { code field } } }"""
REVOKE = """mutation($id: ID!) { customerSessionsRevoke(id: $id) {
  __typename ... on CustomerSessionsRevoked { customerId revokedCount } ... on Error { code field } } }"""
SEND_RESET = """mutation($id: ID!) { customerPasswordResetSend(id: $id) {
  __typename ... on CustomerMailSent { customerId } ... on Error { code field message } } }"""
RESEND_ACTIVATION = """mutation($id: ID!) { customerActivationResend(id: $id) {
  __typename ... on CustomerMailSent { customerId } ... on Error { code field message } } }"""
RESET = """mutation($token: String!) { passwordReset(input: {token: $token, newPassword: "a brand new passphrase",
  confirmPassword: "a brand new passphrase"}) { __typename } }"""


async def customer_id_of(gql, token: str) -> str:
    return assert_no_errors(await gql(ME, token=token))["me"]["id"]


async def listing(gql, admin: str, headers: dict | None = None, **variables) -> dict:
    return assert_no_errors(await gql(LIST, {"first": 20, **variables}, token=admin, headers=headers))["customers"]


# -- the listing -------------------------------------------------------------------------------------

async def test_paging_through_250_customers_with_inserts_in_between_sees_each_exactly_once(gql, runtime):
    # given 250 customers in an identity store of their own
    _, client_id, store_id = await isolated_application(runtime)
    headers = {"x-application-id": client_id}
    originals = [stored_customer(store_id, runtime.clock.now()) for _ in range(250)]
    for doc in originals:
        await customer_store.insert(doc)
    admin = await admin_token(runtime, gql)

    # when an admin pages through 37 at a time while customers keep being added
    seen, after, pages = [], None, 0
    while True:
        page = await listing(gql, admin, headers, first=37, after=after)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        pages += 1
        for _ in range(5):
            await customer_store.insert(stored_customer(store_id, runtime.clock.now()))
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]

    # then every original customer appears exactly once and nobody twice, in one stable (id) order
    assert len(seen) == len(set(seen))
    assert {doc.id for doc in originals} <= set(seen)
    assert seen == sorted(seen)
    assert pages >= -(-250 // 37)


async def test_search_matches_the_start_of_email_username_or_names_and_filters_narrow_it(gql, runtime):
    # given customers with names, in several states and at several times, in a store of their own
    _, client_id, store_id = await isolated_application(runtime)
    headers = {"x-application-id": client_id}
    now = runtime.clock.now()
    ada = stored_customer(store_id, now - timedelta(days=3), email="ada@example.com", given_name="Ada",
                          family_name="Lovelace")
    grace = stored_customer(store_id, now - timedelta(days=2), email="g.hopper@example.com", given_name="Grace",
                            family_name="Hopper", status="disabled")
    alan = stored_customer(store_id, now - timedelta(days=1), email="turing@example.com", given_name="Alan",
                           family_name="Turing", status="pending")
    for doc in (ada, grace, alan):
        await customer_store.insert(doc)
    admin = await admin_token(runtime, gql)

    def emails(page: dict) -> list[str]:
        return [edge["node"]["email"] for edge in page["edges"]]

    # when an admin searches and filters
    by_given = await listing(gql, admin, headers, search="GRA")
    by_family = await listing(gql, admin, headers, search="lovel")
    by_email = await listing(gql, admin, headers, search="tur")
    middle = await listing(gql, admin, headers, search="hopper")
    disabled = await listing(gql, admin, headers, filter={"status": "DISABLED"})
    window = await listing(gql, admin, headers, filter={"createdAfter": (now - timedelta(days=2, hours=1)).isoformat(),
                                                        "createdBefore": (now - timedelta(hours=1)).isoformat()})
    everyone = await listing(gql, admin, headers, first=2)

    # then names and emails match by prefix, filters narrow, with the total of all pages
    assert emails(by_given) == ["g.hopper@example.com"] and emails(by_family) == ["ada@example.com"]
    assert emails(by_email) == ["turing@example.com"]
    assert emails(middle) == ["g.hopper@example.com"]  # "hopper" starts the family name
    assert emails(disabled) == ["g.hopper@example.com"]
    assert sorted(emails(window)) == ["g.hopper@example.com", "turing@example.com"] and window["totalCount"] == 2
    by_id = sorted((ada, grace, alan), key=lambda doc: doc.id)
    assert emails(everyone) == [doc.email for doc in by_id[:2]] and everyone["totalCount"] == 3
    assert everyone["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize(("variables", "field"), [
    ({"first": 0}, "first"),
    ({"first": 101}, "first"),
    ({"after": "not-a-cursor"}, "after"),
    ({"after": base64.urlsafe_b64encode(b"c:someone").decode()}, "after"),
    ({"after": base64.urlsafe_b64encode(b"c1:" + b"x" * 65).decode()}, "after"),
    ({"search": "s" * 101}, "search"),
    ({"filter": {"createdAfter": "2030-01-02T00:00:00Z", "createdBefore": "2030-01-01T00:00:00Z"}},
     "filter.createdBefore"),
])
async def test_bad_arguments_are_a_top_level_bad_user_input(gql, runtime, variables, field):
    # given an admin
    admin = await admin_token(runtime, gql)

    # when they list customers with a bad argument
    result = await gql(LIST, {"first": 20, **variables}, token=admin)

    # then the answer is a top-level BAD_USER_INPUT error naming the argument
    assert_denied(result, "BAD_USER_INPUT")
    assert result["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


# -- customer mutations --------------------------------------------------------------------------------

async def test_a_disabled_customers_token_is_dead_until_an_admin_enables_the_account(gql, mailbox, runtime):
    # given a signed-in customer
    email = unique_email("disabled")
    token = await active_customer(gql, mailbox, email)
    customer_id = await customer_id_of(gql, token)
    admin = await admin_token(runtime, gql)

    # when an admin disables the account
    disabled = assert_no_errors(await gql(DISABLE, {"id": customer_id}, token=admin))["customerDisable"]

    # then the account is disabled with no session, the token is dead, and signing in is refused
    assert disabled == {"__typename": "Customer", "id": customer_id, "status": "DISABLED", "sessionCount": 0}
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"

    # and once enabled again, the customer signs in (the old token stays dead)
    enabled = assert_no_errors(await gql(ENABLE, {"id": customer_id}, token=admin))["customerEnable"]
    assert enabled == {"__typename": "Customer", "id": customer_id, "status": "ACTIVE"}
    fresh = await sign_in(gql, email)
    assert fresh["__typename"] == "SessionCreated"
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert assert_no_errors(await gql(ME, token=fresh["token"]))["me"] == {"id": customer_id, "status": "ACTIVE"}


async def test_enabling_a_never_activated_account_makes_it_pending_again(gql, mailbox, runtime):
    email = unique_email("pending-disabled")
    await register(gql, email)
    admin = await admin_token(runtime, gql)
    customer = (await customer_store.get_by_normalized_email("default", email))

    assert_no_errors(await gql(DISABLE, {"id": customer.id}, token=admin))
    enabled = assert_no_errors(await gql(ENABLE, {"id": customer.id}, token=admin))["customerEnable"]

    assert enabled["status"] == "PENDING"


async def test_revoking_sessions_ends_every_session_and_keeps_the_account(gql, mailbox, runtime):
    # given a customer signed in twice
    email = unique_email("revoked")
    first = await active_customer(gql, mailbox, email)
    second = (await sign_in(gql, email))["token"]
    customer_id = await customer_id_of(gql, first)
    admin = await admin_token(runtime, gql, role="support")

    # when a support admin revokes the sessions
    revoked = assert_no_errors(await gql(REVOKE, {"id": customer_id}, token=admin))["customerSessionsRevoke"]

    # then both tokens are dead, the account is still active, and the customer can sign in again
    assert revoked == {"__typename": "CustomerSessionsRevoked", "customerId": customer_id, "revokedCount": 2}
    assert_denied(await gql(ME, token=first), "UNAUTHENTICATED")
    assert_denied(await gql(ME, token=second), "UNAUTHENTICATED")
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_a_support_admin_sends_the_normal_reset_mail_and_it_works(gql, mailbox, runtime):
    # given an active customer and a support admin
    email = unique_email("helped")
    customer_id = await customer_id_of(gql, await active_customer(gql, mailbox, email))
    admin = await admin_token(runtime, gql, role="support")

    # when the admin sends the customer a password-reset mail
    sent = assert_no_errors(await gql(SEND_RESET, {"id": customer_id}, token=admin))["customerPasswordResetSend"]

    # then the customer receives the normal reset mail, and its link sets a new password
    assert sent == {"__typename": "CustomerMailSent", "customerId": customer_id}
    mail = await mailbox.wait_for(email, "reset your")
    reset = assert_no_errors(await gql(RESET, {"token": mail.token("/reset-password")}))["passwordReset"]
    assert reset == {"__typename": "PasswordResetDone"}
    assert (await sign_in(gql, email, "a brand new passphrase"))["__typename"] == "SessionCreated"


async def test_reset_and_activation_mails_go_only_to_accounts_in_the_right_state(gql, mailbox, runtime):
    # given a pending customer and an active one
    pending_email, active_email = unique_email("pending"), unique_email("active")
    await register(gql, pending_email)
    first_link = await activation_token(mailbox, pending_email)
    active_id = await customer_id_of(gql, await active_customer(gql, mailbox, active_email))
    pending_id = (await customer_store.get_by_normalized_email("default", pending_email)).id
    admin = await admin_token(runtime, gql, role="support")

    # when the admin sends each the wrong mail, and the right one to the pending customer
    reset_pending = assert_no_errors(await gql(SEND_RESET, {"id": pending_id}, token=admin))
    activation_active = assert_no_errors(await gql(RESEND_ACTIVATION, {"id": active_id}, token=admin))
    resent = assert_no_errors(await gql(RESEND_ACTIVATION, {"id": pending_id}, token=admin))

    # then the wrong ones are refused naming the id, and the new activation link replaces the first
    for refused in (reset_pending["customerPasswordResetSend"], activation_active["customerActivationResend"]):
        assert (refused["__typename"], refused["code"], refused["field"]) == ("InvalidInputError", "INVALID_INPUT",
                                                                               "id")
    assert resent["customerActivationResend"] == {"__typename": "CustomerMailSent", "customerId": pending_id}
    second_link = (await mailbox.wait_for(pending_email, "activate", count=2)).token("/activate")
    assert second_link != first_link
    stale = assert_no_errors(await gql(ACTIVATE, {"token": first_link}))["accountActivate"]["__typename"]
    fresh = assert_no_errors(await gql(ACTIVATE, {"token": second_link}))["accountActivate"]["__typename"]
    assert (stale, fresh) == ("InvalidTokenError", "AccountActivated")


async def test_a_customer_of_another_identity_store_is_answered_like_an_unknown_id(gql, mailbox, runtime):
    # given a customer in another application's identity store, and an admin working in the default application
    _, _, store_id = await isolated_application(runtime)
    other = stored_customer(store_id, runtime.clock.now())
    await customer_store.insert(other)
    admin = await admin_token(runtime, gql)

    # when the admin acts on that customer, and on an id nobody has
    answers = {}
    for name, mutation in (("customerDisable", DISABLE), ("customerEnable", ENABLE), ("customerSessionsRevoke", REVOKE),
                           ("customerPasswordResetSend", SEND_RESET),
                           ("customerActivationResend", RESEND_ACTIVATION)):
        foreign = assert_no_errors(await gql(mutation, {"id": other.id}, token=admin))[name]
        unknown = assert_no_errors(await gql(mutation, {"id": uuid.uuid4().hex}, token=admin))[name]
        answers[name] = (foreign, unknown)

    # then each answer is the same NotFoundError, and the customer is untouched
    for name, (foreign, unknown) in answers.items():
        assert foreign == unknown, name
        assert foreign["__typename"] == "NotFoundError" and foreign["field"] == "id", name
    assert assert_no_errors(await gql(ONE, {"id": other.id}, token=admin))["customer"] is None
    assert (await customer_store.get(other.id)).status == "active"


async def test_a_reset_mail_for_an_application_whose_policy_has_reset_off_is_feature_disabled(gql, mailbox, runtime):
    _, client_id, store_id = await isolated_application(runtime, password_reset={"enabled": False})
    customer = stored_customer(store_id, runtime.clock.now())
    await customer_store.insert(customer)
    admin = await admin_token(runtime, gql)

    result = assert_no_errors(await gql(SEND_RESET, {"id": customer.id}, token=admin,
                                        headers={"x-application-id": client_id}))["customerPasswordResetSend"]

    assert result["__typename"] == "FeatureDisabledError"


async def test_each_customer_mutation_records_an_audit_event_with_the_admin_as_actor(gql, mailbox, runtime):
    # given an active customer and a pending one
    active_id = await customer_id_of(gql, await active_customer(gql, mailbox, unique_email("audited")))
    pending_email = unique_email("audited-pending")
    await register(gql, pending_email)
    pending_id = (await customer_store.get_by_normalized_email("default", pending_email)).id
    admin = await admin_token(runtime, gql)
    admin_id = assert_no_errors(await gql("{ adminMe { id } }", token=admin))["adminMe"]["id"]

    # when an admin runs every customer mutation
    for mutation, customer_id in ((SEND_RESET, active_id), (REVOKE, active_id), (DISABLE, active_id),
                                  (ENABLE, active_id), (RESEND_ACTIVATION, pending_id)):
        assert "errors" not in await gql(mutation, {"id": customer_id}, token=admin)

    # then each left an audit event with the admin as actor
    events = await AuditEventDocument.get_pymongo_collection().find(
        {"subject_id": {"$in": [active_id, pending_id]}, "actor_kind": "admin"}).sort("at", 1).to_list()
    assert [e["type"] for e in events] == ["customer.password_reset_sent", "customer.sessions_revoked",
                                           "customer.disabled", "customer.enabled", "customer.activation_resent"]
    assert {e["actor_id"] for e in events} == {admin_id}


async def test_customer_mutations_need_their_permissions(gql, mailbox, runtime):
    # given a customer, a viewer, and a support admin
    token = await active_customer(gql, mailbox, unique_email("guarded"))
    customer_id = await customer_id_of(gql, token)
    viewer, support = await admin_token(runtime, gql, "viewer"), await admin_token(runtime, gql, "support")
    variables = {"id": customer_id}

    # then nobody signed in is UNAUTHENTICATED; a customer and a viewer are FORBIDDEN everywhere;
    # support may revoke sessions and send mails but not disable or enable (customers:write)
    for mutation in (DISABLE, ENABLE, REVOKE, SEND_RESET, RESEND_ACTIVATION):
        assert_denied(await gql(mutation, variables), "UNAUTHENTICATED")
        assert_denied(await gql(mutation, variables, token=token), "FORBIDDEN")
        assert_denied(await gql(mutation, variables, token=viewer), "FORBIDDEN")
    assert_denied(await gql(LIST, {"first": 5}, token=token), "FORBIDDEN")
    assert_no_errors(await gql(ONE, variables, token=viewer))
    assert_denied(await gql(DISABLE, variables, token=support), "FORBIDDEN")
    assert_denied(await gql(ENABLE, variables, token=support), "FORBIDDEN")
    assert "errors" not in await gql(SEND_RESET, variables, token=support)
    assert "errors" not in await gql(REVOKE, variables, token=support)


# -- changing and erasing a customer, resetting their MFA ---------------------------------------------

UPDATE = """mutation($id: ID!, $input: ProfileUpdateInput!) { customerUpdate(id: $id, input: $input) {
  __typename ... on Customer { id givenName profile { givenName phoneNumber } }
  ... on InvalidInputError { fields { field code } } ... on Error { code field } } }"""
DELETE = """mutation($id: ID!) { customerDelete(id: $id) {
  __typename ... on CustomerDeleted { customerId } ... on Error { code field } } }"""
MFA_RESET = """mutation($id: ID!) { customerMfaReset(id: $id) {
  __typename ... on CustomerMfaReset { customerId factorsRemoved } ... on Error { code field } } }"""
ME_NAME = "query { me { givenName profile { givenName } } }"


async def test_an_admin_updates_a_customers_profile_and_the_customer_sees_it_at_once(gql, mailbox, runtime):
    # given a signed-in customer and an admin
    token = await active_customer(gql, mailbox, unique_email("updated"))
    customer_id = await customer_id_of(gql, token)
    admin = await admin_token(runtime, gql)

    # when the admin changes their name and phone, then sends a bad phone number
    changed = assert_no_errors(await gql(UPDATE, {"id": customer_id, "input": {
        "givenName": "Grace", "phoneNumber": "+41 44 668 18 00"}}, token=admin))["customerUpdate"]
    refused = assert_no_errors(await gql(UPDATE, {"id": customer_id, "input": {
        "givenName": "Nope", "phoneNumber": "not a number"}}, token=admin))["customerUpdate"]

    # then the first is saved (and the customer's session shows it), the second changes nothing
    assert changed["profile"] == {"givenName": "Grace", "phoneNumber": "+41446681800"}
    assert refused["__typename"] == "InvalidInputError"
    assert {f["field"] for f in refused["fields"]} == {"phoneNumber"}
    assert assert_no_errors(await gql(ME_NAME, token=token))["me"] == {"givenName": "Grace",
                                                                       "profile": {"givenName": "Grace"}}


async def test_an_admin_erases_a_customer_who_then_is_gone_everywhere(gql, mailbox, runtime):
    # given a signed-in customer, and a support admin and an owner
    email = unique_email("erased")
    token = await active_customer(gql, mailbox, email)
    customer_id = await customer_id_of(gql, token)
    support, owner = await admin_token(runtime, gql, "support"), await admin_token(runtime, gql)

    # when support tries to erase them (not allowed), then the owner does
    assert_denied(await gql(DELETE, {"id": customer_id}, token=support), "FORBIDDEN")
    deleted = assert_no_errors(await gql(DELETE, {"id": customer_id}, token=owner))["customerDelete"]
    await runtime.drain()

    # then the account is gone, its token dead, and the address free to register again
    assert deleted == {"__typename": "CustomerDeleted", "customerId": customer_id}
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert await customer_store.get(customer_id) is None
    assert (await register(gql, email))["__typename"] == "AccountRegisterAccepted"
    again = assert_no_errors(await gql(DELETE, {"id": customer_id}, token=owner))["customerDelete"]
    assert again["__typename"] == "NotFoundError"


async def test_support_resets_a_customers_mfa_and_they_sign_in_with_their_password(gql, mailbox, runtime):
    from tests.flows import add_totp_factor

    # given a customer whose only second factor is an authenticator app they lost
    email = unique_email("lost-phone")
    token = await active_customer(gql, mailbox, email)
    customer_id = await customer_id_of(gql, token)
    await add_totp_factor(customer_id, runtime.clock.now())
    assert (await sign_in(gql, email))["__typename"] == "MfaRequired"
    support = await admin_token(runtime, gql, "support")

    # when support resets their MFA
    reset = assert_no_errors(await gql(MFA_RESET, {"id": customer_id}, token=support))["customerMfaReset"]

    # then the factor is gone, the password alone signs in again, and the customer is told by mail
    assert reset == {"__typename": "CustomerMfaReset", "customerId": customer_id, "factorsRemoved": 1}
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"
    notice = await mailbox.wait_for(email, "removed")
    assert "Every second factor" in notice.text


async def test_an_erasure_by_a_partner_key_names_the_key_as_its_actor(gql, mailbox, runtime):
    from tests.test_admins import signed_in_admin
    from tests.test_api_keys import create_key

    # given a customer, and a partner key that may erase customers
    token = await active_customer(gql, mailbox, unique_email("erased-by-key"))
    customer_id = await customer_id_of(gql, token)
    _, _, owner = await signed_in_admin(runtime, gql)
    key = await create_key(gql, owner, ["customers:read", "customers:delete"])

    # when the key erases them
    deleted = assert_no_errors(await gql(DELETE, {"id": customer_id}, token=key["key"]))["customerDelete"]
    await runtime.drain()

    # then the one event that stays says a partner key did it, not an admin
    assert deleted["__typename"] == "CustomerDeleted"
    event = await AuditEventDocument.get_pymongo_collection().find_one(
        {"type": "customer.deleted", "subject_id": customer_id})
    assert (event["actor_kind"], event["actor_id"]) == ("api_key", key["apiKey"]["id"])
