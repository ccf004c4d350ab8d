"""Email change: a verified link to the new address, under recent re-authentication; the old address is told."""

from __future__ import annotations

import asyncio

from stores import config
from stores.documents import AuditEventDocument
from tests.flows import (
    PASSWORD,
    SIGN_IN,
    active_customer,
    confirm_from_page,
    new_application,
    sign_in,
)
from tests.support import assert_denied, assert_no_errors, unique_email

REQUEST = """
mutation Request($email: String!) {
  emailChangeRequest(input: {newEmail: $email}) {
    __typename
    ... on EmailChangeRequested { accepted }
    ... on ReauthenticationRequiredError { maxAgeMinutes }
    ... on InvalidInputError { fields { field code } }
    ... on Error { code }
  }
}
"""

CONFIRM = """
mutation Confirm($token: String!) {
  emailChangeConfirm(token: $token) {
    __typename
    ... on EmailChanged { email }
    ... on InvalidInputError { fields { field code } }
    ... on Error { code }
  }
}
"""

REAUTHENTICATE = """
mutation Reauth($password: String!) {
  sessionReauthenticate(input: {password: $password}) { __typename ... on SessionReauthenticated { token } }
}
"""

RESET_REQUEST = "mutation Reset($email: String!) { passwordResetRequest(input: {email: $email}) { __typename } }"
RESET = """
mutation Reset($token: String!) {
  passwordReset(input: {token: $token, newPassword: "a brand new passphrase", confirmPassword: "a brand new passphrase"}) {
    __typename
  }
}
"""

ME = "query { me { email username profile { email } } }"


async def request(gql, token: str, new_email: str, **kwargs) -> dict:
    return assert_no_errors(await gql(REQUEST, {"email": new_email}, token=token, **kwargs))["emailChangeRequest"]


async def confirm(gql, token: str) -> dict:
    return assert_no_errors(await gql(CONFIRM, {"token": token}))["emailChangeConfirm"]


async def change_link(mailbox, address: str, count: int = 1) -> str:
    mail = await mailbox.wait_for(address, "confirm your new email", count=count)
    return mail.token("/email-change")


async def audit_types(customer_email: str, gql, token: str) -> list[str]:
    customer_id = assert_no_errors(await gql("query { me { id } }", token=token))["me"]["id"]
    found = await AuditEventDocument.get_pymongo_collection().find({"subject_id": customer_id}).to_list()
    return [event["type"] for event in found]


async def test_the_link_goes_to_the_new_address_and_confirming_it_switches_and_tells_the_old(gql, mailbox, runtime):
    # given a customer who signed in just now (a recent authentication)
    old, new = unique_email("old"), unique_email("new")
    token = await active_customer(gql, mailbox, old, givenName="Grace")

    # when they ask to change their email, and the link mailed to the new address is used
    requested = await request(gql, token, new)
    await runtime.drain()
    mail = await mailbox.wait_for(new, "confirm your new email")
    assert mailbox.to(old)[-1].subject != mail.subject  # nothing about the change went to the old address yet
    before = assert_no_errors(await gql(ME, token=token))["me"]
    confirmed = await confirm(gql, mail.token("/email-change"))
    await runtime.drain()

    # then the email (and the username, which is the email here) changed, visible at once in the session
    assert requested == {"__typename": "EmailChangeRequested", "accepted": True}
    assert before["email"] == old
    assert confirmed == {"__typename": "EmailChanged", "email": new}
    assert assert_no_errors(await gql(ME, token=token))["me"] == {"email": new, "username": new,
                                                                  "profile": {"email": new}}
    # and the link's mail carried no name (the new address is not verified), the old address was told
    assert "Grace" not in mail.text and "Grace" not in mail.html
    notice = await mailbox.wait_for(old, "email address was changed")
    assert "Grace" in notice.text and new.split("@")[1] in notice.text and new not in notice.text
    # and the new address signs in, the old one no longer does, and the change is in the audit log
    assert (await sign_in(gql, new))["__typename"] == "SessionCreated"
    refused = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": old, "password": PASSWORD}}))
    assert refused["sessionCreate"]["__typename"] == "InvalidCredentialsError"
    assert {"customer.email_change_requested", "customer.email_changed"} <= set(await audit_types(new, gql, token))


async def test_a_change_needs_a_recent_authentication(gql, mailbox, clock, runtime):
    # given a customer whose sign-in is older than the policy's ten minutes
    token = await active_customer(gql, mailbox, unique_email("stale"))
    clock.advance(minutes=11)
    new = unique_email("fresh")

    # when they ask for the change, then re-authenticate and ask again
    stale = await request(gql, token, new)
    fresh_token = assert_no_errors(await gql(REAUTHENTICATE, {"password": PASSWORD},
                                             token=token))["sessionReauthenticate"]["token"]
    fresh = await request(gql, fresh_token, new)
    await runtime.drain()

    # then the first is refused with the age required, the second accepted and a link sent
    assert stale == {"__typename": "ReauthenticationRequiredError", "code": "REAUTHENTICATION_REQUIRED",
                     "maxAgeMinutes": 10}
    assert fresh["__typename"] == "EmailChangeRequested"
    assert await change_link(mailbox, new)


async def test_a_taken_address_gets_the_same_answer_no_mail_and_revokes_the_pending_link(gql, mailbox, runtime):
    # given a customer with a pending link to a free address, and an address another account holds
    token = await active_customer(gql, mailbox, unique_email("asker"))
    free, owner = unique_email("free"), unique_email("owner")
    await active_customer(gql, mailbox, owner)
    await request(gql, token, free)
    await runtime.drain()
    pending = await change_link(mailbox, free)
    owner_mail = len(mailbox.to(owner))

    # when they ask for the taken address
    taken = await request(gql, token, owner)
    await runtime.drain()

    # then the answer is the one a free address gets, the owner receives nothing, and the earlier link
    # stopped working, as it would have after a request for a free address
    assert taken == {"__typename": "EmailChangeRequested", "accepted": True}
    assert len(mailbox.to(owner)) == owner_mail
    assert (await confirm(gql, pending))["__typename"] == "InvalidTokenError"


async def test_two_accounts_confirming_one_address_one_wins(gql, mailbox, runtime):
    # given two customers who both asked for the same free address, each with a link
    wanted = unique_email("wanted")
    ada_email, bob_email = unique_email("ada"), unique_email("bob")
    ada = await active_customer(gql, mailbox, ada_email)
    bob = await active_customer(gql, mailbox, bob_email)
    await request(gql, ada, wanted)
    await request(gql, bob, wanted)
    await runtime.drain()
    first, second = await change_link(mailbox, wanted, 1), await change_link(mailbox, wanted, 2)

    # when both confirm at once
    results = await asyncio.gather(confirm(gql, first), confirm(gql, second))
    await runtime.drain()

    # then exactly one gets the address, the other a typed TAKEN, and only the winner's old address is told
    kinds = sorted(result["__typename"] for result in results)
    assert kinds == ["EmailChanged", "InvalidInputError"]
    loser = next(result for result in results if result["__typename"] == "InvalidInputError")
    assert loser["fields"] == [{"field": "newEmail", "code": "TAKEN"}]
    emails = {assert_no_errors(await gql(ME, token=t))["me"]["email"] for t in (ada, bob)}
    assert wanted in emails and len(emails & {ada_email, bob_email}) == 1
    told = [address for address in (ada_email, bob_email)
            if any("was changed" in m.subject for m in mailbox.to(address))]
    assert len(told) == 1 and told[0] not in emails


async def test_the_page_confirms_only_when_its_button_is_pressed(http, gql, mailbox, runtime):
    # given a customer with an email-change link
    old, new = unique_email("page"), unique_email("page-new")
    token = await active_customer(gql, mailbox, old)
    await request(gql, token, new)
    await runtime.drain()
    link = await change_link(mailbox, new)

    # when the link is opened (as a mail scanner would), then its button pressed, then opened again
    opened = await http.get("/email-change", params={"token": link})
    after_opening = assert_no_errors(await gql(ME, token=token))["me"]["email"]
    pressed = await confirm_from_page(http, "/email-change", link)
    again = await http.get("/email-change", params={"token": link})

    # then opening changed nothing, pressing switched the address, and the link now says it is done
    assert opened.status_code == 200 and "Use this address" in opened.text
    assert after_opening == old
    assert pressed.status_code == 200 and "Your email address is changed" in pressed.text
    assert assert_no_errors(await gql(ME, token=token))["me"]["email"] == new
    assert again.status_code == 200 and "already changed" in again.text


async def test_links_die_with_the_credentials_and_expire(gql, mailbox, runtime, clock):
    # given two customers with email-change links; one then resets their password
    reset_email, late_email = unique_email("reset"), unique_email("late")
    resetter = await active_customer(gql, mailbox, reset_email)
    late = await active_customer(gql, mailbox, late_email)
    reset_target, late_target = unique_email("rt"), unique_email("lt")
    await request(gql, resetter, reset_target)
    await request(gql, late, late_target)
    await runtime.drain()
    reset_link, late_link = await change_link(mailbox, reset_target), await change_link(mailbox, late_target)
    assert_no_errors(await gql(RESET_REQUEST, {"email": reset_email}))
    await runtime.drain()
    reset_token = (await mailbox.wait_for(reset_email, "reset")).token("/reset-password")
    assert assert_no_errors(await gql(RESET, {"token": reset_token}))["passwordReset"]["__typename"] == "PasswordResetDone"

    # when the first link is used after the password changed, and the second after the policy's 60 minutes
    after_reset = await confirm(gql, reset_link)
    clock.advance(minutes=61)
    expired = await confirm(gql, late_link)

    # then both are invalid
    assert after_reset["__typename"] == "InvalidTokenError"
    assert expired["__typename"] == "InvalidTokenError"


async def test_a_reset_link_mailed_to_the_old_address_dies_with_the_change(gql, mailbox, runtime):
    # given a customer who asked for a password reset (mailed to their current address)
    old, new = unique_email("revoke"), unique_email("revoke-new")
    token = await active_customer(gql, mailbox, old)
    assert_no_errors(await gql(RESET_REQUEST, {"email": old}))
    await runtime.drain()
    reset_token = (await mailbox.wait_for(old, "reset")).token("/reset-password")

    # when they change their email, and the reset link at the old address is used afterwards
    await request(gql, token, new)
    await runtime.drain()
    await confirm(gql, await change_link(mailbox, new))
    used = assert_no_errors(await gql(RESET, {"token": reset_token}))["passwordReset"]

    # then it no longer works: whoever still reads the old inbox cannot take the account back
    assert used["__typename"] == "InvalidTokenError"


async def test_request_refusals(gql, mailbox, runtime):
    # given a customer, one of an application with personal information off, and an admin-less caller
    email = unique_email("refuse")
    token = await active_customer(gql, mailbox, email)
    application_id, client_id = await new_application(runtime, name="No profile")
    headers = {"x-application-id": client_id}
    locked = await active_customer(gql, mailbox, unique_email("locked"), headers=headers)
    application = await config.get_application(application_id)
    await config.update_policy(application.policy_id, {"account_management.personal_information": False})
    runtime.forget_applications()

    # when they ask for their own address, a malformed one, with the area off, and with no session
    same = await request(gql, token, email.upper())
    malformed = await request(gql, token, "not an address")
    off = await request(gql, locked, unique_email("x"), headers=headers)
    anonymous = await gql(REQUEST, {"email": unique_email("y")})

    # then each gets its typed refusal, and nobody is mailed
    assert same == {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                    "fields": [{"field": "newEmail", "code": "UNCHANGED"}]}
    assert malformed == {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                         "fields": [{"field": "newEmail", "code": "INVALID"}]}
    assert off == {"__typename": "FeatureDisabledError", "code": "FEATURE_DISABLED"}
    assert_denied(anonymous, "UNAUTHENTICATED")


async def test_in_username_mode_the_username_stays(gql, mailbox, runtime):
    # given a customer of an application where customers choose a username
    _, client_id = await new_application(runtime, name="Usernames", username_mode="USERNAME")
    headers = {"x-application-id": client_id}
    username = f"grace{unique_email('u')[5:13]}"
    token = await active_customer(gql, mailbox, unique_email("umode"), headers=headers, username=username)
    new = unique_email("umode-new")

    # when they change their email
    await request(gql, token, new, headers=headers)
    await runtime.drain()
    await confirm(gql, await change_link(mailbox, new))

    # then the email changed and the username did not
    assert assert_no_errors(await gql(ME, token=token, headers=headers))["me"] == {
        "email": new, "username": username, "profile": {"email": new}}


async def test_a_link_changes_the_account_it_was_issued_for_whoever_sends_it(gql, mailbox, runtime):
    # given two customers; the first asked for a new address
    ada_email, bob_email, new = unique_email("for-ada"), unique_email("for-bob"), unique_email("for-new")
    ada = await active_customer(gql, mailbox, ada_email)
    bob = await active_customer(gql, mailbox, bob_email)
    await request(gql, ada, new)
    await runtime.drain()
    link = await change_link(mailbox, new)

    # when the second customer, signed in, sends the first one's link
    sent = assert_no_errors(await gql(CONFIRM, {"token": link}, token=bob))["emailChangeConfirm"]

    # then the account the link was issued for changed, and the sender's did not
    assert sent == {"__typename": "EmailChanged", "email": new}
    assert assert_no_errors(await gql(ME, token=ada))["me"]["email"] == new
    assert assert_no_errors(await gql(ME, token=bob))["me"]["email"] == bob_email
