"""Registration and activation-resend: the same answer for every email, mail only to the right people,
and one account per email even under concurrent registrations."""

from __future__ import annotations

import asyncio

from resolvers.identifiers import normalize_identifier
from stores.documents import AuditEventDocument, CustomerDocument
from tests.flows import ACTIVATE, PASSWORD, REGISTER, activation_token, active_customer, admin_token, register, sign_in
from tests.support import assert_no_errors, unique_email

RESEND = """
mutation Resend($email: String!) {
  accountActivationResend(email: $email) {
    __typename
    ... on AccountActivationResent { accepted }
    ... on Error { code message field }
  }
}
"""

SEARCH = """
query Search($search: String!) {
  customers(first: 100, search: $search) { ... on CustomerConnection { edges { node { id email status } } } }
}
"""


def register_input(email: str, password: str = PASSWORD) -> dict:
    return {"input": {"email": email, "password": password}}


async def stored_accounts(email: str) -> int:
    return await CustomerDocument.get_pymongo_collection().count_documents({"email_norm": normalize_identifier(email)})


async def test_registering_a_taken_email_answers_byte_for_byte_like_a_fresh_one(gql, mailbox, runtime):
    # given an active customer
    taken = unique_email("taken")
    await active_customer(gql, mailbox, taken)

    # when someone registers with their email (in another case), and someone else with a fresh email
    again = await gql.post(REGISTER, register_input(taken.upper()))
    fresh = await gql.post(REGISTER, register_input(unique_email("fresh")))

    # then both HTTP answers are the same bytes
    assert again.status_code == fresh.status_code == 200
    assert again.content == fresh.content
    assert again.json()["data"]["accountRegister"]["__typename"] == "AccountRegisterAccepted"

    # and the owner is told by email, without any activation link, and still has one account
    notice = await mailbox.wait_for(taken, "someone tried to register")
    assert "/activate?token=" not in notice.text and "/activate?token=" not in notice.html
    assert "sign in as" in notice.text
    await runtime.drain()
    assert len(mailbox.to(taken)) == 2  # the first activation mail and this notice
    assert await stored_accounts(taken) == 1


async def test_registering_a_pending_email_again_answers_alike_and_keeps_the_first_password(gql, mailbox, runtime):
    # given a registered customer who has not activated yet
    email = unique_email("pending-again")
    first = await gql.post(REGISTER, register_input(email))

    # when someone registers the same email with another password
    second = await gql.post(REGISTER, register_input(email, "a different long passphrase"))

    # then the answer is the same, and the owner is told
    assert first.content == second.content
    await mailbox.wait_for(email, "someone tried to register")

    # and activating with the emailed link keeps the first password
    await gql(ACTIVATE, {"token": await activation_token(mailbox, email)})
    assert (await sign_in(gql, email, "a different long passphrase"))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_activation_resend_answers_alike_and_only_a_pending_account_gets_a_new_link(gql, mailbox, runtime):
    # given a pending customer, an active customer and an email nobody registered
    pending = unique_email("resend-pending")
    await register(gql, pending)
    old_token = await activation_token(mailbox, pending)
    active = unique_email("resend-active")
    await active_customer(gql, mailbox, active)
    unknown = unique_email("resend-unknown")

    # when each asks for a new activation link
    answers = [await gql.post(RESEND, {"email": email}) for email in (pending, active, unknown)]
    await runtime.drain()

    # then the three HTTP answers are the same bytes
    assert answers[0].status_code == 200
    assert answers[0].content == answers[1].content == answers[2].content
    assert answers[0].json()["data"]["accountActivationResend"] == {
        "__typename": "AccountActivationResent", "accepted": True}

    # and only the pending customer gets a second activation mail
    second = await mailbox.wait_for(pending, "activate", count=2)
    assert len([m for m in mailbox.to(active) if "activate" in m.subject.lower()]) == 1
    assert mailbox.to(unknown) == []

    # and the new link supersedes the old one
    new_token = second.token("/activate")
    assert new_token != old_token
    stale = assert_no_errors(await gql(ACTIVATE, {"token": old_token}))["accountActivate"]
    assert stale["__typename"] == "InvalidTokenError"
    fresh = assert_no_errors(await gql(ACTIVATE, {"token": new_token}))["accountActivate"]
    assert fresh["__typename"] == "AccountActivated"

    # and the audit log says a link was re-sent to the pending account only
    stored = await CustomerDocument.find_one(CustomerDocument.email == pending)
    resent = await AuditEventDocument.get_pymongo_collection().find(
        {"type": "customer.activation_resent", "subject_id": stored.id}).to_list()
    assert [(e["actor_kind"], e["ip_address"]) for e in resent] == [("public", gql.ip)]


async def test_resend_with_a_differently_cased_email_reaches_the_pending_account(gql, mailbox, runtime):
    # given a pending customer
    email = unique_email("resend-case")
    await register(gql, email)
    await mailbox.wait_for(email, "activate")

    # when they ask again typing their email in capitals
    assert_no_errors(await gql(RESEND, {"email": email.upper()}))
    await runtime.drain()

    # then the new link goes to the address they registered
    assert (await mailbox.wait_for(email, "activate", count=2)).to == email


async def test_ten_concurrent_registrations_of_one_email_create_one_account(gql, mailbox, runtime):
    # given one email
    email = unique_email("race")

    # when ten registrations for it arrive at once
    answers = await asyncio.gather(*(gql.post(REGISTER, register_input(email)) for _ in range(10)))
    await runtime.drain()

    # then every answer is the same, and there is exactly one account and one activation mail
    assert {a.content for a in answers} == {answers[0].content}
    assert answers[0].json()["data"]["accountRegister"]["__typename"] == "AccountRegisterAccepted"
    assert await stored_accounts(email) == 1
    activation_mails = [m for m in mailbox.to(email) if "activate" in m.subject.lower()]
    assert len(activation_mails) == 1


async def test_ten_concurrent_registrations_differing_only_in_case_create_one_account(gql, mailbox, runtime):
    # given one email written ten ways
    email = unique_email("case-race")
    local, domain = email.split("@")
    variants = [email, email.upper(), local.upper() + "@" + domain, local + "@" + domain.upper(), email.title(),
                email.swapcase(), " " + email, email + " ", local.capitalize() + "@" + domain, email.upper().title()]

    # when all ten register at once
    answers = await asyncio.gather(*(gql.post(REGISTER, register_input(v)) for v in variants))
    await runtime.drain()

    # then all get the same answer, and an admin finds exactly one account
    assert {a.content for a in answers} == {answers[0].content}
    assert await stored_accounts(email) == 1
    admin = await admin_token(runtime, gql)
    found = assert_no_errors(await gql(SEARCH, {"search": email}, token=admin))["customers"]["edges"]
    assert len(found) == 1 and found[0]["node"]["status"] == "PENDING"
    assert normalize_identifier(found[0]["node"]["email"]) == normalize_identifier(email)
