"""Changing the password while signed in: the current password, the policy, recent authentication, the notice."""

from __future__ import annotations

from tests.flows import ME, PASSWORD, SIGN_IN, active_customer, new_application, sign_in
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

CHANGE = """
mutation Change($input: PasswordChangeInput!) {
  passwordChange(input: $input) {
    __typename
    ... on PasswordChanged { sessionsEnded }
    ... on Error { code field }
    ... on InvalidInputError { fields { field code } }
    ... on PasswordPolicyError { reasons }
    ... on ReauthenticationRequiredError { maxAgeMinutes }
  }
}
"""

CAN_CHANGE = "query { me { security { canChangePassword } } }"

REAUTHENTICATE = """
mutation Reauth($password: String!) {
  sessionReauthenticate(input: {password: $password}) { __typename ... on SessionReauthenticated { token } }
}
"""

NEW_PASSWORD = "a completely different passphrase"


def change(current: str = PASSWORD, new: str = NEW_PASSWORD, confirm: str | None = None) -> dict:
    return {"input": {"currentPassword": current, "newPassword": new,
                      "confirmPassword": new if confirm is None else confirm}}


async def signs_in(gql: GraphQLClient, email: str, password: str) -> str:
    result = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": password}}))
    return result["sessionCreate"]["__typename"]


async def test_a_password_change_ends_every_other_session_keeps_this_one_and_mails_a_notice(gql, mailbox):
    # given a customer signed in on a laptop and a phone
    email = unique_email("change")
    laptop = await active_customer(gql, mailbox, email)
    phone = (await sign_in(gql, email))["token"]

    # when they change their password on the laptop
    changed = assert_no_errors(await gql(CHANGE, change(), token=laptop))["passwordChange"]

    # then the phone is signed out, the laptop is not, only the new password signs in, and a notice is mailed
    assert changed == {"__typename": "PasswordChanged", "sessionsEnded": 1}
    assert_denied(await gql(ME, token=phone), "UNAUTHENTICATED")
    me = assert_no_errors(await gql(ME, token=laptop))["me"]
    assert [s["current"] for s in me["sessions"]] == [True]
    assert await signs_in(gql, email, PASSWORD) == "InvalidCredentialsError"
    assert await signs_in(gql, email, NEW_PASSWORD) == "SessionCreated"
    notice = await mailbox.wait_for(email, "password was changed")
    assert NEW_PASSWORD not in notice.text and "every other session" in notice.text


async def test_a_wrong_current_password_is_invalid_credentials_and_changes_nothing(gql, mailbox):
    # given a signed-in customer
    email = unique_email("wrong-current")
    token = await active_customer(gql, mailbox, email)

    # when they give a wrong current password
    result = assert_no_errors(await gql(CHANGE, change(current="not my password"), token=token))["passwordChange"]

    # then the change is refused on currentPassword and the old password still signs in
    assert result == {"__typename": "InvalidCredentialsError", "code": "INVALID_CREDENTIALS",
                      "field": "currentPassword"}
    assert await signs_in(gql, email, PASSWORD) == "SessionCreated"


async def test_a_mismatched_confirmation_is_invalid_input_on_confirm_password(gql, mailbox):
    # given a signed-in customer
    email = unique_email("mismatch")
    token = await active_customer(gql, mailbox, email)

    # when the confirmation differs from the new password
    result = assert_no_errors(await gql(CHANGE, change(confirm=NEW_PASSWORD + "!"), token=token))["passwordChange"]

    # then confirmPassword is at fault and nothing changed
    assert result["__typename"] == "InvalidInputError"
    assert result["fields"] == [{"field": "confirmPassword", "code": "MISMATCH"}]
    assert await signs_in(gql, email, PASSWORD) == "SessionCreated"


async def test_the_password_policy_applies_to_the_new_password(gql, mailbox, runtime):
    # given a customer of an application that asks for 12 characters
    _, client_id = await new_application(runtime, password_policy={"min_length": 12})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("policy"), headers=headers)

    # when they choose an 11-character password, then a common one
    short = assert_no_errors(await gql(CHANGE, change(new="elevenchars"), token=token, headers=headers))
    common = assert_no_errors(await gql(CHANGE, change(new="password1234"), token=token, headers=headers))

    # then both are refused by the policy, on newPassword
    assert short["passwordChange"]["__typename"] == "PasswordPolicyError"
    assert short["passwordChange"]["field"] == "newPassword"
    assert short["passwordChange"]["reasons"][0].startswith("TOO_SHORT")
    assert common["passwordChange"]["reasons"][0].startswith("COMMON")


async def test_a_password_change_needs_a_recent_authentication(gql, mailbox, clock):
    # given a customer who signed in 11 minutes ago
    email = unique_email("stale")
    token = await active_customer(gql, mailbox, email)
    clock.advance(minutes=11)

    # when they change their password, then re-authenticate and change it again
    stale = assert_no_errors(await gql(CHANGE, change(), token=token))["passwordChange"]
    renewed = assert_no_errors(await gql(REAUTHENTICATE, {"password": PASSWORD}, token=token))
    fresh = assert_no_errors(await gql(CHANGE, change(), token=renewed["sessionReauthenticate"]["token"]))

    # then the first asks for a re-authentication (the policy's 10 minutes), the second works
    assert stale == {"__typename": "ReauthenticationRequiredError", "code": "REAUTHENTICATION_REQUIRED",
                     "field": None, "maxAgeMinutes": 10}
    assert fresh["passwordChange"]["__typename"] == "PasswordChanged"
    assert await signs_in(gql, email, NEW_PASSWORD) == "SessionCreated"


async def test_a_passwordless_policy_disables_the_change_and_hides_the_screen(gql, mailbox, runtime):
    # given a customer of the default application, and the same customer on a passwordless application
    _, client_id = await new_application(runtime, passwordless=True)
    email = unique_email("passwordless")
    token = await active_customer(gql, mailbox, email)
    headers = {"x-application-id": client_id}

    # when the frontends ask whether to show Change Password, and the passwordless one tries it
    default = assert_no_errors(await gql(CAN_CHANGE, token=token))["me"]["security"]["canChangePassword"]
    there = (await sign_in(gql, email, headers=headers))["token"]  # a session works in its own application only
    passwordless = assert_no_errors(await gql(CAN_CHANGE, token=there, headers=headers))["me"]["security"]
    result = assert_no_errors(await gql(CHANGE, change(), token=there, headers=headers))["passwordChange"]

    # then only the default application shows it, and the passwordless one refuses it
    assert default is True and passwordless["canChangePassword"] is False
    assert result["__typename"] == "FeatureDisabledError"
    assert await signs_in(gql, email, PASSWORD) == "SessionCreated"


async def test_a_password_change_needs_a_signed_in_customer(gql):
    # given no token
    # when a password change is sent
    result = await gql(CHANGE, change())

    # then the caller is told to sign in
    assert_denied(result, "UNAUTHENTICATED")


async def test_the_follow_up_of_a_password_change_never_ends_the_session_that_made_it(gql, mailbox, runtime,
                                                                                    monkeypatch):
    from stores import sessions as session_store

    # given a signed-in customer, and a gateway where the change's follow-up job runs before the
    # session that made the change is moved to the new credential version (as it may, on a busy instance)
    email = unique_email("follow-up")
    token = await active_customer(gql, mailbox, email)
    moved = session_store.set_credential_version

    async def late(session_id, credential_version):
        await runtime.drain()  # the follow-up job (purge older sessions, mail the notice) has run
        await moved(session_id, credential_version)

    monkeypatch.setattr(session_store, "set_credential_version", late)

    # when they change their password
    changed = assert_no_errors(await gql(CHANGE, change(), token=token))["passwordChange"]
    await runtime.drain()

    # then the session that made the change still works
    assert changed["__typename"] == "PasswordChanged"
    assert assert_no_errors(await gql(ME, token=token))["me"]["email"] == email
