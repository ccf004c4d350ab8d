"""Social sign-in and linking over HTTP, against a real OpenID provider on loopback (oidc-provider-mock:
Authlib's authorization server in a thread): the gateway fetches its discovery document and JWKS,
exchanges codes at its token endpoint and checks its signed ID tokens. The test plays the browser
(an httpx client with a cookie jar on the gateway's ASGI app) and the person at the provider (the
mock's authorization form)."""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import oidc_provider_mock
import pytest

from resolvers.context import RequestMeta
from resolvers.customers import disable
from stores import config
from stores.documents import AuditEventDocument, CustomerDocument, IdentityProviderDocument
from tests.flows import PASSWORD, active_customer, add_totp_factor, admin_token, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

ID_TOKEN_MINUTES = 5  # the provider's ID tokens live 5 minutes: a test moves the gateway's clock past that

START = """
mutation Start($input: SocialSignInStartInput!) { socialSignInStart(input: $input) { __typename
  ... on SocialAuthorizationStarted { authorizationUrl expiresAt }
  ... on InvalidInputError { fields { field code } }
  ... on Error { code message field } } }
"""
COMPLETE = """
mutation Complete($grant: String!) { socialSignInComplete(input: {grant: $grant}) { __typename
  ... on SessionCreated { token session { id } }
  ... on MfaRequired { challengeToken factors }
  ... on Error { code message field } } }
"""
LINK = """
mutation Link($input: LinkedIdentityAddInput!) { linkedIdentityAdd(input: $input) { __typename
  ... on SocialAuthorizationStarted { authorizationUrl }
  ... on ReauthenticationRequiredError { maxAgeMinutes }
  ... on Error { code message field } } }
"""
ME = """
{ me { id email emailVerified givenName familyName
       loginMethods { ... on LoginMethods { password linkedIdentities { id provider subject email } } } } }
"""
REMOVE = """
mutation Remove($id: ID!) { linkedIdentityRemove(id: $id) { __typename
  ... on LinkedIdentityRemoved { loginMethods { password linkedIdentities { id provider } } }
  ... on Error { code message } } }
"""
PROVIDERS = "{ socialSignInProviders { name displayName type } }"
CREATE_PROVIDER = """
mutation Create($input: IdentityProviderInput!) { identityProviderCreate(input: $input) { __typename
  ... on IdentityProvider { id name displayName type discoveryUrl authorizationEndpoint tokenEndpoint
                            userinfoEndpoint clientId clientSecretSet scopes enabled callbackUrl version }
  ... on InvalidInputError { fields { field code } } } }
"""
UPDATE_PROVIDER = """
mutation Update($id: ID!, $input: IdentityProviderInput!, $version: Int) {
  identityProviderUpdate(id: $id, input: $input, version: $version) { __typename
    ... on IdentityProvider { id name displayName clientSecretSet scopes enabled version }
    ... on ConflictError { currentVersion }
    ... on InvalidInputError { fields { field code } }
    ... on Error { code } } }
"""
DELETE_PROVIDER = """
mutation Delete($id: ID!) { identityProviderDelete(id: $id) { __typename
  ... on IdentityProviderDeleted { id } ... on Error { code } } }
"""
LIST_PROVIDERS = """
query List($app: ID!) { identityProviders(applicationId: $app) { id name clientSecretSet } }
"""


@pytest.fixture(scope="module")
def provider_server():
    """The OpenID provider, on a loopback port for this module; its base URL is its issuer."""
    with oidc_provider_mock.run_server_in_thread(access_token_max_age=timedelta(minutes=ID_TOKEN_MINUTES)) as server:
        yield f"http://localhost:{server.server_port}"


@contextlib.asynccontextmanager
async def browser(app):
    """A browser of its own: its own cookie jar, on the gateway's ASGI app."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


class Social:
    """An application with the mock as its provider ``acme``, and the steps of a flow."""

    def __init__(self, gql: GraphQLClient, client_id: str, application_id: str, provider_url: str) -> None:
        self.gql = gql
        self.client_id = client_id
        self.application_id = application_id
        self.provider_url = provider_url
        self.redirect = "https://shop.example.com/after-sign-in"
        self.headers = {"x-application-id": client_id}

    async def user(self, sub: str, **claims) -> None:
        """What the provider will say about ``sub`` (its claims)."""
        async with httpx.AsyncClient() as provider:
            response = await provider.put(f"{self.provider_url}/users/{quote(sub, safe='')}", json=claims)
            assert response.status_code == 204, response.text

    async def start(self, *, token: str | None = None, redirect: str | None = None, provider: str = "acme") -> dict:
        query, name = (LINK, "linkedIdentityAdd") if token else (START, "socialSignInStart")
        data = assert_no_errors(await self.gql(query, {"input": {"provider": provider,
                                                                   "redirectUrl": redirect or self.redirect}},
                                               headers=self.headers, token=token))
        return data[name]

    async def to_provider(self, client: httpx.AsyncClient, authorization_url: str) -> str:
        """The browser opens the start URL; returns the provider's authorization URL it was sent to."""
        assert authorization_url.startswith("http://gateway.test/oauth/start/acme?token=")
        response = await client.get(authorization_url)
        assert response.status_code == 303, response.text
        return response.headers["location"]

    async def at_provider(self, provider_authorization_url: str, sub: str) -> str:
        """The person signs in at the provider as ``sub``; returns the callback URL it sends them to."""
        async with httpx.AsyncClient() as provider:
            response = await provider.post(provider_authorization_url, data={"sub": sub})
        assert response.status_code == 302, response.text
        callback = response.headers["location"]
        assert callback.startswith("http://gateway.test/oauth/callback/acme?"), callback
        return callback

    async def back(self, client: httpx.AsyncClient, callback: str) -> httpx.Response:
        return await client.get(callback)

    async def flow(self, client: httpx.AsyncClient, sub: str, *, token: str | None = None) -> httpx.Response:
        """A whole flow in one browser, up to the gateway's answer to the callback."""
        started = await self.start(token=token)
        assert started["__typename"] == "SocialAuthorizationStarted", started
        provider_url = await self.to_provider(client, started["authorizationUrl"])
        return await self.back(client, await self.at_provider(provider_url, sub))

    async def complete(self, grant: str, headers: dict | None = None) -> dict:
        return assert_no_errors(await self.gql(COMPLETE, {"grant": grant},
                                               headers=headers or self.headers))["socialSignInComplete"]

    async def sign_in(self, client: httpx.AsyncClient, sub: str) -> dict:
        landed = returned(await self.flow(client, sub))
        assert "grant" in landed, landed
        return await self.complete(landed["grant"])


def returned(response: httpx.Response, redirect: str = "https://shop.example.com/after-sign-in") -> dict[str, str]:
    """The query the gateway sent the browser back to the application with."""
    assert response.status_code == 303, (response.status_code, response.text)
    location = response.headers["location"]
    assert location.startswith(redirect + "?"), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def refused_page(response: httpx.Response) -> str:
    """The reason on the gateway's "sign-in not completed" page."""
    assert response.status_code == 400, (response.status_code, response.text)
    return re.search(r'data-reason="([^"]*)"', response.text).group(1)


async def social_application(runtime, gql: GraphQLClient, provider_url: str, *, registration: bool = True,
                             **policy) -> Social:
    """An application that allows social registration (or not), redirects to the shop, and has the mock as
    its provider ``acme`` (added through the admin API)."""
    application_id, client_id = await new_application(
        runtime, registration={"social_enabled": registration}, **policy)
    await config.update_application(application_id, {"redirect_urls": ["https://shop.example.com/after-sign-in"]})
    runtime.forget_applications()
    admin = await admin_token(runtime, gql, "owner")
    created = assert_no_errors(await gql(CREATE_PROVIDER, {"input": {
        "applicationId": application_id, "name": "acme", "displayName": "Acme ID", "type": "OIDC",
        "discoveryUrl": provider_url, "clientId": f"gateway-{uuid.uuid4().hex[:8]}",
        "clientSecret": "a client secret"}}, token=admin))["identityProviderCreate"]
    assert created["__typename"] == "IdentityProvider", created
    return Social(gql, client_id, application_id, provider_url)


async def events(event_type: str, **data) -> list[dict]:
    query = {"type": event_type, **{f"data.{key}": value for key, value in data.items()}}
    return await AuditEventDocument.get_pymongo_collection().find(query).to_list()


def new_sub() -> str:
    return f"person-{uuid.uuid4().hex[:12]}"


# -- signing in and registering ------------------------------------------------------------------------

async def test_a_new_person_registers_with_the_provider_and_signs_in_again_as_the_same_customer(
        app, gql, runtime, provider_server):
    # given an application that allows social registration, and a person the provider knows
    social = await social_application(runtime, gql, provider_server)
    sub, email = new_sub(), unique_email("social-new")
    await social.user(sub, email=email, email_verified=True, given_name="Kate", family_name="Doe")

    # when they sign in with the provider
    async with browser(app) as client:
        first = await social.sign_in(client, sub)

    # then they have a session of a new, active, passwordless customer with the provider's verified email
    assert first["__typename"] == "SessionCreated", first
    me = assert_no_errors(await gql(ME, token=first["token"]))["me"]
    assert (me["email"], me["emailVerified"], me["givenName"], me["familyName"]) == (email, True, "Kate", "Doe")
    assert me["loginMethods"]["password"] is False
    assert [(i["provider"], i["subject"]) for i in me["loginMethods"]["linkedIdentities"]] == [("acme", sub)]

    # and signing in again (another browser) gives a session of the same customer
    async with browser(app) as client:
        again = await social.sign_in(client, sub)
    assert assert_no_errors(await gql("{ me { id } }", token=again["token"]))["me"]["id"] == me["id"]
    assert await events("customer.social_login_succeeded", provider="acme")


async def test_the_application_lists_its_providers_for_its_sign_in_buttons(gql, runtime, provider_server):
    # given an application with the provider acme
    social = await social_application(runtime, gql, provider_server)

    # when its frontend asks which providers it offers
    listed = assert_no_errors(await gql(PROVIDERS, headers=social.headers))["socialSignInProviders"]

    # then it gets acme's name, display name and type, and nothing secret
    assert listed == [{"name": "acme", "displayName": "Acme ID", "type": "OIDC"}]
