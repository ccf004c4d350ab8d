"""Passkeys in a real browser: Debian's chromium driven by Playwright, with Chromium's virtual
authenticator (CDP ``WebAuthn.addVirtualAuthenticator``), against the gateway served by uvicorn on
localhost. A small test page (served by the test beside the gateway) calls the GraphQL API with
``fetch`` and the browser's own WebAuthn API, as a frontend would."""

from __future__ import annotations

import httpx
import pytest
from starlette.responses import HTMLResponse

from tests.browser import launched_chromium, served_gateway
from tests.flows import active_customer
from tests.support import GraphQLClient, unique_email

TEST_PAGE = "/passkey-test"

GRAPHQL = """
async (query, variables, token) => {
  const headers = {"content-type": "application/json"};
  if (token) headers.authorization = "Bearer " + token;
  const response = await fetch("/graphql", {method: "POST", headers, body: JSON.stringify({query, variables})});
  return response.json();
}
"""

ADD_PASSKEY = """
async ({token}) => {
  const gql = %s;
  const start = await gql(`mutation { passkeyRegisterStart { __typename
      ... on PasskeyRegistrationOptions { publicKey } } }`, {}, token);
  const options = PublicKeyCredential.parseCreationOptionsFromJSON(start.data.passkeyRegisterStart.publicKey);
  const credential = await navigator.credentials.create({publicKey: options});
  const finish = await gql(`mutation($input: PasskeyRegisterFinishInput!) { passkeyRegisterFinish(input: $input) {
      __typename ... on PasskeyAdded { passkey { name } } ... on Error { code message } } }`,
      {input: {credential: credential.toJSON(), name: "Virtual authenticator"}}, token);
  return finish.data.passkeyRegisterFinish;
}
""" % GRAPHQL

SIGN_IN = """
async ({userVerification}) => {
  const gql = %s;
  const start = await gql(`mutation { passkeySignInStart { __typename ... on PasskeySignInOptions { publicKey } } }`);
  const publicKey = start.data.passkeySignInStart.publicKey;
  if (userVerification) publicKey.userVerification = userVerification;  // a frontend that asks for less
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(publicKey);
  const credential = await navigator.credentials.get({publicKey: options});
  const finish = await gql(`mutation($input: PasskeySignInFinishInput!) { passkeySignInFinish(input: $input) {
      __typename ... on SessionCreated { token } ... on Error { code message } } }`,
      {input: {credential: credential.toJSON()}});
  const signedIn = finish.data.passkeySignInFinish;
  if (signedIn.__typename !== "SessionCreated") return {signedIn};
  const me = await gql(`{ me { email loginMethods { ... on LoginMethods { passkeys { name lastUsedAt } } } } }`, {},
                       signedIn.token);
  return {signedIn, me: me.data.me};
}
""" % GRAPHQL


async def serve_test_page(scope, receive, send):
    await HTMLResponse("<!doctype html><title>Passkey test</title><p>A frontend of the gateway.</p>")(
        scope, receive, send)


@pytest.fixture(scope="module")
async def live_localhost(settings, clock):
    """The gateway on http://localhost:<port> (a secure context, and a relying party id browsers accept),
    with the test page beside it."""
    def around(gateway):
        async def app(scope, receive, send):
            if scope["type"] == "http" and scope["path"] == TEST_PAGE:
                return await serve_test_page(scope, receive, send)
            return await gateway(scope, receive, send)
        return app

    async with served_gateway(settings, clock, passkeys=True, around=around) as (base, _runtime):
        yield base


@pytest.fixture(scope="module")
async def browser():
    async with launched_chromium() as launched:
        yield launched


async def test_a_passkey_made_by_the_browser_signs_in_alone(live_localhost, browser, mailbox):
    async with httpx.AsyncClient(base_url=live_localhost) as http:
        # given a signed-in customer, and a browser with a platform authenticator that verifies its user
        email = unique_email("browser-passkey")
        token = await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email)
        context = await browser.new_context()
        page = await context.new_page()
        try:
            await page.goto(f"{live_localhost}{TEST_PAGE}")
            cdp = await context.new_cdp_session(page)
            await cdp.send("WebAuthn.enable")
            authenticator = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
                "isUserVerified": True, "automaticPresenceSimulation": True}})

            # when the page adds a passkey for them through the API and the browser's WebAuthn
            added = await page.evaluate(ADD_PASSKEY, {"token": token})

            # then the passkey is kept, and the authenticator holds a discoverable credential for localhost
            assert added == {"__typename": "PasskeyAdded", "passkey": {"name": "Virtual authenticator"}}
            held = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]})
            assert [(c["rpId"], c["isResidentCredential"]) for c in held["credentials"]] == [("localhost", True)]

            # when the page signs in with a passkey alone, naming nobody
            result = await page.evaluate(SIGN_IN, {"userVerification": None})

            # then the customer is signed in, and the passkey shows its use
            assert result["signedIn"]["__typename"] == "SessionCreated", result
            assert result["me"]["email"] == email
            assert result["me"]["loginMethods"]["passkeys"][0]["lastUsedAt"] is not None

            # when the authenticator no longer verifies its user and the page asks it for presence only
            await cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator["authenticatorId"],
                                                        "isUserVerified": False})
            refused = await page.evaluate(SIGN_IN, {"userVerification": "discouraged"})

            # then the gateway does not let a passkey without user verification sign in alone
            assert refused["signedIn"]["__typename"] == "InvalidCredentialsError", refused
        finally:
            await context.close()
