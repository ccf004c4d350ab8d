"""Reusable customer journeys, each through the public GraphQL API."""

from __future__ import annotations

from tests.support import GraphQLClient, Mailbox, assert_no_errors

REGISTER = """
mutation Register($input: AccountRegisterInput!) {
  accountRegister(input: $input) {
    __typename
    ... on AccountRegisterAccepted { requiresActivation }
    ... on Error { code message field }
    ... on InvalidInputError { fields { field code message } }
    ... on PasswordPolicyError { reasons }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

ACTIVATE = """
mutation Activate($token: String!) {
  accountActivate(token: $token) { __typename ... on Error { code message } }
}
"""

SIGN_IN = """
mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    __typename
    ... on SessionCreated { token session { id expiresAt } }
    ... on Error { code message field }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

ME = """
query Me {
  me { id username email emailVerified givenName familyName createdAt
       sessions { id createdAt lastSeenAt ipAddress userAgent current } }
}
"""

SIGN_OUT = "mutation { sessionEnd { ended } }"

PASSWORD = "correct horse battery staple"


async def register(gql: GraphQLClient, email: str, password: str = PASSWORD, **extra) -> dict:
    data = assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": password, **extra}}))
    return data["accountRegister"]


async def activation_token(mailbox: Mailbox, email: str) -> str:
    mail = await mailbox.wait_for(email, "activate")
    return mail.token("/activate")


async def sign_in(gql: GraphQLClient, identifier: str, password: str = PASSWORD) -> dict:
    data = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": identifier, "password": password}}))
    return data["sessionCreate"]


async def active_customer(gql: GraphQLClient, mailbox: Mailbox, email: str, password: str = PASSWORD, **extra) -> str:
    """Register, activate from the mailed link and sign in; returns the session token."""
    assert (await register(gql, email, password, **extra))["__typename"] == "AccountRegisterAccepted"
    token = await activation_token(mailbox, email)
    assert (assert_no_errors(await gql(ACTIVATE, {"token": token})))["accountActivate"]["__typename"] == "AccountActivated"
    session = await sign_in(gql, email, password)
    assert session["__typename"] == "SessionCreated", session
    return session["token"]
