"""Passkeys over HTTP with a software authenticator (soft-webauthn): adding one, signing in with it alone
and as a second factor, the relying party's checks (origin, RP id, replayed challenge, cloned
authenticator, user verification), renaming and removing under the last-login-method rule, the
start-up check of the WebAuthn settings."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid

import pytest

from gateway.app import create_app
from gateway.config import ConfigurationError, Environment, WebAuthnRelyingParty
from stores import config, customers, login_methods
from stores import passkeys as passkey_store
from stores.documents import AuditEventDocument, PasskeyDocument
from tests.conftest import running_gateway
from tests.flows import PASSWORD, SoftPasskey, active_customer, link_identity, new_application, sign_in
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

RP_ID = "shop.example"
ORIGIN = "https://shop.example"
OTHER_CLIENT = f"passkey-other-{uuid.uuid4().hex[:8]}"
OTHER_RP = WebAuthnRelyingParty(rp_id="other.example", origins=["https://other.example"])

REGISTER_START = """
mutation { passkeyRegisterStart { __typename ... on PasskeyRegistrationOptions { publicKey expiresAt }
                                  ... on Error { code } } }
"""
REGISTER_FINISH = """
mutation Finish($input: PasskeyRegisterFinishInput!) {
  passkeyRegisterFinish(input: $input) {
    __typename
    ... on PasskeyAdded { passkey { id name createdAt lastUsedAt } }
    ... on Error { code }
    ... on InvalidInputError { fields { field code } }
  }
}
"""
SIGN_IN_START = """
mutation Start($input: PasskeySignInStartInput) {
  passkeySignInStart(input: $input) { __typename ... on PasskeySignInOptions { publicKey expiresAt } ... on Error { code } }
}
"""
SIGN_IN_FINISH = """
mutation Finish($input: PasskeySignInFinishInput!) {
  passkeySignInFinish(input: $input) {
    __typename
    ... on SessionCreated { token }
    ... on MfaRequired { challengeToken factors }
    ... on Error { code message }
  }
}
"""
PASSWORD_SIGN_IN = """
mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { __typename ... on SessionCreated { token }
                                 ... on MfaRequired { challengeToken factors } ... on Error { code } }
}
"""
LOGIN_METHODS = """
query { me { email loginMethods { __typename ... on LoginMethods { password passkeys { id name createdAt lastUsedAt }
                                                                    mfaFactors { type } } } } }
"""
MFA_STATUS = "query { me { security { mfa { enabled factors { id type } } } } }"
RENAME = """
mutation Rename($input: PasskeyRenameInput!) {
  passkeyRename(input: $input) { __typename ... on PasskeyRenamed { passkey { id name } } ... on Error { code } }
}
"""
REMOVE = """
mutation Remove($id: ID!) { passkeyRemove(id: $id) { __typename ... on PasskeyRemoved { id } ... on Error { code } } }
"""
UNLINK = """
mutation Unlink($id: ID!) { linkedIdentityRemove(id: $id) { __typename ... on Error { code } } }
"""


@pytest.fixture(scope="module")
async def passkey_gateway(settings, clock):
    """A gateway whose applications' passkeys work on shop.example (and one application's on other.example)."""
    configured = settings.model_copy(update={
        "webauthn_rp_id": RP_ID, "webauthn_origins": f"{ORIGIN},https://www.shop.example",
        "webauthn_applications": {OTHER_CLIENT: OTHER_RP}})
    configured.check()
    async with running_gateway(configured, clock) as (app, http):
        yield app, http


@pytest.fixture
def gql(passkey_gateway):
    return GraphQLClient(passkey_gateway[1])


@pytest.fixture
def runtime(passkey_gateway):
    return passkey_gateway[0].state.runtime


async def add_passkey(gql: GraphQLClient, token: str, device: SoftPasskey, *, name: str | None = None,
                      origin: str = ORIGIN, headers: dict | None = None) -> dict:
    options = assert_no_errors(await gql(REGISTER_START, token=token, headers=headers))["passkeyRegisterStart"]
    assert options["__typename"] == "PasskeyRegistrationOptions", options
    credential = device.create(options["publicKey"], origin)
    finish = {"credential": credential, **({"name": name} if name else {})}
    return assert_no_errors(await gql(REGISTER_FINISH, {"input": finish}, token=token,
                                      headers=headers))["passkeyRegisterFinish"]


async def passkey_sign_in(gql: GraphQLClient, device: SoftPasskey, *, origin: str = ORIGIN,
                          challenge_token: str | None = None, headers: dict | None = None, **get) -> dict:
    start = {"challengeToken": challenge_token} if challenge_token else None
    options = assert_no_errors(await gql(SIGN_IN_START, {"input": start}, headers=headers))["passkeySignInStart"]
    assert options["__typename"] == "PasskeySignInOptions", options
    credential = device.get(options["publicKey"], origin, **get)
    finish = {"credential": credential, **({"challengeToken": challenge_token} if challenge_token else {})}
    return assert_no_errors(await gql(SIGN_IN_FINISH, {"input": finish}, headers=headers))["passkeySignInFinish"]


async def customer_with_passkey(gql: GraphQLClient, mailbox, **kwargs) -> tuple[str, str, SoftPasskey, dict]:
    email = unique_email("passkey")
    token = await active_customer(gql, mailbox, email)
    device = SoftPasskey(**kwargs)
    added = await add_passkey(gql, token, device, name="Work laptop")
    assert added["__typename"] == "PasskeyAdded", added
    return email, token, device, added["passkey"]


async def audit_types(customer_email_or_id: str) -> list[str]:
    found = await AuditEventDocument.get_pymongo_collection().find({"subject_id": customer_email_or_id}).to_list()
    return [event["type"] for event in found]


async def test_a_customer_adds_a_passkey_and_signs_in_with_it_alone(gql, mailbox):
    # given a signed-in customer (a fresh sign-in: recently authenticated)
    email = unique_email("passkey")
    token = await active_customer(gql, mailbox, email)
    device = SoftPasskey()

    # when they add a passkey
    options = assert_no_errors(await gql(REGISTER_START, token=token))["passkeyRegisterStart"]
    added = await add_passkey(gql, token, device, name="Work laptop")

    # then the options ask for a discoverable credential with user verification on our relying party
    assert options["publicKey"]["rp"]["id"] == RP_ID
    assert options["publicKey"]["authenticatorSelection"]["residentKey"] == "required"
    assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    # and the passkey is listed with its name, creation and no use yet, and they are told by mail
    assert added["__typename"] == "PasskeyAdded" and added["passkey"]["name"] == "Work laptop"
    methods = assert_no_errors(await gql(LOGIN_METHODS, token=token))["me"]["loginMethods"]
    assert [(p["name"], p["lastUsedAt"]) for p in methods["passkeys"]] == [("Work laptop", None)]
    assert "Work laptop" in (await mailbox.wait_for(email, "passkey was added")).text

    # when anyone signs in with that passkey, no identifier given
    signed_in = await passkey_sign_in(gql, device)

    # then they are that customer, and the passkey shows its last use
    assert signed_in["__typename"] == "SessionCreated", signed_in
    me = assert_no_errors(await gql(LOGIN_METHODS, token=signed_in["token"]))["me"]
    assert me["email"] == email and me["loginMethods"]["passkeys"][0]["lastUsedAt"] is not None


async def test_after_a_password_the_passkey_is_the_second_factor_and_presence_is_enough(gql, mailbox):
    # given a customer with a password and a passkey that does no user verification (a plain security key)
    email, _, device, passkey = await customer_with_passkey(gql, mailbox)
    device.user_verified = False

    # when they sign in with their password
    first = assert_no_errors(await gql(PASSWORD_SIGN_IN, {"input": {"identifier": email, "password": PASSWORD}}))
    challenge = first["sessionCreate"]

    # then the passkey is asked for as a second factor, and their own passkey answers it
    assert challenge["__typename"] == "MfaRequired" and challenge["factors"] == ["PASSKEY"], challenge
    options = assert_no_errors(await gql(SIGN_IN_START, {"input": {"challengeToken": challenge["challengeToken"]}}))
    public_key = options["passkeySignInStart"]["publicKey"]
    assert public_key["userVerification"] == "discouraged"
    assert [c["id"] for c in public_key["allowCredentials"]] == [device.credential_id]
    signed_in = await passkey_sign_in(gql, device, challenge_token=challenge["challengeToken"])
    assert signed_in["__typename"] == "SessionCreated", signed_in

    # and the same passkey without user verification cannot sign in alone
    assert (await passkey_sign_in(gql, device))["__typename"] == "InvalidCredentialsError"


async def test_wrong_origin_wrong_rp_id_and_no_user_verification_are_refused(gql, mailbox):
    # given a customer with a passkey
    _, token, device, _ = await customer_with_passkey(gql, mailbox)

    # when assertions come from another site, for another relying party, or without user verification
    wrong_origin = await passkey_sign_in(gql, device, origin="https://shop.example.evil.test")
    wrong_rp = await passkey_sign_in(gql, device, rp_id="evil.example")
    device.user_verified = False
    unverified = await passkey_sign_in(gql, device)
    device.user_verified = True

    # then none signs in, and the passkey still does from the right site
    assert [wrong_origin["__typename"], wrong_rp["__typename"], unverified["__typename"]] == \
        ["InvalidCredentialsError"] * 3
    assert (await passkey_sign_in(gql, device, origin="https://www.shop.example"))["__typename"] == "SessionCreated"

    # and a passkey made for another site cannot be added either
    refused = await add_passkey(gql, token, SoftPasskey(), origin="https://evil.example")
    assert refused["__typename"] == "InvalidInputError" and refused["fields"] == [
        {"field": "credential", "code": "INVALID"}]


async def test_a_replayed_challenge_is_refused(gql, mailbox):
    # given a passkey sign-in that completed
    _, _, device, _ = await customer_with_passkey(gql, mailbox)
    options = assert_no_errors(await gql(SIGN_IN_START))["passkeySignInStart"]["publicKey"]
    first = assert_no_errors(await gql(SIGN_IN_FINISH, {"input": {"credential": device.get(options, ORIGIN)}}))
    assert first["passkeySignInFinish"]["__typename"] == "SessionCreated"

    # when the same challenge is answered again (a fresh signature, a higher counter)
    again = assert_no_errors(await gql(SIGN_IN_FINISH, {"input": {"credential": device.get(options, ORIGIN)}}))

    # then it is refused
    assert again["passkeySignInFinish"]["__typename"] == "InvalidCredentialsError"


async def test_a_cloned_authenticator_is_refused_and_recorded(gql, mailbox, runtime):
    # given a customer who signed in with their passkey (its counter is now 1)
    email, _, device, passkey = await customer_with_passkey(gql, mailbox)
    assert (await passkey_sign_in(gql, device))["__typename"] == "SessionCreated"
    customer_id = (await PasskeyDocument.get_pymongo_collection().find_one({"_id": passkey["id"]}))["customer_id"]

    # when a copy of the key signs with a counter that did not grow
    device.sign_count = 0
    cloned = await passkey_sign_in(gql, device)

    # then the sign-in is refused and the suspected clone is in the audit log
    assert cloned["__typename"] == "InvalidCredentialsError"
    assert "customer.passkey_clone_suspected" in await audit_types(customer_id)


async def test_adding_a_passkey_needs_a_recent_authentication(gql, mailbox, clock):
    # given a customer who signed in 11 minutes ago
    token = await active_customer(gql, mailbox, unique_email("passkey-stale"))
    clock.advance(minutes=11)

    # when they start adding a passkey
    result = assert_no_errors(await gql(REGISTER_START, token=token))["passkeyRegisterStart"]

    # then they must confirm it is them first
    assert result["__typename"] == "ReauthenticationRequiredError"


async def test_a_registration_answer_cannot_be_used_by_another_customer(gql, mailbox):
    # given two customers, the first of whom started adding a passkey
    first = await active_customer(gql, mailbox, unique_email("passkey-a"))
    second = await active_customer(gql, mailbox, unique_email("passkey-b"))
    options = assert_no_errors(await gql(REGISTER_START, token=first))["passkeyRegisterStart"]["publicKey"]

    # when the second customer sends the answer to the first one's challenge
    credential = SoftPasskey().create(options, ORIGIN)
    result = assert_no_errors(await gql(REGISTER_FINISH, {"input": {"credential": credential}}, token=second))

    # then it is refused, and nothing was added to either
    assert result["passkeyRegisterFinish"]["fields"] == [{"field": "credential", "code": "EXPIRED"}]
    for token in (first, second):
        assert assert_no_errors(await gql(LOGIN_METHODS, token=token))["me"]["loginMethods"]["passkeys"] == []


async def test_renaming_and_removing_a_passkey(gql, mailbox):
    # given a customer with a password and a passkey, and another customer
    email, token, device, passkey = await customer_with_passkey(gql, mailbox)
    stranger = await active_customer(gql, mailbox, unique_email("stranger"))

    # when they rename it, and the stranger tries to rename and remove it
    renamed = assert_no_errors(await gql(RENAME, {"input": {"id": passkey["id"], "name": "  Phone  "}}, token=token))
    foreign = assert_no_errors(await gql(RENAME, {"input": {"id": passkey["id"], "name": "Mine"}}, token=stranger))
    foreign_remove = assert_no_errors(await gql(REMOVE, {"id": passkey["id"]}, token=stranger))

    # then the name changed for its owner only, and the stranger is told it does not exist
    assert renamed["passkeyRename"]["passkey"]["name"] == "Phone"
    assert foreign["passkeyRename"]["__typename"] == foreign_remove["passkeyRemove"]["__typename"] == "NotFoundError"

    # when the owner removes it (the password remains a way in)
    removed = assert_no_errors(await gql(REMOVE, {"id": passkey["id"]}, token=token))

    # then it is gone, signs nobody in, sign-in asks for no second factor, and they are told by mail
    assert removed["passkeyRemove"] == {"__typename": "PasskeyRemoved", "id": passkey["id"]}
    assert assert_no_errors(await gql(LOGIN_METHODS, token=token))["me"]["loginMethods"]["passkeys"] == []
    assert (await passkey_sign_in(gql, device))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"
    assert "Phone" in (await mailbox.wait_for(email, "passkey was removed")).text


async def test_a_passkey_is_listed_among_the_second_factors_and_mfa_remove_keeps_the_rule(gql, mailbox):
    # given a passwordless customer whose only way in is one passkey
    _, token, _, passkey = await customer_with_passkey(gql, mailbox)
    await make_passwordless(token, gql)

    # when they look at their second factors and remove the passkey through mfaFactorRemove
    status = assert_no_errors(await gql(MFA_STATUS, token=token))["me"]["security"]["mfa"]
    removed = assert_no_errors(await gql(
        "mutation($id: ID!) { mfaFactorRemove(id: $id) { __typename ... on Error { code } } }",
        {"id": passkey["id"]}, token=token))

    # then the passkey is one of their factors, and it is their last way in: it stays
    assert status == {"enabled": True, "factors": [{"id": passkey["id"], "type": "PASSKEY"}]}
    assert removed["mfaFactorRemove"]["__typename"] == "LastLoginMethodError"


async def make_passwordless(token: str, gql: GraphQLClient) -> str:
    """Drop the signed-in customer's password through the store (as if they had registered without one)."""
    from stores.documents import CustomerDocument

    me = assert_no_errors(await gql("query { me { id } }", token=token))["me"]["id"]
    await CustomerDocument.get_pymongo_collection().update_one({"_id": me}, {"$set": {"password_hash": None}})
    return me


async def test_two_concurrent_removals_never_leave_a_passwordless_customer_without_a_way_in(gql, mailbox):
    for _ in range(3):
        # given a passwordless customer with two passkeys
        _, token, _, first = await customer_with_passkey(gql, mailbox)
        second = (await add_passkey(gql, token, SoftPasskey(), name="Phone"))["passkey"]
        await make_passwordless(token, gql)

        # when both are removed at once
        results = await asyncio.gather(*(gql(REMOVE, {"id": p["id"]}, token=token) for p in (first, second)))

        # then exactly one goes, and the other is refused as the last way in
        kinds = sorted(assert_no_errors(r)["passkeyRemove"]["__typename"] for r in results)
        assert kinds == ["LastLoginMethodError", "PasskeyRemoved"]
        assert len(assert_no_errors(await gql(LOGIN_METHODS, token=token))["me"]["loginMethods"]["passkeys"]) == 1


async def test_a_passkey_and_a_linked_identity_removed_at_once_leave_one(gql, mailbox):
    for _ in range(3):
        # given a passwordless customer with a passkey and a linked identity
        _, token, _, passkey = await customer_with_passkey(gql, mailbox)
        me = await make_passwordless(token, gql)
        identity = await link_identity(me)

        # when both are removed at once
        results = await asyncio.gather(gql(REMOVE, {"id": passkey["id"]}, token=token),
                                       gql(UNLINK, {"id": identity.id}, token=token))

        # then exactly one goes
        kinds = sorted([assert_no_errors(results[0])["passkeyRemove"]["__typename"],
                        assert_no_errors(results[1])["linkedIdentityRemove"]["__typename"]])
        assert kinds[0] == "LastLoginMethodError" and kinds[1] in {"PasskeyRemoved", "LinkedIdentityRemoved"}


async def test_a_removal_counted_before_another_one_matches_nothing_after_it(gql, mailbox, clock):
    # given a passwordless customer with a passkey and a linked identity, as two removals both read them
    _, token, _, passkey = await customer_with_passkey(gql, mailbox)
    me = await make_passwordless(token, gql)
    identity = await link_identity(me)
    counted = await customers.get(me)

    # when the passkey is removed, and then an unlink writes what it counted before that
    removed = assert_no_errors(await gql(REMOVE, {"id": passkey["id"]}, token=token))["passkeyRemove"]
    unlinked = await login_methods.remove_linked_identity(
        me, identity.id, expected_count=len(counted.linked_identities), expected_password_hash=None,
        now_ms=0, expected_passkeys=counted.passkey_count)

    # then the unlink matches nothing: the identity stays, the last way in
    assert removed["__typename"] == "PasskeyRemoved" and unlinked is False
    assert [i.id for i in (await customers.get(me)).linked_identities] == [identity.id]

    # and the other way round: a passkey removal counted before an unlink matches nothing after it
    second = (await add_passkey(gql, token, SoftPasskey(), name="Phone"))["passkey"]
    counted = await customers.get(me)
    assert assert_no_errors(await gql(UNLINK, {"id": identity.id}, token=token))["linkedIdentityRemove"][
        "__typename"] == "LinkedIdentityRemoved"
    assert not await passkey_store.uncount(me, expected_count=counted.passkey_count,
                                           expected_identities=len(counted.linked_identities),
                                           expected_password_hash=None, now_ms=0)
    assert (await customers.get(me)).passkey_count == 1 and second["id"]


async def test_applications_can_have_their_own_relying_party(gql, mailbox, runtime):
    # given an application whose passkeys work on other.example (GATEWAY_WEBAUTHN_APPLICATIONS)
    application_id, _ = await new_application(runtime)
    await config.update_application(application_id, {"client_id": OTHER_CLIENT})
    runtime.forget_applications()
    headers = {"x-application-id": OTHER_CLIENT}
    token = await active_customer(gql, mailbox, unique_email("passkey-other"), headers=headers)

    # when a customer of it adds passkeys from its site and from the default relying party's site
    options = assert_no_errors(await gql(REGISTER_START, token=token, headers=headers))["passkeyRegisterStart"]
    on_other = await add_passkey(gql, token, SoftPasskey(), origin="https://other.example", headers=headers)
    on_shop = await add_passkey(gql, token, SoftPasskey(), origin=ORIGIN, headers=headers)

    # then its options name its relying party, and only its own origin is accepted
    assert options["publicKey"]["rp"]["id"] == "other.example"
    assert on_other["__typename"] == "PasskeyAdded" and on_shop["__typename"] == "InvalidInputError"


async def test_passkeys_are_off_where_the_policy_turns_them_off(gql, mailbox, runtime):
    # given an application whose policy turns passkeys off
    _, client_id = await new_application(runtime, passkeys={"enabled": False})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("passkey-off"), headers=headers)

    # when a customer tries to add one and someone tries to sign in with one
    start = assert_no_errors(await gql(REGISTER_START, token=token, headers=headers))["passkeyRegisterStart"]
    sign = assert_no_errors(await gql(SIGN_IN_START, headers=headers))["passkeySignInStart"]

    # then both are disabled
    assert start["__typename"] == sign["__typename"] == "FeatureDisabledError"


async def test_passkey_management_needs_a_customer(gql):
    # when no one is signed in
    result = await gql(REGISTER_START)

    # then it is denied
    assert_denied(result, "UNAUTHENTICATED")


async def test_passkeys_are_erased_with_the_account(gql, mailbox):
    # given a customer with a passkey
    _, token, _, passkey = await customer_with_passkey(gql, mailbox)

    # when they delete their account
    deleted = assert_no_errors(await gql(
        "mutation { accountDelete(input: {currentPassword: \"%s\"}) { __typename ... on Error { code } } }" % PASSWORD,
        token=token))

    # then nothing of the passkey remains
    assert deleted["accountDelete"]["__typename"] == "AccountDeleted"
    assert await PasskeyDocument.get_pymongo_collection().find_one({"_id": passkey["id"]}) is None


@pytest.mark.parametrize(("values", "message"), [
    ({"webauthn_rp_id": "shop.example", "webauthn_origins": "http://shop.example"}, "must be https://"),
    ({"webauthn_rp_id": "shop.example", "webauthn_origins": "https://shop.example.evil.test"},
     "is not on the relying party id"),
    ({"webauthn_rp_id": "co.uk", "webauthn_origins": "https://shop.co.uk"}, "is a public suffix"),
    ({"webauthn_rp_id": "127.0.0.1", "webauthn_origins": "https://127.0.0.1"}, "must be a lower-case domain"),
    ({"webauthn_applications": {"web": WebAuthnRelyingParty(rp_id="shop.example",
                                                            origins=["https://shop.example/login"])}},
     r"scheme://host\[:port\], nothing more"),
    ({"env": Environment.production, "webauthn_rp_id": "localhost", "webauthn_origins": "http://localhost:3000"},
     "must be https://"),
])
def test_bad_webauthn_settings_refuse_to_start(settings, values, message):
    # given settings with a bad relying party
    bad = settings.model_copy(update=values)

    # when the gateway is created, then it refuses with a message naming the problem
    with pytest.raises(ConfigurationError, match=message):
        create_app(bad)


def test_localhost_may_use_http_in_development(settings):
    # given a developer's relying party on localhost
    local = settings.model_copy(update={"webauthn_rp_id": "localhost", "webauthn_origins": "http://localhost:3000"})

    # when it is checked, then it is accepted
    local.check()
    assert local.webauthn_default().rp_id == "localhost"


def test_a_public_url_that_cannot_be_a_relying_party_turns_passkeys_off_without_refusing(settings):
    # given no WebAuthn settings and a public URL on plain http (the tests' own)
    # when the defaults are derived, then passkeys are off for applications without an override
    assert settings.webauthn_default() is None
    settings.check()



async def test_the_data_export_lists_a_passkey_among_the_factors_and_matches_its_schema(gql, passkey_gateway,
                                                                                      mailbox, repo_root):
    from tests.test_export import export_url, path_of, validator

    # given a customer with a passkey
    _, token, _, passkey = await customer_with_passkey(gql, mailbox)

    # when they download their data
    link = await export_url(gql, token)
    exported = (await passkey_gateway[1].get(path_of(link["url"]))).json()

    # then the passkey is one of their second factors, and the export still matches its published schema
    validator(repo_root).validate(exported)
    assert "PASSKEY" in [factor["type"] for factor in exported["mfaFactors"]]


async def test_a_helpdesk_mfa_reset_removes_the_passkeys_too(gql, mailbox, runtime):
    from tests.flows import admin_token

    # given a customer with a password and a passkey (their second factor)
    email, _, device, passkey = await customer_with_passkey(gql, mailbox)
    customer_id = (await PasskeyDocument.get_pymongo_collection().find_one({"_id": passkey["id"]}))["customer_id"]
    admin = await admin_token(runtime, gql)

    # when the helpdesk resets their second factors (a lost phone)
    reset = assert_no_errors(await gql("mutation($id: ID!) { customerMfaReset(id: $id) { __typename } }",
                                       {"id": customer_id}, token=admin))

    # then the passkey is gone: it signs nobody in, and the password alone signs them in
    assert reset["customerMfaReset"]["__typename"] == "CustomerMfaReset"
    assert (await passkey_sign_in(gql, device))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_a_passwordless_customer_with_a_passkey_can_still_confirm_it_is_them_by_emailed_code(
        gql, mailbox, clock):
    # given a passwordless customer with a passkey whose sign-in is 11 minutes old
    email, token, _, _ = await customer_with_passkey(gql, mailbox)
    await make_passwordless(token, gql)
    clock.advance(minutes=11)

    # when they ask for a code to confirm it is them, and send it
    sent = assert_no_errors(await gql("mutation { sessionReauthenticateCodeSend { __typename } }", token=token))
    code = re.search(r"\b(\d{6})\b", (await mailbox.wait_for(email, "sign-in code")).text).group(1)
    done = assert_no_errors(await gql(
        "mutation($c: String!) { sessionReauthenticate(input: {factor: EMAIL_OTP, code: $c}) { __typename } }",
        {"c": code}, token=token))

    # then the session is fresh again
    assert sent["sessionReauthenticateCodeSend"]["__typename"] == "MfaCodeSent"
    assert done["sessionReauthenticate"]["__typename"] == "SessionReauthenticated"


async def test_where_the_policy_turns_passkeys_off_they_are_not_asked_for_after_a_password(gql, mailbox, runtime):
    # given a customer with a passkey, and another application of the same store with passkeys off
    email, _, _, _ = await customer_with_passkey(gql, mailbox)
    _, client_id = await new_application(runtime, passkeys={"enabled": False})

    # when they sign in there with their password
    result = assert_no_errors(await gql(PASSWORD_SIGN_IN, {"input": {"identifier": email, "password": PASSWORD}},
                                        headers={"x-application-id": client_id}))

    # then no passkey is asked for (it could not be given there)
    assert result["sessionCreate"]["__typename"] == "SessionCreated"


async def test_abandoned_passkey_challenges_are_cleaned_up(gql, runtime, clock):
    from stores.documents import WebAuthnChallengeDocument

    # given a passkey sign-in that was started and never finished
    options = assert_no_errors(await gql(SIGN_IN_START))["passkeySignInStart"]["publicKey"]
    key = hashlib.sha256(SoftPasskey._bytes(options["challenge"])).hexdigest()
    challenges = WebAuthnChallengeDocument.get_pymongo_collection()
    assert await challenges.find_one({"_id": key}) is not None

    # when its 5 minutes have passed and the housekeeping pass runs
    clock.advance(minutes=6)
    await runtime.housekeeping()

    # then it is gone
    assert await challenges.find_one({"_id": key}) is None


async def test_a_passwordless_customer_registers_and_then_signs_in_with_a_passkey_alone(gql, mailbox, runtime):
    from tests.test_email_sign_in import ME as PASSWORDLESS_ME
    from tests.test_email_sign_in import REQUEST, VERIFY, code_in, passwordless_application, passwordless_customer

    # given a passwordless application, and a customer who registered there without a password and
    # activated their account from the mailed link
    headers = await passwordless_application(runtime)
    email = await passwordless_customer(gql, mailbox, headers)

    # when they sign in the first time with the emailed code, add a passkey, and later sign in with it alone
    assert_no_errors(await gql(REQUEST, {"input": {"email": email}}, headers=headers))
    code = code_in(await mailbox.wait_for(email, "sign-in"))
    first = assert_no_errors(await gql(VERIFY, {"input": {"email": email, "code": code}},
                                       headers=headers))["emailSignInCodeVerify"]
    device = SoftPasskey()
    added = await add_passkey(gql, first["token"], device, name="Phone", headers=headers)
    later = await passkey_sign_in(gql, device, headers=headers)

    # then the passkey alone signs them in, to an account that never had a password to change
    assert added["__typename"] == "PasskeyAdded"
    assert later["__typename"] == "SessionCreated"
    me = assert_no_errors(await gql(PASSWORDLESS_ME, token=later["token"], headers=headers))["me"]
    assert me["email"] == email
    assert me["security"]["canChangePassword"] is False and me["loginMethods"]["password"] is False
