"""The self-service foundation: which areas the policy has on, and recent re-authentication."""

from __future__ import annotations

from stores import config
from tests.flows import ME, PASSWORD, active_customer, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

SELF_SERVICE = """
query { me { selfService { personalInformation accountSettings securitySettings privacyAndData
                           accountDeletion dataExport } } }
"""

REAUTHENTICATE = """
mutation Reauth($password: String!) {
  sessionReauthenticate(input: {password: $password}) {
    __typename
    ... on SessionReauthenticated { token session { id } }
    ... on Error { code message }
  }
}
"""


async def test_every_area_is_on_by_default_and_each_switch_shows(gql, mailbox, runtime):
    # given a customer of an application whose policy turns privacy and data off
    application_id, client_id = await new_application(runtime)
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("areas"), headers=headers)
    default = assert_no_errors(await gql(SELF_SERVICE, token=token, headers=headers))["me"]["selfService"]
    application = await config.get_application(application_id)
    await config.update_policy(application.policy_id, {"account_management.privacy_and_data": False})
    runtime.forget_applications()

    # when the frontend asks which tabs to draw for that application
    areas = assert_no_errors(await gql(SELF_SERVICE, token=token, headers=headers))["me"]["selfService"]

    # then everything is on by default, and privacy and data (with the export within it) is off for it
    assert set(default.values()) == {True}
    assert areas == {**default, "privacyAndData": False, "dataExport": False}


async def test_reauthentication_rotates_the_token_and_refuses_a_wrong_password(gql, mailbox):
    # given a signed-in customer
    email = unique_email("reauth")
    token = await active_customer(gql, mailbox, email)

    # when they re-authenticate with a wrong password, then with theirs
    wrong = assert_no_errors(await gql(REAUTHENTICATE, {"password": "not my password"}, token=token))
    right = assert_no_errors(await gql(REAUTHENTICATE, {"password": PASSWORD}, token=token))

    # then the wrong one is refused and the session keeps its token; the right one gives a new token
    assert wrong["sessionReauthenticate"]["code"] == "INVALID_CREDENTIALS"
    renewed = right["sessionReauthenticate"]
    assert renewed["__typename"] == "SessionReauthenticated" and renewed["token"] != token
    assert assert_no_errors(await gql(ME, token=renewed["token"]))["me"]["email"] == email
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert_denied(await GraphQLClient(gql.http)(REAUTHENTICATE, {"password": PASSWORD}), "UNAUTHENTICATED")
