"""The whole customer journey over HTTP, with mail captured by a real SMTP server."""

from __future__ import annotations

from tests.flows import ACTIVATE, ME, PASSWORD, SIGN_OUT, activation_token, confirm_from_page, register, sign_in
from tests.support import assert_denied, assert_no_errors, hidden_fields, unique_email


async def test_register_activate_sign_in_me_sign_out(gql, mailbox):
    # given a newly registered customer
    email = unique_email("journey")
    accepted = await register(gql, email, givenName="Ada", familyName="Lovelace")
    assert accepted == {"__typename": "AccountRegisterAccepted", "requiresActivation": True}

    # when they could sign in before activating, they are told to activate
    early = await sign_in(gql, email)
    assert early["__typename"] == "AccountNotActivatedError"

    # when they follow the emailed activation link
    token = await activation_token(mailbox, email)
    activated = assert_no_errors(await gql(ACTIVATE, {"token": token}))
    assert activated["accountActivate"]["__typename"] == "AccountActivated"

    # then they can sign in and read their own account
    session = await sign_in(gql, email.upper())
    assert session["__typename"] == "SessionCreated"
    assert session["token"].startswith("gwc_") and len(session["token"]) >= 43
    me = assert_no_errors(await gql(ME, token=session["token"], headers={"user-agent": "journey-test/1.0"}))["me"]
    assert me["email"] == email and me["username"] == email
    assert me["emailVerified"] is True
    assert (me["givenName"], me["familyName"]) == ("Ada", "Lovelace")
    assert [s["current"] for s in me["sessions"]] == [True]
    assert me["sessions"][0]["id"] == session["session"]["id"]
    assert me["sessions"][0]["ipAddress"] == gql.ip

    # when they sign out
    ended = assert_no_errors(await gql(SIGN_OUT, token=session["token"]))
    assert ended == {"sessionEnd": {"ended": True}}

    # then the old token no longer works
    assert_denied(await gql(ME, token=session["token"]), "UNAUTHENTICATED")


async def test_activation_page_activates_from_the_emailed_link(gql, http, mailbox):
    # given a registered customer with an activation mail
    email = unique_email("page")
    await register(gql, email)
    mail = await mailbox.wait_for(email, "activate")
    assert mail.link("/activate").startswith("http://gateway.test/activate?token=")

    # when they open the link and press the confirm button
    page = await confirm_from_page(http, "/activate", mail.token("/activate"))

    # then the page confirms, and they can sign in
    assert page.status_code == 200 and "Your account is activated" in page.text
    assert "content-security-policy" in page.headers
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"

    # and opening it again (or after a mail scanner did) says the account is already active
    again = await http.get("/activate", params={"token": mail.token("/activate")})
    assert again.status_code == 200 and "already active" in again.text

    # while a made-up link is refused, with a way to ask for a new one
    bogus = await http.get("/activate", params={"token": "made-up"})
    assert bogus.status_code == 400 and "invalid or has expired" in bogus.text and 'action="/activate/resend"' in bogus.text


async def test_wrong_password_and_unknown_account_get_the_same_answer(gql, mailbox):
    email = unique_email("creds")
    await register(gql, email)
    await gql(ACTIVATE, {"token": await activation_token(mailbox, email)})

    wrong = await sign_in(gql, email, "not the password at all")
    unknown = await sign_in(gql, unique_email("nobody"), PASSWORD)

    assert wrong == unknown
    assert wrong["__typename"] == "InvalidCredentialsError"


async def test_activation_page_speaks_for_the_application_that_sent_the_link(gql, http, mailbox, runtime):
    from tests.flows import new_application

    # given a customer of another application, with a 30-minute activation lifetime
    _, client_id = await new_application(runtime, name="Acme Shop", activation_ttl_minutes=30)
    email = unique_email("acme")
    await register(gql, email, headers={"x-application-id": client_id})
    mail = await mailbox.wait_for(email, "activate")
    assert "expires in 30 minutes" in mail.text

    # when they open the link and confirm (a browser sends no application header; a forged one changes nothing)
    page = await http.get("/activate", params={"token": mail.token("/activate")},
                          headers={"x-application-id": "no-such-client"})
    done = await confirm_from_page(http, "/activate", mail.token("/activate"),
                                   headers={"x-application-id": "no-such-client"})

    # then both pages are that application's
    assert page.status_code == 200 and "Acme Shop" in page.text
    assert done.status_code == 200 and "Your account is activated" in done.text and "Acme Shop" in done.text


async def test_pages_never_fail_on_an_unknown_application_header(http):
    for path in ("/activate", "/reset-password"):
        response = await http.get(path, params={"token": "nope"}, headers={"x-application-id": "no-such-client"})
        assert response.status_code == 400 and "<h1" in response.text
    form = hidden_fields((await http.get("/activate", params={"token": "nope"})).text, "/activate/resend")
    resend = await http.post("/activate/resend", data={**form, "email": "someone@example.com", "client_id": "nope"},
                             headers={"x-application-id": "no-such-client"})
    assert resend.status_code == 200 and "emailed a new link" in resend.text
