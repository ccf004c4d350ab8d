"""A customer's session works only for the application it was created under, and a customer's second
factor is asked for under every application of the identity store."""

from __future__ import annotations

from tests.flows import ME, active_customer, new_application, sign_in
from tests.support import assert_denied, assert_no_errors, unique_email
from tests.test_mfa import enroll_totp

DELETE = """mutation { accountDelete(input: {currentPassword: "correct horse battery staple"}) {
  __typename ... on AccountDeleted { erased } ... on Error { code } } }"""


async def test_a_session_does_not_work_under_another_application(gql, mailbox, runtime):
    # given a customer signed in under an application with a 30-day grace before deletion, and a laxer one
    _, strict = await new_application(runtime, account_deletion={"grace_days": 30})
    _, lax = await new_application(runtime, account_deletion={"grace_days": 0})
    token = await active_customer(gql, mailbox, unique_email("bound"), headers={"x-application-id": strict})

    # when the session is used naming the lax application (or none: the default one)
    lax_delete = await gql(DELETE, token=token, headers={"x-application-id": lax})
    default_me = await gql(ME, token=token)

    # then it is nobody there: the lax policy cannot be borrowed, and the account is untouched
    assert_denied(lax_delete, "UNAUTHENTICATED")
    assert_denied(default_me, "UNAUTHENTICATED")
    assert assert_no_errors(await gql(ME, token=token, headers={"x-application-id": strict}))["me"]["id"]


async def test_a_second_factor_is_asked_for_under_an_application_with_mfa_off(gql, mailbox, runtime, clock):
    # given a customer with an authenticator app (enrolled under the default application)
    email = unique_email("factor-everywhere")
    token = await active_customer(gql, mailbox, email)
    await enroll_totp(gql, token, clock)
    _, relaxed = await new_application(runtime, mfa={"mode": "OFF"})

    # when they (or whoever has their password) sign in through the application that has MFA off
    outcome = await sign_in(gql, email, headers={"x-application-id": relaxed})

    # then the password alone is not enough there either
    assert outcome["__typename"] == "MfaRequired", outcome
