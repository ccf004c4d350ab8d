"""Password reset and the forgotten-username reminder, end to end over HTTP with real SMTP."""

from __future__ import annotations

import asyncio

from tests.conftest import make_settings, running_gateway
from tests.flows import ME, PASSWORD, REGISTER, active_customer, new_application, register, sign_in
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

REQUEST = """
mutation Ask($email: String!) {
  passwordResetRequest(input: {email: $email}) { __typename ... on Error { code message field } }
}
"""

RESET = """
mutation Reset($input: PasswordResetInput!) {
  passwordReset(input: $input) {
    __typename
    ... on Error { code message field }
    ... on PasswordPolicyError { reasons }
  }
}
"""

REMIND = """
mutation Remind($email: String!) {
  usernameReminderRequest(input: {email: $email}) { __typename ... on Error { code message } }
}
"""

NEW_PASSWORD = "a brand new passphrase 42"


async def reset_token(gql, mailbox, email: str, count: int = 1, headers: dict | None = None) -> str:
    result = assert_no_errors(await gql(REQUEST, {"email": email}, headers=headers))
    assert result["passwordResetRequest"]["__typename"] == "PasswordResetRequested"
    mail = await mailbox.wait_for(email, "reset your", count=count)
    return mail.token("/reset-password")


def reset_input(token: str, new: str = NEW_PASSWORD, confirm: str | None = None) -> dict:
    return {"input": {"token": token, "newPassword": new, "confirmPassword": new if confirm is None else confirm}}


async def test_reset_round_trip_replaces_password_and_ends_sessions(gql, mailbox):
    # given a signed-in customer who forgot their password
    email = unique_email("reset")
    session = await active_customer(gql, mailbox, email)
    token = await reset_token(gql, mailbox, email)
    reset_mail = (await mailbox.wait_for(email, "reset your"))
    assert reset_mail.link("/reset-password").startswith("http://gateway.test/reset-password?token=")

    # when they type two different passwords, nothing changes
    mismatch = assert_no_errors(await gql(RESET, reset_input(token, confirm="something else entirely")))
    assert mismatch["passwordReset"]["__typename"] == "PasswordMismatchError"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"

    # when they reset with a matching new password
    done = assert_no_errors(await gql(RESET, reset_input(token)))
    assert done["passwordReset"] == {"__typename": "PasswordResetDone"}

    # then the old password fails, the new one works, old sessions are dead
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"
    assert_denied(await gql(ME, token=session), "UNAUTHENTICATED")

    # and they are told by email, without the password
    changed = await mailbox.wait_for(email, "was changed")
    assert NEW_PASSWORD not in changed.text and NEW_PASSWORD not in changed.html


async def test_weak_new_password_is_refused_and_keeps_the_link_usable(gql, mailbox):
    email = unique_email("weak")
    await active_customer(gql, mailbox, email)
    token = await reset_token(gql, mailbox, email)

    weak = assert_no_errors(await gql(RESET, reset_input(token, "password")))["passwordReset"]
    assert weak["__typename"] == "PasswordPolicyError" and weak["field"] == "newPassword"
    assert any(r.startswith("COMMON") for r in weak["reasons"])

    ok = assert_no_errors(await gql(RESET, reset_input(token)))["passwordReset"]
    assert ok["__typename"] == "PasswordResetDone"


async def test_expired_link_is_refused_with_request_a_new_one(gql, mailbox, clock):
    email = unique_email("expired")
    await active_customer(gql, mailbox, email)
    token = await reset_token(gql, mailbox, email)

    # when the default 60-minute lifetime has passed
    clock.advance(minutes=61)
    expired = assert_no_errors(await gql(RESET, reset_input(token)))["passwordReset"]

    # then the link is refused and the customer is told to request a new one
    assert expired["__typename"] == "InvalidTokenError"
    assert "request a new one" in expired["message"]
    clock.reset()
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_used_and_superseded_links_are_refused(gql, mailbox):
    email = unique_email("once")
    await active_customer(gql, mailbox, email)
    first = await reset_token(gql, mailbox, email)
    second = await reset_token(gql, mailbox, email, count=2)
    assert first != second

    superseded = assert_no_errors(await gql(RESET, reset_input(first)))["passwordReset"]
    assert superseded["__typename"] == "InvalidTokenError"

    assert assert_no_errors(await gql(RESET, reset_input(second)))["passwordReset"]["__typename"] == "PasswordResetDone"
    reused = assert_no_errors(await gql(RESET, reset_input(second, "yet another passphrase 7")))["passwordReset"]
    assert reused == superseded
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"


async def test_fifty_concurrent_resets_with_one_token_exactly_one_wins(gql, mailbox):
    email = unique_email("race")
    await active_customer(gql, mailbox, email)
    token = await reset_token(gql, mailbox, email)

    results = await asyncio.gather(*[
        gql(RESET, reset_input(token, f"concurrent passphrase {i:02d}")) for i in range(50)
    ])

    kinds = [assert_no_errors(r)["passwordReset"]["__typename"] for r in results]
    assert kinds.count("PasswordResetDone") == 1, kinds
    assert set(kinds) - {"PasswordResetDone"} <= {"InvalidTokenError", "RateLimitedError"}
    winner = kinds.index("PasswordResetDone")
    assert (await sign_in(gql, email, f"concurrent passphrase {winner:02d}"))["__typename"] == "SessionCreated"


async def test_known_and_unknown_emails_get_byte_identical_answers(gql, mailbox, runtime):
    known = unique_email("known")
    await active_customer(gql, mailbox, known)
    pending = unique_email("pending")
    await register(gql, pending)
    unknown = unique_email("unknown")

    bodies = [(await gql.post(REQUEST, {"email": e})).content for e in (known, unknown, pending)]

    assert bodies[0] == bodies[1] == bodies[2]
    await mailbox.wait_for(known, "reset your")
    await runtime.drain()
    assert mailbox.to(unknown) == []
    assert [m for m in mailbox.to(pending) if "reset" in m.subject.lower()] == []


async def test_over_the_rate_limit_the_answer_is_the_same_and_no_mail_is_sent(settings, clock, mailbox):
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "password_reset_email_attempts": 2})
    async with running_gateway(limited, clock) as (app, http):
        gql = GraphQLClient(http)
        email = unique_email("limited")
        await active_customer(gql, mailbox, email)

        bodies = [(await gql.post(REQUEST, {"email": email})).content for _ in range(4)]
        await app.state.runtime.drain()

        assert len(set(bodies)) == 1
        await mailbox.wait_for(email, "reset your", count=2)
        await asyncio.sleep(0.5)
        assert len([m for m in mailbox.to(email) if "reset your" in m.subject.lower()]) == 2


async def test_disabled_reset_answers_feature_disabled(gql, runtime):
    _, client_id = await new_application(runtime, password_reset_enabled=False)
    headers = {"x-application-id": client_id}

    known = assert_no_errors(await gql(REQUEST, {"email": unique_email()}, headers=headers))
    assert known["passwordResetRequest"]["__typename"] == "FeatureDisabledError"


async def test_username_mode_registration_and_reminder(gql, mailbox, runtime):
    # given an application whose policy uses usernames distinct from email
    _, client_id = await new_application(runtime, username_mode="USERNAME")
    headers = {"x-application-id": client_id}
    email = unique_email("named")

    # then registering without a username is refused, naming the field
    missing = assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}},
                                         headers=headers))["accountRegister"]
    assert missing["__typename"] == "InvalidInputError" and missing["fields"][0]["field"] == "username"

    # when they register with a username and activate
    username = "ada_" + email.split("-")[1][:8]
    await active_customer(gql, mailbox, email, headers=headers, username=username)
    # (sign-in by username works in this store too)
    assert (await sign_in(gql, username.upper()))["__typename"] == "SessionCreated"

    # and later forget it
    asked = assert_no_errors(await gql(REMIND, {"email": email}, headers=headers))
    assert asked["usernameReminderRequest"]["__typename"] == "UsernameReminderRequested"

    # then the username arrives by email
    mail = await mailbox.wait_for(email, "username")
    assert username in mail.text and username in mail.html


async def test_username_reminder_is_disabled_in_email_mode(gql):
    result = assert_no_errors(await gql(REMIND, {"email": unique_email()}))
    assert result["usernameReminderRequest"]["__typename"] == "FeatureDisabledError"


async def test_reset_request_rejects_a_malformed_email_with_a_field_error(gql):
    result = assert_no_errors(await gql(REQUEST, {"email": "not-an-email"}))["passwordResetRequest"]
    assert result == {"__typename": "InvalidInputError", "code": "INVALID_INPUT",
                      "message": "Some fields are invalid.", "field": "email"}


async def test_reset_works_for_an_account_throttled_by_failed_sign_ins(settings, clock, mailbox):
    throttled = settings.model_copy(update={"rate_limit_scale": 1.0, "login_identifier_failures": 3})
    async with running_gateway(throttled, clock) as (app, http):
        gql = GraphQLClient(http)
        email = unique_email("throttled")
        await active_customer(gql, mailbox, email)
        for _ in range(3):
            await sign_in(gql, email, "wrong guess of a password")
        assert (await sign_in(gql, email))["__typename"] == "RateLimitedError"

        token = await reset_token(gql, mailbox, email)
        assert assert_no_errors(await gql(RESET, reset_input(token)))["passwordReset"]["__typename"] == "PasswordResetDone"

        assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"


async def test_policy_lifetime_and_the_applications_own_reset_page(gql, mailbox, runtime, clock):
    from stores import config

    # given an application with a 10-minute reset lifetime and its own reset page
    application_id, client_id = await new_application(runtime, password_reset_ttl_minutes=10)
    await config.update_application(application_id, {"password_reset_url": "https://shop.example/account/reset?x=1",
                                                      "redirect_urls": ["https://shop.example/account"]})
    runtime.forget_applications()
    headers = {"x-application-id": client_id}
    email = unique_email("ownpage")
    await active_customer(gql, mailbox, email, headers=headers)

    # when the customer asks for a reset
    assert_no_errors(await gql(REQUEST, {"email": email}, headers=headers))
    mail = await mailbox.wait_for(email, "reset your")

    # then the link points at the application's page, carrying the token, and says 10 minutes
    link = next(word for word in mail.text.split() if word.startswith("https://shop.example/"))
    assert link.startswith("https://shop.example/account/reset?x=1&token=")
    assert "expires in 10 minutes" in mail.text
    token = link.split("token=", 1)[1]

    # and the link stops working after 10 minutes
    clock.advance(minutes=11)
    late = assert_no_errors(await gql(RESET, reset_input(token), headers=headers))["passwordReset"]
    assert late["__typename"] == "InvalidTokenError"


async def test_lifetimes_outside_the_bounds_are_clamped(gql, mailbox, runtime, clock):
    _, client_id = await new_application(runtime, password_reset_ttl_minutes=1)
    headers = {"x-application-id": client_id}
    email = unique_email("clamped")
    await active_customer(gql, mailbox, email, headers=headers)
    assert_no_errors(await gql(REQUEST, {"email": email}, headers=headers))
    mail = await mailbox.wait_for(email, "reset your")
    assert "expires in 5 minutes" in mail.text  # never shorter than 5 minutes

    clock.advance(minutes=4)
    token = mail.token("/reset-password")
    assert assert_no_errors(await gql(RESET, reset_input(token), headers=headers))["passwordReset"] == {
        "__typename": "PasswordResetDone"}


async def test_links_stop_working_when_the_policy_disables_reset(gql, mailbox, runtime):
    from stores import config

    application_id, client_id = await new_application(runtime)
    headers = {"x-application-id": client_id}
    email = unique_email("switchedoff")
    await active_customer(gql, mailbox, email, headers=headers)
    token = await reset_token(gql, mailbox, email, headers=headers)

    application = await config.get_application(application_id)
    await config.update_policy(application.policy_id, {"password_reset.enabled": False})
    runtime.forget_applications()

    refused = assert_no_errors(await gql(RESET, reset_input(token)))["passwordReset"]
    assert refused["__typename"] == "FeatureDisabledError"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"



async def test_a_new_password_that_is_not_text_is_a_policy_error_not_a_crash(gql, mailbox):
    import json as _json

    email = unique_email("surrogate")
    await active_customer(gql, mailbox, email)
    token = await reset_token(gql, mailbox, email)

    body = _json.dumps({"query": RESET, "variables": reset_input(token, "a long pass\ud800phrase")}, ensure_ascii=True)
    response = await gql.http.post("/graphql", content=body, headers={"content-type": "application/json",
                                                                      "x-forwarded-for": gql.ip})

    result = response.json()["data"]["passwordReset"]
    assert result["__typename"] == "PasswordPolicyError" and result["reasons"][0].startswith("INVALID_CHARACTERS")
