"""Second factors: TOTP, recovery codes and emailed codes; enrolment, the sign-in step, removal, the policy's mode."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp

from tests.flows import PASSWORD, active_customer, admin_token, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

SIGN_IN = """
mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    __typename
    ... on SessionCreated { token deviceToken }
    ... on MfaRequired { challengeToken factors expiresAt codeSent }
    ... on Error { code message field }
  }
}
"""

VERIFY = """
mutation Verify($input: SessionMfaVerifyInput!) {
  sessionMfaVerify(input: $input) {
    __typename
    ... on SessionCreated { token deviceToken }
    ... on Error { code message field }
  }
}
"""

CODE_SEND = """
mutation Send($token: String!) {
  sessionMfaCodeSend(input: {challengeToken: $token}) { __typename ... on MfaCodeSent { expiresAt } ... on Error { code } }
}
"""

ENROLL = """
mutation { mfaTotpEnroll { __typename ... on MfaTotpEnrollment { secret otpauthUri }
                           ... on Error { code } ... on ReauthenticationRequiredError { maxAgeMinutes } } }
"""

CONFIRM = """
mutation Confirm($code: String!) {
  mfaTotpConfirm(input: {code: $code}) {
    __typename
    ... on MfaFactorAdded { factor { id type createdAt lastUsedAt } }
    ... on Error { code field }
    ... on InvalidInputError { fields { field code } }
  }
}
"""

RECOVERY_CODES = """
mutation { mfaRecoveryCodesRegenerate { __typename ... on MfaRecoveryCodes { codes factor { id type remainingCodes } }
                                        ... on Error { code } } }
"""

EMAIL_ENROLL = "mutation { mfaEmailOtpEnroll { __typename ... on MfaFactorAdded { factor { id type } } ... on Error { code } } }"

REMOVE = """
mutation Remove($id: ID!) { mfaFactorRemove(id: $id) { __typename ... on MfaFactorRemoved { id } ... on Error { code } } }
"""

SECURITY = """
query { me { security { canChangePassword mfa { enabled factors { id type createdAt lastUsedAt remainingCodes } } } } }
"""

REAUTHENTICATE = """
mutation Reauth($input: SessionReauthenticateInput!) {
  sessionReauthenticate(input: $input) {
    __typename
    ... on SessionReauthenticated { token }
    ... on Error { code field }
    ... on InvalidInputError { fields { field code } }
  }
}
"""

REAUTHENTICATION_CODE_SEND = """
mutation { sessionReauthenticateCodeSend { __typename ... on MfaCodeSent { expiresAt } ... on Error { code } } }
"""

ADMIN_CUSTOMER_SECURITY = """
query Customer($id: ID!) { customer(id: $id) { security { canChangePassword mfa { enabled factors { id type } } } } }
"""

ME_ID = "query { me { id } }"


def totp_code(secret: str, clock, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps_ahead))


def mailed_code(mail) -> str:
    match = re.search(r"^\s{4}(\d{6})\s*$", mail.text, re.M)
    assert match, mail.text
    return match.group(1)


async def sign_in(gql: GraphQLClient, email: str, password: str = PASSWORD, headers: dict | None = None) -> dict:
    result = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": password}},
                                        headers=headers))
    return result["sessionCreate"]


async def verify(gql: GraphQLClient, challenge: str, factor: str, code: str, headers: dict | None = None) -> dict:
    result = assert_no_errors(await gql(VERIFY, {"input": {"challengeToken": challenge, "factor": factor,
                                                            "code": code}}, headers=headers))
    return result["sessionMfaVerify"]


async def enroll_totp(gql: GraphQLClient, token: str, clock, headers: dict | None = None) -> tuple[str, str]:
    """Enrol and confirm an authenticator app; returns (secret, factor id). The step it used is spent."""
    enrollment = assert_no_errors(await gql(ENROLL, token=token, headers=headers))["mfaTotpEnroll"]
    assert enrollment["__typename"] == "MfaTotpEnrollment", enrollment
    confirmed = assert_no_errors(await gql(CONFIRM, {"code": totp_code(enrollment["secret"], clock)}, token=token,
                                           headers=headers))["mfaTotpConfirm"]
    assert confirmed["__typename"] == "MfaFactorAdded", confirmed
    return enrollment["secret"], confirmed["factor"]["id"]


async def totp_customer(gql, mailbox, clock, prefix: str = "totp") -> tuple[str, str, str, str]:
    """(email, session token, TOTP secret, factor id) of an active customer with an authenticator app."""
    email = unique_email(prefix)
    token = await active_customer(gql, mailbox, email)
    secret, factor_id = await enroll_totp(gql, token, clock)
    return email, token, secret, factor_id


async def test_totp_enrolment_shows_the_secret_once_and_a_code_from_the_app_activates_it(gql, mailbox, clock):
    # given a signed-in customer without a second factor
    email = unique_email("enrol")
    token = await active_customer(gql, mailbox, email)
    before = assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]

    # when they start an enrolment, then confirm it with a code from their app
    enrollment = assert_no_errors(await gql(ENROLL, token=token))["mfaTotpEnroll"]
    pending = assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]
    confirmed = assert_no_errors(await gql(CONFIRM, {"code": totp_code(enrollment["secret"], clock)},
                                           token=token))["mfaTotpConfirm"]

    # then the app is set up for this application, counts only once confirmed, and a notice is mailed
    assert before == {"enabled": False, "factors": []}
    assert enrollment["otpauthUri"].startswith("otpauth://totp/")
    assert pyotp.parse_uri(enrollment["otpauthUri"]).secret == enrollment["secret"]
    assert pending == {"enabled": False, "factors": []}
    assert confirmed["__typename"] == "MfaFactorAdded" and confirmed["factor"]["type"] == "TOTP"
    after = assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]
    assert after["enabled"] is True and [f["id"] for f in after["factors"]] == [confirmed["factor"]["id"]]
    notice = await mailbox.wait_for(email, "sign-in method was added")
    assert "Authenticator app" in notice.text and enrollment["secret"] not in notice.text


async def test_the_otpauth_issuer_is_the_application_name(gql, mailbox, runtime):
    # given a customer of an application named "Acme Shop"
    _, client_id = await new_application(runtime, name="Acme Shop")
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("issuer"), headers=headers)

    # when they enrol an authenticator app there
    enrollment = assert_no_errors(await gql(ENROLL, token=token, headers=headers))["mfaTotpEnroll"]

    # then the app will show the account under that name
    assert pyotp.parse_uri(enrollment["otpauthUri"]).issuer == "Acme Shop"


async def test_a_wrong_code_does_not_activate_the_app(gql, mailbox, clock):
    # given a customer who started an enrolment
    token = await active_customer(gql, mailbox, unique_email("wrong-confirm"))
    enrollment = assert_no_errors(await gql(ENROLL, token=token))["mfaTotpEnroll"]
    wrong = f"{(int(totp_code(enrollment['secret'], clock)) + 1) % 1_000_000:06d}"

    # when they confirm with a code the app did not show
    confirmed = assert_no_errors(await gql(CONFIRM, {"code": wrong}, token=token))["mfaTotpConfirm"]

    # then the code field is invalid and nothing is enabled
    assert confirmed["__typename"] == "InvalidInputError" and confirmed["fields"] == [{"field": "code", "code": "INVALID"}]
    assert assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]["enabled"] is False


async def test_sign_in_with_totp_and_a_replayed_code_is_refused(gql, mailbox, clock):
    # given a customer with an authenticator app
    email, _, secret, _ = await totp_customer(gql, mailbox, clock)
    clock.advance(seconds=30)  # the enrolment spent the current step
    code = totp_code(secret, clock)

    # when they sign in with their password, then the app's code; and someone replays that code
    first = await sign_in(gql, email)
    signed_in = await verify(gql, first["challengeToken"], "TOTP", code)
    second = await sign_in(gql, email)
    replayed = await verify(gql, second["challengeToken"], "TOTP", code)

    # then the password alone gives no session, the code completes it once, and its replay is refused
    assert first["__typename"] == "MfaRequired" and "TOTP" in first["factors"] and first["codeSent"] is False
    assert signed_in["__typename"] == "SessionCreated" and signed_in["deviceToken"]
    assert assert_no_errors(await gql(ME_ID, token=signed_in["token"]))["me"]["id"]
    assert replayed["__typename"] == "InvalidCredentialsError" and replayed["field"] == "code"
    clock.advance(seconds=30)
    assert (await verify(gql, second["challengeToken"], "TOTP", totp_code(secret, clock)))["__typename"] == "SessionCreated"


async def test_a_code_from_one_step_either_side_is_accepted_but_not_two(gql, mailbox, clock):
    # given a customer with an authenticator app whose clock runs 30 s late, then one 60 s late
    email, _, secret, _ = await totp_customer(gql, mailbox, clock, "window")
    clock.advance(minutes=2)

    # when they sign in with the code of the previous step, then with one from two steps back
    late = await verify(gql, (await sign_in(gql, email))["challengeToken"], "TOTP", totp_code(secret, clock, -1))
    clock.advance(minutes=2)
    too_late = await verify(gql, (await sign_in(gql, email))["challengeToken"], "TOTP", totp_code(secret, clock, -2))

    # then one step of drift is tolerated, two are not
    assert late["__typename"] == "SessionCreated"
    assert too_late["__typename"] == "InvalidCredentialsError"


async def test_recovery_code_sign_in_and_a_used_code_is_refused(gql, mailbox, clock):
    # given a customer with an authenticator app and recovery codes
    email, token, _, _ = await totp_customer(gql, mailbox, clock, "recovery")
    generated = assert_no_errors(await gql(RECOVERY_CODES, token=token))["mfaRecoveryCodesRegenerate"]
    codes = generated["codes"]

    # when they sign in with a recovery code (lost phone), and later try the same code again
    first = await sign_in(gql, email)
    used = await verify(gql, first["challengeToken"], "RECOVERY_CODE", codes[0].lower())
    second = await sign_in(gql, email)
    reused = await verify(gql, second["challengeToken"], "RECOVERY_CODE", codes[0])
    another = await verify(gql, second["challengeToken"], "RECOVERY_CODE", codes[1])

    # then 10 distinct codes were shown, each works once (typed in any case), and the rest still work
    assert len(codes) == 10 and len(set(codes)) == 10 and all(re.fullmatch(r"[A-Z2-7]{5}-[A-Z2-7]{5}", c) for c in codes)
    assert "RECOVERY_CODE" in first["factors"]
    assert used["__typename"] == "SessionCreated"
    assert reused["__typename"] == "InvalidCredentialsError"
    assert another["__typename"] == "SessionCreated"
    factors = assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]["factors"]
    recovery = [f for f in factors if f["type"] == "RECOVERY_CODE"][0]
    assert recovery["remainingCodes"] == 8 and recovery["lastUsedAt"]


async def test_regenerating_recovery_codes_replaces_every_earlier_code(gql, mailbox, clock):
    # given a customer with recovery codes
    email, token, _, _ = await totp_customer(gql, mailbox, clock, "regenerate")
    old = assert_no_errors(await gql(RECOVERY_CODES, token=token))["mfaRecoveryCodesRegenerate"]["codes"]

    # when they generate new ones
    new = assert_no_errors(await gql(RECOVERY_CODES, token=token))["mfaRecoveryCodesRegenerate"]

    # then the old codes no longer sign in, the new ones do, and there is still one set of codes
    challenge = (await sign_in(gql, email))["challengeToken"]
    assert (await verify(gql, challenge, "RECOVERY_CODE", old[0]))["__typename"] == "InvalidCredentialsError"
    assert (await verify(gql, challenge, "RECOVERY_CODE", new["codes"][0]))["__typename"] == "SessionCreated"
    factors = assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]["factors"]
    assert [f["type"] for f in factors].count("RECOVERY_CODE") == 1


async def test_recovery_codes_alone_do_not_turn_mfa_on(gql, mailbox):
    # given a customer who generated recovery codes but has no authenticator app or email codes
    email = unique_email("codes-only")
    token = await active_customer(gql, mailbox, email)
    assert_no_errors(await gql(RECOVERY_CODES, token=token))

    # when they sign in
    outcome = await sign_in(gql, email)

    # then the password is enough: recovery codes are a backup, not a factor of their own
    assert outcome["__typename"] == "SessionCreated"
    assert assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]["enabled"] is False


async def test_email_code_sign_in(gql, mailbox):
    # given a customer who turned on emailed codes
    email = unique_email("email-otp")
    token = await active_customer(gql, mailbox, email)
    added = assert_no_errors(await gql(EMAIL_ENROLL, token=token))["mfaEmailOtpEnroll"]

    # when they sign in with their password, read the mailed code and send it back
    challenge = await sign_in(gql, email)
    code = mailed_code(await mailbox.wait_for(email, "sign-in code"))
    signed_in = await verify(gql, challenge["challengeToken"], "EMAIL_OTP", code)
    again = await verify(gql, challenge["challengeToken"], "EMAIL_OTP", code)

    # then the code was mailed at once, completes the sign-in, and is used up with it
    assert added["__typename"] == "MfaFactorAdded" and added["factor"]["type"] == "EMAIL_OTP"
    assert challenge["__typename"] == "MfaRequired" and challenge["factors"] == ["EMAIL_OTP"]
    assert challenge["codeSent"] is True
    assert signed_in["__typename"] == "SessionCreated"
    assert again["__typename"] == "InvalidTokenError"
    from stores.documents import AuditEventDocument

    customer_id = assert_no_errors(await gql(ME_ID, token=token))["me"]["id"]
    sent = await AuditEventDocument.get_pymongo_collection().find(
        {"type": "customer.mfa_code_sent", "subject_id": customer_id}).to_list()
    assert [e["data"]["purpose"] for e in sent] == ["sign_in"]


async def test_an_emailed_code_expires_with_its_challenge(gql, mailbox, clock):
    # given a customer with emailed codes who signed in with their password
    email = unique_email("email-expiry")
    token = await active_customer(gql, mailbox, email)
    assert_no_errors(await gql(EMAIL_ENROLL, token=token))
    challenge = await sign_in(gql, email)
    code = mailed_code(await mailbox.wait_for(email, "sign-in code"))

    # when they send the code six minutes later
    clock.advance(minutes=6)
    late = await verify(gql, challenge["challengeToken"], "EMAIL_OTP", code)

    # then the sign-in has expired
    assert late["__typename"] == "InvalidTokenError"


async def test_required_mode_with_nothing_enrolled_falls_back_to_an_email_code(gql, mailbox, runtime):
    # given an application whose policy requires a second factor, and a customer with none
    _, client_id = await new_application(runtime, mfa={"mode": "REQUIRED"})
    headers = {"x-application-id": client_id}
    email = unique_email("required")
    await active_customer_without_mfa_step(gql, mailbox, email, headers)

    # when they sign in
    challenge = await sign_in(gql, email, headers=headers)
    code = mailed_code(await mailbox.wait_for(email, "sign-in code"))
    signed_in = await verify(gql, challenge["challengeToken"], "EMAIL_OTP", code, headers=headers)

    # then an emailed code is asked for and completes the sign-in
    assert challenge["__typename"] == "MfaRequired" and challenge["factors"] == ["EMAIL_OTP"]
    assert signed_in["__typename"] == "SessionCreated"


async def active_customer_without_mfa_step(gql, mailbox, email: str, headers: dict) -> None:
    """Register and activate (the flows helper signs in too, which REQUIRED turns into a challenge)."""
    from tests.flows import ACTIVATE, activation_token, register

    await register(gql, email, headers=headers)
    token = await activation_token(mailbox, email)
    assert_no_errors(await gql(ACTIVATE, {"token": token}, headers=headers))


async def test_five_wrong_codes_end_the_challenge(gql, mailbox, clock):
    # given a customer with an authenticator app, signed in with the password
    email, _, secret, _ = await totp_customer(gql, mailbox, clock, "five")
    clock.advance(seconds=30)
    challenge = (await sign_in(gql, email))["challengeToken"]
    right = totp_code(secret, clock)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"

    # when five wrong codes are tried, then the right one
    answers = [(await verify(gql, challenge, "TOTP", wrong))["__typename"] for _ in range(5)]
    after = await verify(gql, challenge, "TOTP", right)

    # then each wrong code is refused, and the challenge has ended: even the right code needs a new sign-in
    assert answers == ["InvalidCredentialsError"] * 5
    assert after["__typename"] == "InvalidTokenError"
    assert (await verify(gql, (await sign_in(gql, email))["challengeToken"], "TOTP", right))["__typename"] \
        == "SessionCreated"


async def test_a_challenge_expires_after_five_minutes(gql, mailbox, clock):
    # given a customer with an authenticator app, signed in with the password
    email, _, secret, _ = await totp_customer(gql, mailbox, clock, "expiry")
    challenge = (await sign_in(gql, email))["challengeToken"]

    # when the code comes six minutes later
    clock.advance(minutes=6)
    late = await verify(gql, challenge, "TOTP", totp_code(secret, clock))

    # then the sign-in must start again
    assert late["__typename"] == "InvalidTokenError"


async def test_the_challenge_token_is_stored_only_as_a_hash(gql, mailbox, clock):
    # given a customer with an authenticator app, signed in with the password
    email, _, _, _ = await totp_customer(gql, mailbox, clock, "hashed")
    challenge = (await sign_in(gql, email))["challengeToken"]

    # when the challenges collection is read
    from stores.documents import MfaChallengeDocument

    stored = await MfaChallengeDocument.get_pymongo_collection().find({}).to_list()

    # then the token appears nowhere in it
    assert len(challenge) >= 32
    assert challenge not in str(stored)


async def test_a_password_change_during_the_code_step_ends_the_challenge(gql, mailbox, clock):
    # given a customer with an authenticator app, one session, and a sign-in waiting for its code
    email, token, secret, _ = await totp_customer(gql, mailbox, clock, "bound")
    challenge = (await sign_in(gql, email))["challengeToken"]

    # when the password is changed from the existing session before the code arrives
    changed = assert_no_errors(await gql(
        'mutation { passwordChange(input: {currentPassword: "%s", newPassword: "a brand new passphrase", '
        'confirmPassword: "a brand new passphrase"}) { __typename } }' % PASSWORD, token=token))
    clock.advance(seconds=30)
    late = await verify(gql, challenge, "TOTP", totp_code(secret, clock))

    # then the sign-in that verified the old password gets no session
    assert changed["passwordChange"]["__typename"] == "PasswordChanged"
    assert late["__typename"] == "InvalidTokenError"


async def test_mode_off_refuses_enrolment_but_never_skips_a_factor_the_customer_has(gql, mailbox, clock, runtime):
    # given a customer with an authenticator app, and an application whose policy has MFA off
    email, _, secret, _ = await totp_customer(gql, mailbox, clock, "off")
    _, client_id = await new_application(runtime, mfa={"mode": "OFF"})
    headers = {"x-application-id": client_id}

    # when they sign in there (the password alone is not enough: their factor protects the account
    # under every application), complete it with their app, and try to enrol there
    outcome = await sign_in(gql, email, headers=headers)
    assert outcome["__typename"] == "MfaRequired", outcome
    signed_in = await verify(gql, outcome["challengeToken"], "TOTP", totp_code(secret, clock, 1), headers=headers)
    enrol = assert_no_errors(await gql(ENROLL, token=signed_in["token"], headers=headers))["mfaTotpEnroll"]

    # then enrolment is off there
    assert enrol["__typename"] == "FeatureDisabledError"


async def test_a_factor_type_the_policy_does_not_allow_cannot_be_enrolled(gql, mailbox, runtime):
    # given an application whose policy allows only authenticator apps
    _, client_id = await new_application(runtime, mfa={"mode": "OPTIONAL", "factors": ["TOTP"]})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("allowed"), headers=headers)

    # when a customer turns on emailed codes
    result = assert_no_errors(await gql(EMAIL_ENROLL, token=token, headers=headers))["mfaEmailOtpEnroll"]

    # then that factor is disabled for the application
    assert result["__typename"] == "FeatureDisabledError"


async def test_removing_a_factor_mails_a_notice_and_sign_in_no_longer_asks(gql, mailbox, clock):
    # given a customer with an authenticator app
    email, token, _, factor_id = await totp_customer(gql, mailbox, clock, "remove")

    # when they remove it
    removed = assert_no_errors(await gql(REMOVE, {"id": factor_id}, token=token))["mfaFactorRemove"]

    # then it is gone, the password alone signs in again, and a notice is mailed
    assert removed == {"__typename": "MfaFactorRemoved", "id": factor_id}
    assert assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"] == {"enabled": False,
                                                                                           "factors": []}
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"
    notice = await mailbox.wait_for(email, "sign-in method was removed")
    assert "Authenticator app" in notice.text


async def test_another_customer_cannot_remove_my_factor(gql, mailbox, clock):
    # given a customer with an authenticator app, and another customer
    email, token, _, factor_id = await totp_customer(gql, mailbox, clock, "victim")
    intruder = await active_customer(gql, mailbox, unique_email("intruder"))

    # when the other customer removes it by id, and an id that does not exist
    foreign = assert_no_errors(await gql(REMOVE, {"id": factor_id}, token=intruder))["mfaFactorRemove"]
    unknown = assert_no_errors(await gql(REMOVE, {"id": "0" * 32}, token=intruder))["mfaFactorRemove"]

    # then both get the same NotFoundError, and the factor still guards the account
    assert foreign == unknown == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    assert (await sign_in(gql, email))["__typename"] == "MfaRequired"
    assert len(assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]["factors"]) == 1


async def test_mfa_changes_need_a_recent_authentication_which_a_totp_code_can_give(gql, mailbox, clock):
    # given a customer with an authenticator app whose sign-in was 11 minutes ago
    _, token, secret, factor_id = await totp_customer(gql, mailbox, clock, "recent")
    clock.advance(minutes=11)

    # when they try MFA changes, then re-authenticate with a code from their app and try again
    refused = [assert_no_errors(await gql(query, variables, token=token))[field]["__typename"]
               for query, variables, field in ((ENROLL, None, "mfaTotpEnroll"),
                                               (RECOVERY_CODES, None, "mfaRecoveryCodesRegenerate"),
                                               (EMAIL_ENROLL, None, "mfaEmailOtpEnroll"),
                                               (REMOVE, {"id": factor_id}, "mfaFactorRemove"))]
    renewed = assert_no_errors(await gql(REAUTHENTICATE, {"input": {"factor": "TOTP", "code": totp_code(secret, clock)}},
                                         token=token))["sessionReauthenticate"]
    removed = assert_no_errors(await gql(REMOVE, {"id": factor_id}, token=renewed["token"]))["mfaFactorRemove"]

    # then each change asked for a re-authentication, which the code gave
    assert refused == ["ReauthenticationRequiredError"] * 4
    assert renewed["__typename"] == "SessionReauthenticated"
    assert removed["__typename"] == "MfaFactorRemoved"


async def test_reauthentication_takes_a_password_or_a_factor_and_code_not_both(gql, mailbox, clock):
    # given a customer with an authenticator app
    _, token, secret, _ = await totp_customer(gql, mailbox, clock, "either")
    clock.advance(seconds=30)

    # when they re-authenticate with both, with nothing, with a wrong code, and with a recovery code they do not have
    both = await gql(REAUTHENTICATE, {"input": {"password": PASSWORD, "factor": "TOTP",
                                                "code": totp_code(secret, clock)}}, token=token)
    nothing = await gql(REAUTHENTICATE, {"input": {}}, token=token)
    wrong = await gql(REAUTHENTICATE, {"input": {"factor": "TOTP", "code": "000000" if totp_code(secret, clock) != "000000"
                                                 else "111111"}}, token=token)
    no_codes = await gql(REAUTHENTICATE, {"input": {"factor": "RECOVERY_CODE", "code": "ABCDE-FGHIJ"}}, token=token)

    # then the first two are invalid input, the others wrong credentials; the token never changed
    assert assert_no_errors(both)["sessionReauthenticate"]["__typename"] == "InvalidInputError"
    assert assert_no_errors(nothing)["sessionReauthenticate"]["fields"] == [{"field": "password", "code": "REQUIRED"}]
    assert assert_no_errors(wrong)["sessionReauthenticate"]["__typename"] == "InvalidCredentialsError"
    assert assert_no_errors(no_codes)["sessionReauthenticate"]["__typename"] == "InvalidCredentialsError"
    assert assert_no_errors(await gql(ME_ID, token=token))["me"]["id"]


async def test_reauthentication_with_an_emailed_code(gql, mailbox, clock):
    # given a customer with emailed codes whose sign-in was 11 minutes ago
    email = unique_email("email-reauth")
    token = await active_customer(gql, mailbox, email)
    assert_no_errors(await gql(EMAIL_ENROLL, token=token))
    clock.advance(minutes=11)

    # when they ask for a code, and re-authenticate with it (twice)
    sent = assert_no_errors(await gql(REAUTHENTICATION_CODE_SEND, token=token))["sessionReauthenticateCodeSend"]
    code = mailed_code(await mailbox.wait_for(email, "sign-in code"))
    renewed = assert_no_errors(await gql(REAUTHENTICATE, {"input": {"factor": "EMAIL_OTP", "code": code}},
                                         token=token))["sessionReauthenticate"]
    reused = assert_no_errors(await gql(REAUTHENTICATE, {"input": {"factor": "EMAIL_OTP", "code": code}},
                                        token=renewed["token"]))["sessionReauthenticate"]

    # then the code renews the session once
    assert sent["__typename"] == "MfaCodeSent"
    assert renewed["__typename"] == "SessionReauthenticated"
    assert reused["__typename"] == "InvalidCredentialsError"


async def test_a_code_can_be_asked_for_again_at_most_three_times_per_sign_in(gql, mailbox):
    # given a customer with emailed codes, signed in with the password (one code mailed)
    email = unique_email("resend")
    token = await active_customer(gql, mailbox, email)
    assert_no_errors(await gql(EMAIL_ENROLL, token=token))
    challenge = (await sign_in(gql, email))["challengeToken"]

    # when they ask for a new code three more times
    answers = [assert_no_errors(await gql(CODE_SEND, {"token": challenge}))["sessionMfaCodeSend"]["__typename"]
               for _ in range(3)]

    # then two more codes are sent and the third request is limited; only the last code works
    assert answers == ["MfaCodeSent", "MfaCodeSent", "RateLimitedError"]
    first = mailed_code(await mailbox.wait_for(email, "sign-in code"))
    last = mailed_code(await mailbox.wait_for(email, "sign-in code", count=3))
    if first != last:
        assert (await verify(gql, challenge, "EMAIL_OTP", first))["__typename"] == "InvalidCredentialsError"
    assert (await verify(gql, challenge, "EMAIL_OTP", last))["__typename"] == "SessionCreated"


async def test_an_admin_with_customers_read_sees_a_customers_factors_but_no_secret(gql, mailbox, clock, runtime):
    # given a customer with an authenticator app, and an admin who may read customers
    _, token, secret, factor_id = await totp_customer(gql, mailbox, clock, "admin-view")
    customer_id = assert_no_errors(await gql(ME_ID, token=token))["me"]["id"]
    admin = await admin_token(runtime, gql)

    # when the admin looks at the customer's security settings
    result = await gql(ADMIN_CUSTOMER_SECURITY, {"id": customer_id}, token=admin)

    # then they see the customer's factors (not their own), and no secret
    security = assert_no_errors(result)["customer"]["security"]
    assert security == {"canChangePassword": True,
                        "mfa": {"enabled": True, "factors": [{"id": factor_id, "type": "TOTP"}]}}
    assert secret not in str(result)


async def test_security_settings_need_a_customer(gql, runtime):
    # given no token, and an admin token
    admin = await admin_token(runtime, gql)

    # when either asks the customer's own security mutations
    anonymous = await gql(ENROLL)
    as_admin = await gql(ENROLL, token=admin)

    # then they are told to sign in as a customer
    assert_denied(anonymous, "UNAUTHENTICATED")
    assert_denied(as_admin, "FORBIDDEN")


async def test_codes_count_against_the_accounts_sign_in_budget_like_passwords(settings, clock, mailbox):
    # given a gateway allowing 4 sign-in attempts per account and client, and a customer with an authenticator app
    from tests.conftest import running_gateway
    from tests.security.support import at_start_of_window

    at_start_of_window(clock)
    limits = {"rate_limit_scale": 1.0, "login_identifier_ip_failures": 4, "login_ip_attempts": 1000,
              "register_ip_attempts": 1000}
    async with running_gateway(settings.model_copy(update=limits), clock) as (_, http):
        gql = GraphQLClient(http)
        email, _, secret, _ = await totp_customer(gql, mailbox, clock, "budget")
        clock.advance(seconds=30)
        challenge = (await sign_in(gql, email))["challengeToken"]  # the right password: attempt 1, not cleared
        wrong = f"{(int(totp_code(secret, clock)) + 500_000) % 1_000_000:06d}"

        # when four wrong codes follow
        answers = [(await verify(gql, challenge, "TOTP", wrong))["__typename"] for _ in range(4)]

        # then the fourth is over the budget, though the challenge itself had attempts left
        assert answers == ["InvalidCredentialsError"] * 3 + ["RateLimitedError"]


async def test_a_challenge_completes_only_in_the_application_that_made_it(gql, mailbox, clock, runtime):
    # given a customer with an authenticator app who signed in with the password in the default application
    email, _, secret, _ = await totp_customer(gql, mailbox, clock, "other-app")
    clock.advance(seconds=30)
    challenge = (await sign_in(gql, email))["challengeToken"]
    _, client_id = await new_application(runtime, sessions={"absolute_lifetime_minutes": 60 * 24 * 365})

    # when the code is sent to another application (with its own session policy)
    elsewhere = await verify(gql, challenge, "TOTP", totp_code(secret, clock), headers={"x-application-id": client_id})

    # then no session is made under that application's policy
    assert elsewhere["__typename"] == "InvalidTokenError"


async def test_short_codes_are_stored_under_the_secret_key_and_older_plain_hashes_still_work(gql, mailbox, clock):
    import hashlib

    from stores.documents import MfaChallengeDocument, MfaFactorDocument

    # given a customer with recovery codes and emailed codes, who is at the emailed code step
    email, token, _, _ = await totp_customer(gql, mailbox, clock, "keyed")
    customer_id = assert_no_errors(await gql(ME_ID, token=token))["me"]["id"]
    codes = assert_no_errors(await gql(RECOVERY_CODES, token=token))["mfaRecoveryCodesRegenerate"]["codes"]
    assert_no_errors(await gql(EMAIL_ENROLL, token=token))
    challenge = (await sign_in(gql, email))["challengeToken"]
    assert_no_errors(await gql(CODE_SEND, {"token": challenge}))
    emailed = mailed_code(await mailbox.wait_for(email, "sign-in code"))

    # when someone with a copy of the database hashes every candidate code as a plain SHA-256
    def sha256(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    factors = await MfaFactorDocument.get_pymongo_collection().find({"customer_id": customer_id}).to_list()
    stored_codes = [h for f in factors for h in f.get("recovery_code_hashes") or []]
    stored_challenges = str(await MfaChallengeDocument.get_pymongo_collection().find(
        {"customer_id": customer_id}).to_list())

    # then no stored value matches: they are keyed hashes (the emailed code's too)
    assert len(stored_codes) == 10
    assert not {sha256(c.replace("-", "")) for c in codes} & set(stored_codes)
    assert sha256(emailed) not in stored_challenges

    # and a recovery code stored as a plain SHA-256 before keyed storage still signs in, once
    legacy = "ABCDE23456"
    await MfaFactorDocument.get_pymongo_collection().update_one(
        {"customer_id": customer_id, "type": "RECOVERY_CODE"},
        {"$set": {"recovery_code_hashes": stored_codes + [sha256(legacy)]}})
    assert (await verify(gql, challenge, "RECOVERY_CODE", "abcde-23456"))["__typename"] == "SessionCreated"
    again = (await sign_in(gql, email))["challengeToken"]
    assert (await verify(gql, again, "RECOVERY_CODE", legacy))["__typename"] == "InvalidCredentialsError"


async def test_confirming_an_authenticator_needs_a_recent_authentication_and_a_wrong_code_is_audited(
        gql, mailbox, clock):
    from stores.documents import AuditEventDocument

    # given a customer who started an authenticator enrolment just after signing in
    email = unique_email("stale-confirm")
    token = await active_customer(gql, mailbox, email)
    customer_id = assert_no_errors(await gql(ME_ID, token=token))["me"]["id"]
    secret = assert_no_errors(await gql(ENROLL, token=token))["mfaTotpEnroll"]["secret"]

    # when they send a wrong code, and, 11 minutes later, a right one
    right = totp_code(secret, clock)
    wrong = assert_no_errors(await gql(CONFIRM, {"code": "000000" if right != "000000" else "111111"},
                                       token=token))["mfaTotpConfirm"]
    clock.advance(minutes=11)
    late = assert_no_errors(await gql(CONFIRM, {"code": totp_code(secret, clock)}, token=token))["mfaTotpConfirm"]

    # then the wrong code was refused and recorded, and the late confirmation asks for a re-authentication
    assert wrong["__typename"] == "InvalidInputError"
    assert await AuditEventDocument.get_pymongo_collection().count_documents(
        {"type": "customer.mfa_factor_confirm_failed", "subject_id": customer_id}) == 1
    assert late["__typename"] == "ReauthenticationRequiredError"
    security = assert_no_errors(await gql(SECURITY, token=token))["me"]["security"]["mfa"]
    assert security["enabled"] is False
