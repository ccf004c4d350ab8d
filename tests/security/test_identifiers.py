"""Emails are real addresses and identifiers are visible (Hardening II, item 7).

An email address is refused when ``email-validator`` refuses its syntax (no DNS lookup) or when it holds
a character that renders as nothing (a default-ignorable code point), so two accounts can never look
identical in the admin list. A USERNAME-mode username with an invisible character is refused the same
way. Addresses that are NFKC-equal are one account.
"""

from __future__ import annotations

import uuid

import pytest

from tests.flows import ACTIVATE, ME, PASSWORD, REGISTER, new_application, sign_in
from tests.support import assert_no_errors

RESEND = """
mutation Resend($email: String!) {
  accountActivationResend(email: $email) {
    __typename ... on Error { code field } ... on InvalidInputError { fields { field code message } }
  }
}
"""

RESET_REQUEST = """
mutation Ask($email: String!) {
  passwordResetRequest(input: {email: $email}) {
    __typename ... on Error { code field } ... on InvalidInputError { fields { field code message } }
  }
}
"""

REMIND = """
mutation Remind($email: String!) {
  usernameReminderRequest(input: {email: $email}) {
    __typename ... on Error { code field } ... on InvalidInputError { fields { field code message } }
  }
}
"""

# Each refused address holds a unique tag, so whatever form a wrongly accepted one were stored in, it is found.
REFUSED_EMAILS = [
    pytest.param("{tag}..doe@example.com", id="two-dots-in-a-row"),
    pytest.param("{tag}.doe@example.com.", id="trailing-dot"),
    pytest.param("{tag}\u200bdoe@example.com", id="zero-width-space"),
    pytest.param("{tag}\u00addoe@example.com", id="soft-hyphen"),
    pytest.param("{tag}\u115fdoe@example.com", id="hangul-choseong-filler"),  # email-validator lets it through
    pytest.param("{tag}\u202edoe@example.com", id="bidi-right-to-left-override"),
    pytest.param("{tag}\u2800doe@example.com", id="braille-pattern-blank"),  # renders blank, not default-ignorable
]

# Invisible characters that are Unicode letters (category Lo), so a "letters, digits, dots" rule lets them in.
INVISIBLE_LETTERS = [
    pytest.param("\u115f", id="hangul-choseong-filler"),
    pytest.param("\u3164", id="hangul-filler"),
    pytest.param("\uffa0", id="halfwidth-hangul-filler"),
]


def new_tag() -> str:
    return f"id7{uuid.uuid4().hex[:10]}"


def assert_refused_on(result: dict, field: str) -> None:
    assert result["__typename"] == "InvalidInputError", result
    assert [(f["field"], f["code"]) for f in result["fields"]] == [(field, "INVALID")], result


async def nothing_stored_or_queued(tag: str) -> None:
    """No account holds the tag, and no mail to an address holding it waits in the outbox."""
    from stores.documents import CustomerDocument, OutboxDocument

    assert await CustomerDocument.get_pymongo_collection().find_one({"email_norm": {"$regex": tag}}) is None
    assert await OutboxDocument.get_pymongo_collection().find_one({"to": {"$regex": tag}}) is None


def fullwidth(text: str) -> str:
    """The fullwidth twin of ASCII text (what a CJK input method types): NFKC maps it back."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@pytest.mark.parametrize("template", REFUSED_EMAILS)
async def test_registration_refuses_an_address_that_is_not_real_or_not_visible(gql, mailbox, template):
    # given an address with a syntax error or a character that renders as nothing
    tag = new_tag()
    email = template.format(tag=tag)

    # when someone registers with it
    result = assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}}))["accountRegister"]

    # then the email field is refused, no account is stored and no mail is sent
    assert_refused_on(result, "email")
    await nothing_stored_or_queued(tag)
    assert mailbox.to(email) == []


@pytest.mark.parametrize("invisible", INVISIBLE_LETTERS)
async def test_a_username_with_an_invisible_character_is_refused(gql, mailbox, runtime, invisible):
    # given an application where customers choose a username
    _, client_id = await new_application(runtime, username_mode="USERNAME")
    tag = new_tag()
    email = f"{tag}@example.com"

    # when someone registers a username that holds an invisible character
    result = assert_no_errors(await gql(
        REGISTER, {"input": {"email": email, "password": PASSWORD, "username": f"kate{invisible}{tag}"}},
        headers={"x-application-id": client_id}))["accountRegister"]

    # then the username field is refused, and nothing is stored or sent
    assert_refused_on(result, "username")
    await nothing_stored_or_queued(tag)
    assert mailbox.to(email) == []


@pytest.mark.parametrize("mutation", ["accountActivationResend", "passwordResetRequest", "usernameReminderRequest"])
@pytest.mark.parametrize("template", REFUSED_EMAILS)
async def test_recovery_requests_refuse_the_same_addresses(gql, mailbox, runtime, app, mutation, template):
    # given an address registration refuses (the reminder exists only where usernames are chosen)
    query = {"accountActivationResend": RESEND, "passwordResetRequest": RESET_REQUEST,
             "usernameReminderRequest": REMIND}[mutation]
    headers = {}
    if mutation == "usernameReminderRequest":
        _, client_id = await new_application(runtime, username_mode="USERNAME")
        headers = {"x-application-id": client_id}
    tag = new_tag()
    email = template.format(tag=tag)

    # when it is sent to a mutation that mails an account by its address
    result = assert_no_errors(await gql(query, {"email": email}, headers=headers))[mutation]

    # then the email field is refused the same way, and no mail is sent
    assert_refused_on(result, "email")
    await app.state.runtime.drain()
    await nothing_stored_or_queued(tag)
    assert mailbox.to(email) == []


async def test_real_addresses_register_in_their_canonical_form_and_a_fullwidth_twin_is_the_same_account(
        gql, mailbox):
    from stores.documents import CustomerDocument

    # given a customer who registers with capitals, and another with an internationalised address typed
    # with a decomposed accent (NFD) on an internationalised domain
    tag = new_tag()
    capitals = f"Kate.Doe.{tag}@Example.COM"
    international = f"jose\u0301.{tag}@b\u00fccher.example"
    for email in (capitals, international):
        accepted = assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}}))
        assert accepted["accountRegister"]["__typename"] == "AccountRegisterAccepted", accepted

    # then each is an account at its canonical address (the local part as typed, in NFC; the domain
    # lower-cased), mailed there, which activates and signs in
    for typed, canonical in ((capitals, f"Kate.Doe.{tag}@example.com"),
                             (international, f"jos\u00e9.{tag}@b\u00fccher.example")):
        mail = await mailbox.wait_for(canonical, "activate")
        activated = assert_no_errors(await gql(ACTIVATE, {"token": mail.token("/activate")}))
        assert activated["accountActivate"]["__typename"] == "AccountActivated"
        session = await sign_in(gql, typed.lower())
        assert session["__typename"] == "SessionCreated", session
        assert assert_no_errors(await gql(ME, token=session["token"]))["me"]["email"] == canonical

    # when a fullwidth twin of the first address registers (NFKC maps it back to the same address)
    twin = f"{fullwidth(f'Kate.Doe.{tag}')}@{fullwidth('Example.COM')}"
    answer = assert_no_errors(await gql(REGISTER, {"input": {"email": twin, "password": PASSWORD}}))

    # then the answer is the same, no third account exists, and the owner is told of the attempt
    assert answer["accountRegister"]["__typename"] == "AccountRegisterAccepted", answer
    accounts = await CustomerDocument.get_pymongo_collection().find({"email_norm": {"$regex": tag}}).to_list()
    assert sorted(a["email"] for a in accounts) == sorted([f"Kate.Doe.{tag}@example.com",
                                                           f"jos\u00e9.{tag}@b\u00fccher.example"])
    await mailbox.wait_for(f"Kate.Doe.{tag}@example.com", "someone tried to register")
    assert mailbox.to(twin) == []


async def test_an_address_signs_in_in_the_spelling_it_was_registered_with(gql, mailbox):
    # given a customer who registered an internationalised domain in its ASCII (IDNA, "xn--") spelling
    tag = new_tag()
    typed = f"kate.{tag}@xn--bcher-kva.example"
    assert_no_errors(await gql(REGISTER, {"input": {"email": typed, "password": PASSWORD}}))
    mail = await mailbox.wait_for(f"kate.{tag}@b\u00fccher.example", "activate")
    assert_no_errors(await gql(ACTIVATE, {"token": mail.token("/activate")}))

    # when they sign in with what they typed, and with the Unicode spelling
    # then both are the same account
    for spelling in (typed, f"kate.{tag}@b\u00fccher.example", typed.upper()):
        assert (await sign_in(gql, spelling))["__typename"] == "SessionCreated", spelling
