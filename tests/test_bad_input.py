"""Bad input at every public mutation: never a 500, never a masked 'Unexpected error.', always a typed answer.

Expected failures come back as members of the result union (InvalidInputError, PasswordPolicyError,
InvalidTokenError, InvalidCredentialsError); input of the wrong GraphQL type is refused by validation as a
top-level error that says what is wrong.
"""

from __future__ import annotations

import json

import pytest

from tests.flows import ACTIVATE, REGISTER, SIGN_OUT, admin_token

HUGE = "a" * 100_000
HUGE_EMAIL = "a" * 100_000 + "@example.com"
SURROGATE = "\ud800"

RESEND = """
mutation Resend($email: String!) {
  accountActivationResend(email: $email) { __typename ... on Error { code message field }
                                           ... on InvalidInputError { fields { field code } } }
}
"""

ADMIN_SIGN_IN_FULL = """
mutation AdminSignIn($input: AdminSessionCreateInput!) {
  adminSessionCreate(input: $input) {
    __typename ... on SessionCreated { token } ... on Error { code message field }
    ... on InvalidInputError { fields { field code } }
  }
}
"""

SIGN_IN_FULL = """
mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    __typename ... on SessionCreated { token } ... on Error { code message field }
    ... on InvalidInputError { fields { field code } }
  }
}
"""

VALIDATION = "validation"


def reg(email="{unique}", password="a fine long passphrase", **extra) -> dict:
    return {"input": {"email": email, "password": password, **extra}}


def creds(identifier="someone@example.com", password="some password") -> dict:
    return {"input": {"identifier": identifier, "password": password}}


def admin_creds(email="someone@example.com", password="some password") -> dict:
    return {"input": {"email": email, "password": password}}


# (id, query, variables, expected __typename of the result or VALIDATION, the field named in the error or a reason)
CASES = [
    # accountRegister
    ("register-empty-email", REGISTER, reg(""), "InvalidInputError", "email"),
    ("register-blank-email", REGISTER, reg("   "), "InvalidInputError", "email"),
    ("register-huge-email", REGISTER, reg(HUGE_EMAIL), "InvalidInputError", "email"),
    ("register-no-at", REGISTER, reg("not-an-email"), "InvalidInputError", "email"),
    ("register-no-dot", REGISTER, reg("a@b"), "InvalidInputError", "email"),
    ("register-no-local", REGISTER, reg("@example.com"), "InvalidInputError", "email"),
    ("register-two-ats", REGISTER, reg("a@b@example.com"), "InvalidInputError", "email"),
    ("register-space", REGISTER, reg("a b@example.com"), "InvalidInputError", "email"),
    ("register-header-injection", REGISTER, reg("a@example.com\r\nBcc: b@example.com"), "InvalidInputError", "email"),
    ("register-nul-in-email", REGISTER, reg("a\x00b@example.com"), "InvalidInputError", "email"),
    ("register-control-in-email", REGISTER, reg("a\x07b@example.com"), "InvalidInputError", "email"),
    ("register-surrogate-email", REGISTER, reg(f"a{SURROGATE}@example.com"), "InvalidInputError", "email"),
    ("register-empty-password", REGISTER, reg(password=""), "PasswordPolicyError", "TOO_SHORT"),
    ("register-short-password", REGISTER, reg(password="short"), "PasswordPolicyError", "TOO_SHORT"),
    ("register-common-password", REGISTER, reg(password="password"), "PasswordPolicyError", "COMMON"),
    ("register-common-password123", REGISTER, reg(password="password123"), "PasswordPolicyError", "COMMON"),
    ("register-common-any-case", REGISTER, reg(password="PassWord123"), "PasswordPolicyError", "COMMON"),
    ("register-300-char-password", REGISTER, reg(password="p" * 300), "PasswordPolicyError", "TOO_LONG"),
    ("register-huge-password", REGISTER, reg(password=HUGE), "PasswordPolicyError", "TOO_LONG"),
    ("register-password-is-email", REGISTER, reg("samepass@example.com", "samepass@example.com"),
     "PasswordPolicyError", "CONTAINS_IDENTIFIER"),
    ("register-surrogate-password", REGISTER, reg(password=f"a long pass{SURROGATE}phrase"),
     "InvalidInputError", "password"),
    ("register-huge-given-name", REGISTER, reg(givenName=HUGE), "InvalidInputError", "givenName"),
    ("register-control-family-name", REGISTER, reg(familyName="Love\x00lace"), "InvalidInputError", "familyName"),
    ("register-surrogate-given-name", REGISTER, reg(givenName=f"Ada{SURROGATE}"), "InvalidInputError", "givenName"),
    ("register-username-in-email-mode", REGISTER, reg(username="someone-else"), "InvalidInputError", "username"),
    ("register-email-wrong-type", REGISTER, reg(12345), VALIDATION, "email"),
    ("register-password-wrong-type", REGISTER, reg(password=["a", "list"]), VALIDATION, "password"),
    ("register-input-wrong-type", REGISTER, {"input": "a string"}, VALIDATION, "input"),
    # optional in the schema (a passwordless policy takes none), required by the default policy
    ("register-missing-password", REGISTER, {"input": {"email": "a@example.com"}}, "InvalidInputError", "password"),
    ("register-null-email", REGISTER, reg(None), VALIDATION, "email"),
    ("register-no-input", REGISTER, {}, VALIDATION, "input"),
    ("register-unknown-field", REGISTER, reg(isAdmin=True), VALIDATION, "isAdmin"),
    # accountActivate
    ("activate-empty", ACTIVATE, {"token": ""}, "InvalidTokenError", None),
    ("activate-blank", ACTIVATE, {"token": "   "}, "InvalidTokenError", None),
    ("activate-huge", ACTIVATE, {"token": HUGE}, "InvalidTokenError", None),
    ("activate-garbage", ACTIVATE, {"token": "../../etc/passwd?x=1&token=2"}, "InvalidTokenError", None),
    ("activate-nul", ACTIVATE, {"token": "abc\x00def"}, "InvalidTokenError", None),
    ("activate-surrogate", ACTIVATE, {"token": f"abc{SURROGATE}"}, "InvalidTokenError", None),
    ("activate-operator-looking", ACTIVATE, {"token": '{"$ne": null}'}, "InvalidTokenError", None),
    ("activate-wrong-type", ACTIVATE, {"token": {"$ne": None}}, VALIDATION, "token"),
    ("activate-number", ACTIVATE, {"token": 42}, VALIDATION, "token"),
    ("activate-null", ACTIVATE, {"token": None}, VALIDATION, "token"),
    ("activate-missing", ACTIVATE, {}, VALIDATION, "token"),
    # accountActivationResend
    ("resend-empty", RESEND, {"email": ""}, "InvalidInputError", "email"),
    ("resend-huge", RESEND, {"email": HUGE_EMAIL}, "InvalidInputError", "email"),
    ("resend-invalid", RESEND, {"email": "nope"}, "InvalidInputError", "email"),
    ("resend-nul", RESEND, {"email": "a\x00@example.com"}, "InvalidInputError", "email"),
    ("resend-surrogate", RESEND, {"email": f"{SURROGATE}@example.com"}, "InvalidInputError", "email"),
    ("resend-wrong-type", RESEND, {"email": 5}, VALIDATION, "email"),
    ("resend-object", RESEND, {"email": {"$gt": ""}}, VALIDATION, "email"),
    ("resend-missing", RESEND, {}, VALIDATION, "email"),
    # sessionCreate
    ("signin-empty-identifier", SIGN_IN_FULL, creds(""), "InvalidInputError", "identifier"),
    ("signin-empty-password", SIGN_IN_FULL, creds(password=""), "InvalidInputError", "password"),
    ("signin-both-empty", SIGN_IN_FULL, creds("", ""), "InvalidInputError", "identifier"),
    ("signin-huge-identifier", SIGN_IN_FULL, creds(HUGE), "InvalidInputError", "identifier"),
    ("signin-huge-password", SIGN_IN_FULL, creds(password=HUGE), "InvalidInputError", "password"),
    ("signin-300-char-password", SIGN_IN_FULL, creds(password="p" * 300), "InvalidCredentialsError", None),
    ("signin-not-an-email", SIGN_IN_FULL, creds("not an email"), "InvalidCredentialsError", None),
    ("signin-regex-identifier", SIGN_IN_FULL, creds(".*"), "InvalidCredentialsError", None),
    ("signin-nul-identifier", SIGN_IN_FULL, creds("a\x00@example.com"), "InvalidCredentialsError", None),
    ("signin-surrogate-identifier", SIGN_IN_FULL, creds(f"{SURROGATE}@example.com"), "InvalidInputError",
     "identifier"),
    ("signin-surrogate-password", SIGN_IN_FULL, creds(password=f"pass{SURROGATE}word"), "InvalidInputError",
     "password"),
    ("signin-wrong-type", SIGN_IN_FULL, {"input": {"identifier": {"$ne": None}, "password": "x"}}, VALIDATION,
     "identifier"),
    ("signin-missing-password", SIGN_IN_FULL, {"input": {"identifier": "a@example.com"}}, VALIDATION, "password"),
    ("signin-null-input", SIGN_IN_FULL, {"input": None}, VALIDATION, "input"),
    # adminSessionCreate
    ("admin-empty-email", ADMIN_SIGN_IN_FULL, admin_creds(""), "InvalidInputError", "email"),
    ("admin-empty-password", ADMIN_SIGN_IN_FULL, admin_creds(password=""), "InvalidInputError", "password"),
    ("admin-huge-email", ADMIN_SIGN_IN_FULL, admin_creds(HUGE_EMAIL), "InvalidInputError", "email"),
    ("admin-huge-password", ADMIN_SIGN_IN_FULL, admin_creds(password=HUGE), "InvalidInputError", "password"),
    ("admin-300-char-password", ADMIN_SIGN_IN_FULL, admin_creds(password="p" * 300), "InvalidCredentialsError",
     None),
    ("admin-invalid-email", ADMIN_SIGN_IN_FULL, admin_creds("not-an-email"), "InvalidCredentialsError", None),
    ("admin-surrogate-email", ADMIN_SIGN_IN_FULL, admin_creds(f"{SURROGATE}@example.com"), "InvalidInputError",
     "email"),
    ("admin-surrogate-password", ADMIN_SIGN_IN_FULL, admin_creds(password=f"x{SURROGATE}"), "InvalidInputError",
     "password"),
    ("admin-wrong-type", ADMIN_SIGN_IN_FULL, {"input": {"email": 1, "password": 2}}, VALIDATION, "email"),
    ("admin-missing-email", ADMIN_SIGN_IN_FULL, {"input": {"password": "x"}}, VALIDATION, "email"),
]


def assert_never_a_crash(response) -> None:
    assert response.status_code != 500, response.text[:500]
    assert response.status_code in (200, 400), response.status_code
    assert "Unexpected error." not in response.text, response.text[:500]
    assert "INTERNAL_SERVER_ERROR" not in response.text, response.text[:500]
    assert "Traceback" not in response.text


async def post_raw(gql, query: str, variables: dict, token: str | None = None):
    """POST as ASCII-escaped JSON, so that even a lone surrogate (\\ud800) reaches the server as a client sends it."""
    body = json.dumps({"query": query, "variables": variables}, ensure_ascii=True).encode()
    headers = {"content-type": "application/json", "x-forwarded-for": gql.ip}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return await gql.http.post("/graphql", content=body, headers=headers)


def fill(variables: dict) -> dict:
    """Put a fresh email where a case asks for one, so valid fields never collide between runs."""
    import uuid

    text = json.dumps(variables).replace("{unique}", f"bad-input-{uuid.uuid4().hex[:12]}@example.com")
    return json.loads(text)


def case_params():
    return [pytest.param(*case[1:], id=case[0]) for case in CASES]


@pytest.mark.parametrize(("query", "variables", "expected", "detail"), case_params())
async def test_bad_input_gets_a_typed_answer_never_a_crash(gql, query, variables, expected, detail):
    # given a bad input for one mutation
    # when it is sent
    response = await post_raw(gql, query, fill(variables))

    # then the server does not crash or mask an error
    assert_never_a_crash(response)
    body = response.json()

    if expected == VALIDATION:
        # and wrong types are refused by validation, naming what is wrong
        assert body.get("data") is None and body["errors"], body
        assert detail in " ".join(e["message"] for e in body["errors"]), body["errors"]
        return

    # and an expected failure is the typed union member
    assert "errors" not in body, body["errors"]
    (result,) = body["data"].values()
    assert result["__typename"] == expected, result
    if expected == "InvalidInputError":
        assert result["code"] == "INVALID_INPUT"
        assert detail in [f["field"] for f in result["fields"]], result
    elif expected == "PasswordPolicyError":
        assert result["code"] == "PASSWORD_POLICY" and result["field"] == "password"
        assert any(reason.startswith(detail) for reason in result["reasons"]), result["reasons"]
    elif expected == "InvalidTokenError":
        assert result["code"] == "INVALID_TOKEN"
    elif expected == "InvalidCredentialsError":
        assert result["code"] == "INVALID_CREDENTIALS"


BAD_BEARERS = [
    ("empty", ""),
    ("huge", "gwc_" + "A" * 100_000),
    ("spaces", "   "),
    ("not-bearer", None),
    ("latin1", "gwc_\xff\xfe"),
    ("admin-prefix-garbage", "gwa_garbage"),
]


@pytest.mark.parametrize("token", [t for _, t in BAD_BEARERS], ids=[i for i, _ in BAD_BEARERS])
async def test_session_end_with_a_bad_bearer_is_unauthenticated(gql, token):
    # given a made-up Authorization header
    header = "Basic dXNlcjpwYXNz" if token is None else f"Bearer {token}"

    # when it is used to sign out
    response = await gql.http.post("/graphql", json={"query": SIGN_OUT}, headers={
        "authorization": header.encode("latin-1"), "x-forwarded-for": gql.ip})

    # then the answer is 'sign in first', not a crash
    assert_never_a_crash(response)
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]


async def test_session_end_with_an_argument_it_does_not_take_is_a_validation_error(gql):
    # when sessionEnd is called with an argument
    response = await gql.post("mutation { sessionEnd(all: true) { ended } }")

    # then validation names the unknown argument
    assert_never_a_crash(response)
    assert "all" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"{not json", "application/json"),
    (b"", "application/json"),
    (b'{"query": 42}', "application/json"),
    (b'{"query": "mutation { sessionEnd { ended } }", "variables": "nope"}', "application/json"),
    (b'["a", "list"]', "application/json"),
    (b"\xff\xfe\xfd", "application/json"),
    (b"query=mutation", "text/plain"),
], ids=["broken-json", "empty-body", "query-not-string", "variables-not-object", "json-list", "not-utf8",
        "wrong-content-type"])
async def test_malformed_requests_are_refused_not_crashed(gql, body, content_type):
    # when the HTTP body itself is malformed
    response = await gql.http.post("/graphql", content=body, headers={
        "content-type": content_type, "x-forwarded-for": gql.ip})

    # then the gateway answers with a client error, never a 500
    assert response.status_code != 500, response.text[:300]
    assert 400 <= response.status_code < 500 or "errors" in response.json()


async def test_too_many_aliases_and_too_many_tokens_are_refused_without_masking(gql):
    # given a query with 16 aliases (the limit is 15) and one with more than 2000 tokens
    aliased = "query { " + " ".join(f"a{i}: me {{ id }}" for i in range(16)) + " }"
    long = "query { me { " + " ".join(["id"] * 2001) + " } }"

    # when both are sent
    too_many_aliases = await gql.post(aliased)
    too_many_tokens = await gql.post(long)

    # then each is refused with a message saying why
    assert_never_a_crash(too_many_aliases)
    assert_never_a_crash(too_many_tokens)
    assert "aliases" in too_many_aliases.json()["errors"][0]["message"]
    assert "token" in too_many_tokens.json()["errors"][0]["message"].lower()


ADMIN_SEARCH = """
query Search($search: String) {
  customers(first: 5, search: $search) { __typename }
}
"""
ADMIN_CUSTOMER = "query One($id: ID!) { customer(id: $id) { id } }"


async def test_admin_lookups_with_text_that_is_not_unicode_get_typed_answers(gql, runtime):
    # given a signed-in admin
    token = await admin_token(runtime, gql)

    # when they search, and look a customer up, with a lone surrogate
    search = await post_raw(gql, ADMIN_SEARCH, {"search": f"a{SURROGATE}"}, token=token)
    lookup = await post_raw(gql, ADMIN_CUSTOMER, {"id": SURROGATE}, token=token)

    # then the search is a bad argument (top-level BAD_USER_INPUT) and the lookup finds nobody, without a crash
    assert_never_a_crash(search)
    assert_never_a_crash(lookup)
    assert [e["extensions"] for e in search.json()["errors"]] == [{"code": "BAD_USER_INPUT", "field": "search"}]
    assert lookup.json() == {"data": {"customer": None}}
