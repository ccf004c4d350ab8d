"""Emailed sign-in links and codes, and passwordless accounts: registering without a password, the mailed
link confirmed on its page and exchanged for a session, the 6-digit code on another device, single use,
10 minutes, five wrong codes, the same answer and work for any address, MFA after the link."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pyotp

from stores import config
from tests.flows import ACTIVATE, PASSWORD, activation_token, active_customer, new_application, register, sign_in
from tests.support import GraphQLClient, assert_no_errors, hidden_fields, unique_email
from tests.test_round_trips import counted  # noqa: F401 - the fixture, a gateway whose commands are logged

FRONTEND = "https://app.example.com/signed-in"

REQUEST = """
mutation Request($input: EmailSignInRequestInput!) {
  emailSignInRequest(input: $input) {
    __typename
    ... on EmailSignInRequested { accepted }
    ... on Error { code }
    ... on InvalidInputError { fields { field code } }
  }
}
"""
VERIFY = """
mutation Verify($input: EmailSignInCodeVerifyInput!) {
  emailSignInCodeVerify(input: $input) {
    __typename ... on SessionCreated { token } ... on MfaRequired { factors } ... on Error { code field }
  }
}
"""
COMPLETE = """
mutation Complete($input: EmailSignInCompleteInput!) {
  emailSignInComplete(input: $input) { __typename ... on SessionCreated { token } ... on Error { code } }
}
"""
ME = "query { me { email security { canChangePassword } loginMethods { ... on LoginMethods { password } } } }"


async def passwordless_application(runtime, **policy) -> dict:
    """An application with a passwordless policy that allows emailed sign-in, redirecting to FRONTEND."""
    application_id, client_id = await new_application(runtime, passwordless=True,
                                                      email_sign_in={"enabled": True}, **policy)
    await config.update_application(application_id, {"redirect_urls": ["https://app.example.com/"]})
    runtime.forget_applications()
    return {"x-application-id": client_id}


async def passwordless_customer(gql: GraphQLClient, mailbox, headers: dict) -> str:
    """Register without a password and activate; returns the email."""
    email = unique_email("passwordless")
    accepted = await register(gql, email, password=None, headers=headers)
    assert accepted["__typename"] == "AccountRegisterAccepted", accepted
    activated = assert_no_errors(await gql(ACTIVATE, {"token": await activation_token(mailbox, email)}))
    assert activated["accountActivate"]["__typename"] == "AccountActivated"
    return email


def code_in(mail) -> str:
    return re.search(r"^\s+(\d{6})\s*$", mail.text, re.M).group(1)


async def test_a_passwordless_customer_signs_in_with_the_mailed_link(gql, http, mailbox, runtime):
    # given a passwordless application, and a customer who registered there without a password
    headers = await passwordless_application(runtime)
    email = await passwordless_customer(gql, mailbox, headers)

    # when they ask for a sign-in link, open it (as a mail scanner would, twice) and press its button
    requested = assert_no_errors(await gql(REQUEST, {"input": {"email": email, "redirectUrl": FRONTEND}},
                                           headers=headers))
    mail = await mailbox.wait_for(email, "sign-in link")
    link = mail.link("/sign-in/email")
    path, token = urlsplit(link).path, mail.token("/sign-in/email")
    await http.get(path, params={"token": token})
    page = await http.get(path, params={"token": token})
    confirmed = await http.post(path, data=hidden_fields(page.text, path))

    # then the answer said nothing, opening changed nothing, and the button sent the browser to the
    # application with a one-time grant that signs them in
    assert requested["emailSignInRequest"] == {"__typename": "EmailSignInRequested", "accepted": True}
    assert page.status_code == 200 and "Sign me in" in page.text
    assert confirmed.status_code == 303 and confirmed.headers["location"].startswith(FRONTEND + "?token=")
    grant = parse_qs(urlsplit(confirmed.headers["location"]).query)["token"][0]
    signed_in = assert_no_errors(await gql(COMPLETE, {"input": {"grant": grant}}, headers=headers))
    assert signed_in["emailSignInComplete"]["__typename"] == "SessionCreated"
    me = assert_no_errors(await gql(ME, token=signed_in["emailSignInComplete"]["token"], headers=headers))["me"]
    assert me == {"email": email, "security": {"canChangePassword": False}, "loginMethods": {"password": False}}

    # and the grant, the link and the mailed code are all spent
    again = assert_no_errors(await gql(COMPLETE, {"input": {"grant": grant}}, headers=headers))
    assert again["emailSignInComplete"]["__typename"] == "InvalidTokenError"
    assert (await http.get(path, params={"token": token})).status_code == 400
    code = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": code_in(mail)}}, headers=headers))
    assert code["emailSignInCodeVerify"]["__typename"] == "InvalidCredentialsError"


async def test_the_code_signs_in_on_the_device_that_asked_once(gql, mailbox, runtime):
    # given a passwordless customer who asked for a sign-in mail without a redirect URL
    headers = await passwordless_application(runtime)
    email = await passwordless_customer(gql, mailbox, headers)
    assert_no_errors(await gql(REQUEST, {"input": {"email": email}}, headers=headers))
    mail = await mailbox.wait_for(email, "sign-in link")

    # when they type the code (with spaces) on the device that asked, twice
    code = code_in(mail)
    first = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": f"{code[:3]} {code[3:]}"}},
                                       headers=headers))
    second = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": code}}, headers=headers))

    # then the mail had no link, the first signs in, and the code works once
    assert "/sign-in/email" not in mail.text
    assert first["emailSignInCodeVerify"]["__typename"] == "SessionCreated"
    assert second["emailSignInCodeVerify"]["__typename"] == "InvalidCredentialsError"


async def test_five_wrong_codes_end_it(gql, mailbox, runtime):
    # given a passwordless customer with a mailed code
    headers = await passwordless_application(runtime)
    email = await passwordless_customer(gql, mailbox, headers)
    assert_no_errors(await gql(REQUEST, {"input": {"email": email}}, headers=headers))
    code = code_in(await mailbox.wait_for(email, "sign-in link"))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    # when five wrong codes are tried, then the right one
    results = [assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": wrong}}, headers=headers))
               for _ in range(5)]
    right = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": code}}, headers=headers))

    # then each wrong one was refused, and the right one no longer works
    assert {r["emailSignInCodeVerify"]["__typename"] for r in results} == {"InvalidCredentialsError"}
    assert right["emailSignInCodeVerify"]["__typename"] == "InvalidCredentialsError"


async def test_the_link_and_code_expire_after_10_minutes(gql, http, mailbox, runtime, clock):
    # given a passwordless customer with a mailed link and code
    headers = await passwordless_application(runtime)
    email = await passwordless_customer(gql, mailbox, headers)
    assert_no_errors(await gql(REQUEST, {"input": {"email": email, "redirectUrl": FRONTEND}}, headers=headers))
    mail = await mailbox.wait_for(email, "sign-in link")

    # when 11 minutes pass
    clock.advance(minutes=11)

    # then neither works
    page = await http.get("/sign-in/email", params={"token": mail.token("/sign-in/email")})
    code = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": code_in(mail)}}, headers=headers))
    assert page.status_code == 400 and "invalid or has expired" in page.text
    assert code["emailSignInCodeVerify"]["__typename"] == "InvalidCredentialsError"


async def test_a_known_and_an_unknown_address_get_the_same_answer_and_work(counted, mailbox, monkeypatch):
    app, gql, log = counted
    # given a passwordless application with a customer, and a warmed-up gateway
    headers = await passwordless_application(app.state.runtime)
    known = await passwordless_customer(gql, mailbox, headers)
    assert_no_errors(await gql(REQUEST, {"input": {"email": unique_email("warm-up")}}, headers=headers))
    await app.state.runtime.drain()

    # when the known address and an unknown one ask, with the work after the answer held back
    async def answer(email: str) -> tuple[dict, list]:
        held = []
        monkeypatch.setattr(app.state.runtime, "spawn", held.append)
        log.commands.clear()
        result = assert_no_errors(await gql(REQUEST, {"input": {"email": email}}, headers=headers))
        commands = list(log.commands)
        monkeypatch.undo()
        for work in held:
            app.state.runtime.spawn(work)
        await app.state.runtime.drain()
        return result, commands

    unknown = unique_email("nobody")
    known_answer, known_work = await answer(known)
    unknown_answer, unknown_work = await answer(unknown)

    # then the answers and the database work before them are the same, and only the known address gets mail
    assert known_answer == unknown_answer
    assert known_work == unknown_work and ("insert", "jobs") in known_work
    await mailbox.wait_for(known, "sign-in link")
    assert mailbox.to(unknown) == []


async def test_mfa_still_applies_after_the_code(gql, mailbox, runtime):
    # given an application with emailed sign-in, and a customer with an authenticator app
    _, client_id = await new_application(runtime, email_sign_in={"enabled": True})
    headers = {"x-application-id": client_id}
    email = unique_email("email-mfa")
    token = await active_customer(gql, mailbox, email, headers=headers)
    enrolment = assert_no_errors(await gql("mutation { mfaTotpEnroll { ... on MfaTotpEnrollment { secret } } }",
                                           token=token, headers=headers))["mfaTotpEnroll"]
    confirm = "mutation($c: String!) { mfaTotpConfirm(input: {code: $c}) { __typename } }"
    assert_no_errors(await gql(confirm, {"c": pyotp.TOTP(enrolment["secret"]).now()}, token=token, headers=headers))

    # when they sign in with an emailed code
    assert_no_errors(await gql(REQUEST, {"input": {"email": email}}, headers=headers))
    code = code_in(await mailbox.wait_for(email, "sign-in link"))
    result = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": code}}, headers=headers))

    # then the second factor is still asked for
    assert result["emailSignInCodeVerify"]["__typename"] == "MfaRequired"
    assert "TOTP" in result["emailSignInCodeVerify"]["factors"]


async def test_registering_and_signing_in_follow_the_passwordless_policy(gql, mailbox, runtime):
    # given a passwordless application and a password application
    headers = await passwordless_application(runtime)

    # when someone registers on the passwordless one with a password, and on the other without one
    with_password = await register(gql, unique_email("pw"), headers=headers)
    without = await register(gql, unique_email("no-pw"), password=None)

    # then the first is told to leave the password out, the second to choose one
    assert [(f["field"], f["code"]) for f in with_password["fields"]] == [("password", "NOT_ALLOWED")]
    assert [(f["field"], f["code"]) for f in without["fields"]] == [("password", "REQUIRED")]

    # and a passwordless account cannot sign in with any password
    email = await passwordless_customer(gql, mailbox, headers)
    assert (await sign_in(gql, email, PASSWORD))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email, ""))["__typename"] == "InvalidInputError"


async def test_emailed_sign_in_is_off_unless_the_policy_allows_it(gql):
    # when someone asks on the default application, whose policy does not allow it
    result = assert_no_errors(await gql(REQUEST, {"input": {"email": unique_email()}}))

    # then it is disabled
    assert result["emailSignInRequest"]["__typename"] == "FeatureDisabledError"


async def test_the_link_only_goes_to_the_applications_redirect_urls(gql, runtime):
    # given a passwordless application that redirects only to app.example.com
    headers = await passwordless_application(runtime)

    # when a request names another site
    result = assert_no_errors(await gql(REQUEST, {"input": {"email": unique_email(),
                                                            "redirectUrl": "https://evil.example/x"}}, headers=headers))

    # then it is refused
    assert result["emailSignInRequest"]["fields"] == [{"field": "redirectUrl", "code": "NOT_ALLOWED"}]
