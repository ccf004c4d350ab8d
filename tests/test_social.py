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

import warnings

import authlib.deprecate
import httpx
import pytest

with warnings.catch_warnings():  # the mock imports Authlib's deprecated authlib.jose
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    import oidc_provider_mock

from resolvers.context import RequestMeta
from resolvers.customers import disable
from stores import config
from stores.documents import AuditEventDocument, CustomerDocument, IdentityProviderDocument
from tests.flows import PASSWORD, active_customer, add_totp_factor, admin_token, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

# The mock provider is Authlib's own server code, which warns about its own deprecated internals.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock")]

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
        self.client_id = client_id
        self.application_id = application_id
        self.provider_url = provider_url
        self.redirect = "https://shop.example.com/after-sign-in"
        self.headers = {"x-application-id": client_id}
        self.gql = gql.for_application(self.headers)  # the application's frontend

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
    me = assert_no_errors(await social.gql(ME, token=first["token"]))["me"]
    assert (me["email"], me["emailVerified"], me["givenName"], me["familyName"]) == (email, True, "Kate", "Doe")
    assert me["loginMethods"]["password"] is False
    assert [(i["provider"], i["subject"]) for i in me["loginMethods"]["linkedIdentities"]] == [("acme", sub)]

    # and signing in again (another browser) gives a session of the same customer
    async with browser(app) as client:
        again = await social.sign_in(client, sub)
    assert assert_no_errors(await social.gql("{ me { id } }", token=again["token"]))["me"]["id"] == me["id"]
    assert await events("customer.social_login_succeeded", provider="acme")


async def test_the_application_lists_its_providers_for_its_sign_in_buttons(gql, runtime, provider_server):
    # given an application with the provider acme
    social = await social_application(runtime, gql, provider_server)

    # when its frontend asks which providers it offers
    listed = assert_no_errors(await gql(PROVIDERS, headers=social.headers))["socialSignInProviders"]

    # then it gets acme's name, display name and type, and nothing secret
    assert listed == [{"name": "acme", "displayName": "Acme ID", "type": "OIDC"}]


async def test_a_verified_email_that_has_an_account_is_never_linked_silently(app, gql, mailbox, runtime,
                                                                             provider_server):
    # given a customer who signs in with a password, and a provider identity with the same (verified) email
    social = await social_application(runtime, gql, provider_server)
    email = unique_email("social-taken")
    token = await active_customer(gql, mailbox, email, headers=social.headers)
    sub = new_sub()
    await social.user(sub, email=email, email_verified=True)

    # when someone signs in with that provider identity
    async with browser(app) as client:
        landed = returned(await social.flow(client, sub))

    # then they are sent back with account_exists: no grant, no link, no second account
    assert landed == {"error": "account_exists"}
    me = assert_no_errors(await social.gql(ME, token=token))["me"]
    assert me["loginMethods"]["linkedIdentities"] == []
    assert await CustomerDocument.get_pymongo_collection().count_documents({"email": email}) == 1
    assert await events("customer.social_login_failed", reason="account_exists")


async def test_an_unverified_email_does_not_register_and_a_closed_policy_registers_nobody(app, gql, runtime,
                                                                                           provider_server):
    # given an application that allows social registration, and a provider that did not verify the email
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-unverified"), email_verified=False)

    # when that person signs in
    async with browser(app) as client:
        unverified = returned(await social.flow(client, sub))

    # then nothing is registered
    assert unverified == {"error": "email_not_verified"}

    # and where the policy allows no social registration, a verified newcomer is not registered either
    closed = await social_application(runtime, gql, provider_server, registration=False)
    other = new_sub()
    await closed.user(other, email=unique_email("social-closed"), email_verified=True)
    async with browser(app) as client:
        assert returned(await closed.flow(client, other)) == {"error": "not_registered"}


async def test_a_signed_in_customer_links_the_provider_then_signs_in_with_it_and_unlinks_it(
        app, gql, mailbox, runtime, provider_server):
    # given a customer with a password, signed in just now, and a provider identity with another email
    social = await social_application(runtime, gql, provider_server)
    email = unique_email("social-link")
    token = await active_customer(gql, mailbox, email, headers=social.headers)
    customer_id = assert_no_errors(await social.gql("{ me { id } }", token=token))["me"]["id"]
    sub = new_sub()
    await social.user(sub, email=unique_email("social-other-address"), email_verified=True)

    # when they link it from their account settings
    async with browser(app) as client:
        landed = returned(await social.flow(client, sub, token=token))

    # then they come back with linked=acme, and the identity is one of their login methods
    assert landed == {"linked": "acme"}
    methods = assert_no_errors(await social.gql(ME, token=token))["me"]["loginMethods"]
    assert [(i["provider"], i["subject"]) for i in methods["linkedIdentities"]] == [("acme", sub)]
    assert await events("customer.identity_linked", provider="acme")
    # and the account's address is told, in case it was not them
    linked_notice = await mailbox.wait_for(email, "with acme was linked")
    assert "remove it from your sign-in methods" in linked_notice.text

    # when they sign in with the provider (another browser)
    async with browser(app) as client:
        signed_in = await social.sign_in(client, sub)

    # then it is their account
    assert assert_no_errors(await social.gql("{ me { id } }", token=signed_in["token"]))["me"]["id"] == customer_id

    # when they unlink it (the password stays a way in)
    removed = assert_no_errors(await social.gql(REMOVE, {"id": methods["linkedIdentities"][0]["id"]}, token=token))
    assert removed["linkedIdentityRemove"]["loginMethods"]["linkedIdentities"] == []
    await mailbox.wait_for(email, "with acme was removed")

    # then the provider no longer signs anyone in to it: a new identity with no account (its own email)
    async with browser(app) as client:
        after = await social.sign_in(client, sub)
    assert assert_no_errors(await social.gql("{ me { id } }", token=after["token"]))["me"]["id"] != customer_id


async def test_linking_needs_a_recent_authentication(gql, mailbox, runtime, clock, provider_server):
    # given a customer who signed in 11 minutes ago (the policy asks for 10)
    social = await social_application(runtime, gql, provider_server)
    token = await active_customer(gql, mailbox, unique_email("social-stale"), headers=social.headers)
    clock.advance(minutes=11)

    # when they ask to link a provider
    started = await social.start(token=token)

    # then they must confirm it is them first
    assert (started["__typename"], started["maxAgeMinutes"]) == ("ReauthenticationRequiredError", 10)


async def test_an_identity_another_customer_holds_is_not_linked(app, gql, mailbox, runtime, provider_server):
    # given a provider identity linked to one customer
    social = await social_application(runtime, gql, provider_server)
    first = await active_customer(gql, mailbox, unique_email("social-holder"), headers=social.headers)
    second = await active_customer(gql, mailbox, unique_email("social-taker"), headers=social.headers)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-shared"), email_verified=True)
    async with browser(app) as client:
        assert returned(await social.flow(client, sub, token=first)) == {"linked": "acme"}

    # when another customer links the same identity
    async with browser(app) as client:
        landed = returned(await social.flow(client, sub, token=second))

    # then it is refused and stays with the first
    assert landed == {"error": "identity_in_use"}
    assert assert_no_errors(await social.gql(ME, token=second))["me"]["loginMethods"]["linkedIdentities"] == []
    assert len(assert_no_errors(await social.gql(ME, token=first))["me"]["loginMethods"]["linkedIdentities"]) == 1


async def test_a_disabled_customer_gets_nothing(app, gql, mailbox, runtime, provider_server):
    # given a customer with a linked provider identity, disabled by an admin
    social = await social_application(runtime, gql, provider_server)
    token = await active_customer(gql, mailbox, unique_email("social-disabled"), headers=social.headers)
    customer_id = assert_no_errors(await social.gql("{ me { id } }", token=token))["me"]["id"]
    sub = new_sub()
    await social.user(sub, email=unique_email("social-disabled-provider"), email_verified=True)
    async with browser(app) as client:
        assert returned(await social.flow(client, sub, token=token)) == {"linked": "acme"}
    ctx = await runtime.context(client_id=social.client_id, principal=None, request=RequestMeta())
    await disable(ctx, customer_id)

    # when they sign in with the provider
    async with browser(app) as client:
        landed = returned(await social.flow(client, sub))

    # then no grant, no session
    assert landed == {"error": "sign_in_failed"}


async def test_a_customer_with_a_second_factor_is_asked_for_it(app, gql, mailbox, runtime, provider_server):
    # given a customer with an authenticator app and a linked provider identity
    social = await social_application(runtime, gql, provider_server)
    token = await active_customer(gql, mailbox, unique_email("social-mfa"), headers=social.headers)
    customer_id = assert_no_errors(await social.gql("{ me { id } }", token=token))["me"]["id"]
    sub = new_sub()
    await social.user(sub, email=unique_email("social-mfa-provider"), email_verified=True)
    async with browser(app) as client:
        assert returned(await social.flow(client, sub, token=token)) == {"linked": "acme"}
    await add_totp_factor(customer_id, runtime.clock.now())

    # when they sign in with the provider
    async with browser(app) as client:
        outcome = await social.sign_in(client, sub)

    # then the provider was the first factor only: the code comes next, and no session yet
    assert outcome["__typename"] == "MfaRequired" and outcome["factors"] == ["TOTP"], outcome


# -- the grant -----------------------------------------------------------------------------------------

async def test_a_grant_works_once_and_only_for_its_application(app, gql, runtime, provider_server):
    # given a social sign-in that came back with a grant
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-grant"), email_verified=True)
    async with browser(app) as client:
        grant = returned(await social.flow(client, sub))["grant"]

    # when another application's frontend exchanges it
    _, other_client_id = await new_application(runtime)
    elsewhere = await social.complete(grant, headers={"x-application-id": other_client_id})

    # then it is refused, and used up
    assert elsewhere["__typename"] == "InvalidTokenError"
    assert (await social.complete(grant))["__typename"] == "InvalidTokenError"

    # and a fresh grant works once
    async with browser(app) as client:
        grant = returned(await social.flow(client, sub))["grant"]
    assert (await social.complete(grant))["__typename"] == "SessionCreated"
    assert (await social.complete(grant))["__typename"] == "InvalidTokenError"


# -- refusals ------------------------------------------------------------------------------------------

async def test_a_redirect_url_outside_the_allow_list_is_refused(gql, runtime, provider_server):
    # given an application that allows https://shop.example.com/after-sign-in
    social = await social_application(runtime, gql, provider_server)

    for url in ("https://evil.example.net/after-sign-in", "https://shop.example.com.evil.net/after-sign-in",
                "https://shop.example.com/after-sign-in-elsewhere", "http://shop.example.com/after-sign-in",
                "javascript:alert(1)"):
        # when a flow is started with a URL outside it
        started = await social.start(redirect=url)

        # then it is refused before anything is written
        assert (started["__typename"], started["fields"]) == (
            "InvalidInputError", [{"field": "redirectUrl", "code": "NOT_ALLOWED"}]), url

    # and an unknown provider is not found
    unknown = await social.start(provider="nobody")
    assert (unknown["__typename"], unknown["field"]) == ("NotFoundError", "provider")


async def test_a_callback_in_another_browser_is_refused(app, gql, runtime, provider_server):
    # given an attacker who completed the provider step with their own account, and kept the callback URL
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-csrf"), email_verified=True)
    started = await social.start()
    async with browser(app) as attacker:
        callback = await social.at_provider(await social.to_provider(attacker, started["authorizationUrl"]), sub)

        # when the victim's browser (which holds a binding cookie of its own from an earlier flow) is made to
        # open it (login CSRF)
        async with browser(app) as victim:
            await social.to_provider(victim, (await social.start())["authorizationUrl"])
            assert victim.cookies.get("gw_oauth")
            refused = await social.back(victim, callback)

        # then the state does not match this browser: the gateway's page, no grant, nothing used up
        assert refused_page(refused) == "state_mismatch"
        assert "location" not in refused.headers
        assert await events("customer.social_login_failed", reason="state_mismatch")

        # and the browser that started the flow still completes it
        assert "grant" in returned(await social.back(attacker, callback))


async def test_a_state_the_gateway_never_issued_is_refused(app, gql, runtime, provider_server):
    # given a flow at its callback
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-state"), email_verified=True)
    async with browser(app) as client:
        started = await social.start()
        callback = await social.at_provider(await social.to_provider(client, started["authorizationUrl"]), sub)

        # when the state is changed on the way back
        tampered = re.sub(r"state=[^&]+", "state=made-up-state", callback)
        refused = await social.back(client, tampered)

    # then it is refused
    assert refused_page(refused) == "unknown_state"


async def test_a_replayed_callback_is_refused(app, gql, runtime, provider_server):
    # given a callback that signed someone in
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-replay"), email_verified=True)
    async with browser(app) as client:
        started = await social.start()
        callback = await social.at_provider(await social.to_provider(client, started["authorizationUrl"]), sub)
        assert "grant" in returned(await social.back(client, callback))

        # when the same callback (state and code) comes again
        again = returned(await social.back(client, callback))

    # then it is refused without a second grant
    assert again == {"error": "replayed"}
    assert await events("customer.social_login_failed", reason="replayed")


async def test_an_id_token_with_another_nonce_is_refused(app, gql, runtime, provider_server):
    # given a flow whose authorization request was changed on its way to the provider (another nonce)
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-nonce"), email_verified=True)
    async with browser(app) as client:
        started = await social.start()
        request = await social.to_provider(client, started["authorizationUrl"])
        assert "nonce=" in request and "code_challenge_method=S256" in request and "state=" in request
        forged = re.sub(r"nonce=[^&]+", "nonce=the-attackers-nonce", request)

        # when the provider's answer (an ID token with that nonce) comes back
        landed = returned(await social.back(client, await social.at_provider(forged, sub)))

    # then the ID token is refused, for its nonce
    assert landed == {"error": "invalid_id_token"}
    assert await events("customer.social_login_failed", reason="invalid_id_token", detail="nonce")


async def test_an_expired_id_token_is_refused(app, gql, runtime, clock, provider_server):
    # given a flow at its callback, whose ID token will be issued for 5 minutes
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-expired"), email_verified=True)
    async with browser(app) as client:
        started = await social.start()
        callback = await social.at_provider(await social.to_provider(client, started["authorizationUrl"]), sub)

        # when the gateway's clock reads 7 minutes later (past the token's expiry and the leeway, within the flow's)
        clock.advance(minutes=ID_TOKEN_MINUTES + 2)
        landed = returned(await social.back(client, callback))

    # then the ID token is refused as expired
    assert landed == {"error": "invalid_id_token"}
    assert await events("customer.social_login_failed", reason="invalid_id_token", detail="exp")


async def test_a_start_url_works_once(app, gql, runtime, provider_server):
    # given a started flow whose start URL a browser opened
    social = await social_application(runtime, gql, provider_server)
    started = await social.start()
    async with browser(app) as client:
        await social.to_provider(client, started["authorizationUrl"])

    # when it is opened again (the same or another browser)
    async with browser(app) as other:
        again = await other.get(started["authorizationUrl"])

    # then it is refused: the flow belongs to the first browser
    assert refused_page(again) == "invalid_start"


async def test_the_person_declining_at_the_provider_is_sent_back_with_access_denied(app, gql, runtime,
                                                                                     provider_server):
    # given a flow at the provider
    social = await social_application(runtime, gql, provider_server)
    async with browser(app) as client:
        started = await social.start()
        request = await social.to_provider(client, started["authorizationUrl"])

        # when the person denies it (the provider answers error=access_denied with the request's state, as
        # RFC 6749 4.1.2.1 has it; the mock leaves the state out, so the test adds it back)
        async with httpx.AsyncClient() as provider:
            denied = await provider.post(request, data={"action": "deny"})
        state = parse_qs(urlsplit(request).query)["state"][0]
        landed = returned(await social.back(client, f"{denied.headers['location']}&state={state}"))

    # then the application hears access_denied
    assert landed == {"error": "access_denied"}


async def test_audit_events_of_a_flow_carry_no_secrets(app, gql, runtime, provider_server):
    # given a complete sign-in
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-audit"), email_verified=True)
    async with browser(app) as client:
        started = await social.start()
        callback = await social.at_provider(await social.to_provider(client, started["authorizationUrl"]), sub)
        landed = returned(await social.back(client, callback))
        signed_in = await social.complete(landed["grant"])

    # then no audit event holds the start token, the state, the code, the grant or the session token
    query = parse_qs(urlsplit(callback).query)
    secrets_seen = [started["authorizationUrl"].split("token=")[1], query["state"][0], query["code"][0],
                    landed["grant"], signed_in["token"]]
    stored = str(await AuditEventDocument.get_pymongo_collection().find({"application_id": {"$exists": True}})
                 .to_list())
    assert not [secret for secret in secrets_seen if secret in stored]


# -- administration ------------------------------------------------------------------------------------

async def test_admins_manage_providers_and_never_read_the_secret_back(gql, runtime, provider_server):
    # given an application and an admin who may change applications
    application_id, _ = await new_application(runtime)
    admin = await admin_token(runtime, gql, "owner")

    # when they add a generic OpenID Connect provider by its issuer URL, with a secret
    created = assert_no_errors(await gql(CREATE_PROVIDER, {"input": {
        "applicationId": application_id, "name": "corp-sso", "discoveryUrl": provider_server + "/",
        "clientId": "gateway", "clientSecret": "s3cr3t-value"}}, token=admin))["identityProviderCreate"]

    # then it has the discovery URL, default scopes and callback URL, and says only that a secret is set
    assert created["discoveryUrl"] == f"{provider_server}/.well-known/openid-configuration"
    assert (created["type"], created["scopes"], created["clientSecretSet"]) == ("OIDC", ["openid", "email", "profile"],
                                                                                True)
    assert created["callbackUrl"] == "http://gateway.test/oauth/callback/corp-sso"
    stored = await IdentityProviderDocument.get_pymongo_collection().find_one({"_id": created["id"]})
    assert "s3cr3t-value" not in str(stored)
    listed = assert_no_errors(await gql(LIST_PROVIDERS, {"app": application_id}, token=admin))
    assert listed["identityProviders"] == [{"id": created["id"], "name": "corp-sso", "clientSecretSet": True}]

    # when they change it at a stale version, then at the current one (removing the secret)
    stale = assert_no_errors(await gql(UPDATE_PROVIDER, {"id": created["id"], "version": 0,
                                                         "input": {"enabled": False}}, token=admin))
    updated = assert_no_errors(await gql(UPDATE_PROVIDER, {"id": created["id"], "version": created["version"],
                                                           "input": {"clientSecret": None, "scopes": ["email"]}},
                                         token=admin))["identityProviderUpdate"]

    # then the stale write is a conflict, the current one applies
    assert stale["identityProviderUpdate"] == {"__typename": "ConflictError", "currentVersion": created["version"],
                                               "code": "CONFLICT"}
    assert (updated["clientSecretSet"], updated["scopes"], updated["version"]) == (False, ["openid", "email"],
                                                                                   created["version"] + 1)

    # when they delete it, it is gone
    deleted = assert_no_errors(await gql(DELETE_PROVIDER, {"id": created["id"]}, token=admin))
    assert deleted["identityProviderDelete"] == {"__typename": "IdentityProviderDeleted", "id": created["id"]}
    assert assert_no_errors(await gql(LIST_PROVIDERS, {"app": application_id}, token=admin))["identityProviders"] == []


async def test_provider_settings_are_checked(gql, runtime):
    # given an application with a provider named google
    application_id, _ = await new_application(runtime)
    admin = await admin_token(runtime, gql, "owner")
    google = {"applicationId": application_id, "name": "google", "type": "GOOGLE", "clientId": "id"}
    assert assert_no_errors(await gql(CREATE_PROVIDER, {"input": google},
                                      token=admin))["identityProviderCreate"]["__typename"] == "IdentityProvider"

    cases = [
        ({**google}, [("name", "TAKEN")]),
        ({"applicationId": application_id, "name": "Bad Name!", "discoveryUrl": "https://idp.example.com",
          "clientId": "id"}, [("name", "INVALID")]),
        ({"applicationId": application_id, "name": "plain-http", "discoveryUrl": "http://idp.example.com",
          "clientId": "id"}, [("discoveryUrl", "INVALID")]),
        ({"applicationId": application_id, "name": "no-url", "clientId": "id"}, [("discoveryUrl", "REQUIRED")]),
        ({"applicationId": application_id, "name": "gh", "type": "GITHUB", "clientId": "id",
          "discoveryUrl": "https://github.com"}, [("discoveryUrl", "NOT_ALLOWED")]),
        ({"applicationId": "no-such-app", "name": "x", "discoveryUrl": "https://idp.example.com", "clientId": "id"},
         [("applicationId", "NOT_FOUND")]),
        ({"applicationId": application_id, "name": "no-client", "discoveryUrl": "https://idp.example.com"},
         [("clientId", "REQUIRED")]),
    ]
    for given, expected in cases:
        # when an admin gives invalid settings
        result = assert_no_errors(await gql(CREATE_PROVIDER, {"input": given}, token=admin))["identityProviderCreate"]

        # then each is named
        assert result["__typename"] == "InvalidInputError", (given, result)
        assert [(f["field"], f["code"]) for f in result["fields"]] == expected, given


async def test_presets_fill_the_providers_endpoints(gql, runtime):
    # given an application and an admin
    application_id, _ = await new_application(runtime)
    admin = await admin_token(runtime, gql, "owner")
    expected = {
        "GOOGLE": ("https://accounts.google.com/.well-known/openid-configuration", None, ["openid", "email", "profile"]),
        "MICROSOFT": ("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration", None,
                      ["openid", "email", "profile"]),
        "APPLE": ("https://appleid.apple.com/.well-known/openid-configuration", None, ["openid", "email", "name"]),
        "GITHUB": (None, "https://github.com/login/oauth/authorize", ["read:user", "user:email"]),
    }
    for kind, (discovery, authorization, scopes) in expected.items():
        # when they add each preset with nothing but a client id
        created = assert_no_errors(await gql(CREATE_PROVIDER, {"input": {
            "applicationId": application_id, "name": kind.lower(), "type": kind, "clientId": "id"}},
            token=admin))["identityProviderCreate"]

        # then the preset's discovery URL (or OAuth 2 endpoints), scopes and display name are filled in
        assert (created["discoveryUrl"], created["authorizationEndpoint"], created["scopes"]) == \
            (discovery, authorization, scopes), kind
        assert created["displayName"] == kind.title().replace("Github", "GitHub")
    github = await IdentityProviderDocument.get_pymongo_collection().find_one(
        {"application_id": application_id, "name": "github"})
    assert (github["token_endpoint"], github["userinfo_endpoint"], github["emails_endpoint"]) == (
        "https://github.com/login/oauth/access_token", "https://api.github.com/user",
        "https://api.github.com/user/emails")


async def test_managing_providers_needs_the_applications_permissions(gql, mailbox, runtime):
    # given a customer and a support admin (no applications:write)
    application_id, _ = await new_application(runtime)
    customer = await active_customer(gql, mailbox, unique_email("social-perm"))
    helpdesk = await admin_token(runtime, gql, "support")
    create = {"input": {"applicationId": application_id, "name": "x", "type": "GOOGLE", "clientId": "id"}}

    # when they try to add a provider, then they are denied
    assert_denied(await gql(CREATE_PROVIDER, create, token=customer), "FORBIDDEN")
    assert_denied(await gql(CREATE_PROVIDER, create, token=helpdesk), "FORBIDDEN")
    assert_denied(await gql(CREATE_PROVIDER, create), "UNAUTHENTICATED")


# -- the provider's network side (gateway/oauth.py), against a small local server ------------------------

class Documents:
    """A loopback HTTP server answering each path with the JSON (or bytes) a test put there, and counting
    the requests per path."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.bodies: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        documents = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server hook
                documents.hits[self.path] = documents.hits.get(self.path, 0) + 1
                body = documents.bodies.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body or b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path: str, document) -> None:
        import json
        self.bodies[path] = document if isinstance(document, bytes) else json.dumps(document).encode()

    def metadata(self, **changes) -> dict:
        return {"issuer": self.base, "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token", "jwks_uri": f"{self.base}/jwks", **changes}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def documents():
    served = Documents()
    yield served
    served.close()


def oidc_provider(discovery_url: str, kind: str = "OIDC") -> IdentityProviderDocument:
    """A provider as stored (built without a database: Beanie binds documents to one)."""
    from datetime import UTC, datetime

    from stores.documents import IdentityProviderType
    return IdentityProviderDocument.model_construct(
        id="p1", application_id="a1", name="acme", display_name="Acme", type=IdentityProviderType(kind),
        discovery_url=discovery_url, client_id="gateway", scopes=["openid"], created_at=datetime.now(UTC))


def oauth_client(settings, **changes):
    from gateway.oauth import OAuthClient
    return OAuthClient(settings.model_copy(update=changes))


async def refusal_of(coroutine) -> tuple[str, str]:
    from resolvers.social import ProviderRefused
    with pytest.raises(ProviderRefused) as refused:
        await coroutine
    return refused.value.reason.value, refused.value.detail


async def test_discovery_documents_are_bounded_checked_and_cached(settings, documents):
    # given a provider whose discovery document is served locally
    client = oauth_client(settings, oidc_max_response_bytes=4096)
    provider = oidc_provider(f"{documents.base}/.well-known/openid-configuration")
    documents.put("/.well-known/openid-configuration", documents.metadata())

    # when the gateway reads it twice
    first = await client.metadata(provider)
    second = await client.metadata(provider)

    # then it fetched it once, and kept what it uses
    assert first == second and first["issuer"] == documents.base
    assert documents.hits["/.well-known/openid-configuration"] == 1

    # and a document larger than the limit is refused without reading on
    big = oidc_provider(f"{documents.base}/big/.well-known/openid-configuration")
    documents.put("/big/.well-known/openid-configuration", b'{"padding": "' + b"x" * 10_000 + b'"}')
    assert await refusal_of(client.metadata(big)) == ("provider_unavailable", "too_large")


async def test_metadata_naming_another_issuer_or_plain_http_endpoints_is_refused(settings, documents):
    client = oauth_client(settings)
    cases = {
        "/a": (documents.metadata(issuer="https://someone-else.example.com"), "issuer"),
        "/b": (documents.metadata(token_endpoint="http://tokens.example.com/token"), "token_endpoint"),
        "/c": (documents.metadata(jwks_uri=None), "jwks_uri"),
    }
    for prefix, (document, detail) in cases.items():
        # given a discovery document that does not hold
        if detail != "issuer":
            document["issuer"] = documents.base + prefix
        documents.put(f"{prefix}/.well-known/openid-configuration", document)

        # when the gateway reads it, then it is refused, naming what is wrong
        provider = oidc_provider(f"{documents.base}{prefix}/.well-known/openid-configuration")
        assert await refusal_of(client.metadata(provider)) == ("provider_unavailable", detail), prefix


def test_a_microsoft_id_token_must_come_from_its_own_tenant():
    from gateway.oauth import issuer_option

    # given Microsoft's multi-tenant issuer template
    provider = oidc_provider("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
                             kind="MICROSOFT")
    rule = issuer_option(provider, "https://login.microsoftonline.com/{tenantid}/v2.0")["validate"]

    # then a token's issuer must name the tenant of its own tid claim
    tenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
    assert rule({"tid": tenant}, f"https://login.microsoftonline.com/{tenant}/v2.0")
    assert not rule({"tid": tenant}, "https://login.microsoftonline.com/another-tenant/v2.0")
    assert not rule({}, "https://login.microsoftonline.com/{tenantid}/v2.0")


async def test_deleting_the_account_frees_the_identity_and_leaves_no_flows_or_claims(app, gql, runtime,
                                                                                      provider_server):
    from stores.documents import LinkedIdentityClaimDocument, SocialFlowDocument

    # given a customer who registered with the provider
    social = await social_application(runtime, gql, provider_server)
    sub = new_sub()
    await social.user(sub, email=unique_email("social-erase"), email_verified=True)
    async with browser(app) as client:
        token = (await social.sign_in(client, sub))["token"]
    customer_id = assert_no_errors(await social.gql("{ me { id } }", token=token))["me"]["id"]

    # when they delete their account (passwordless: the recent sign-in is the proof)
    deleted = assert_no_errors(await social.gql("mutation { accountDelete(input: {}) { __typename } }", token=token,
                                         headers=social.headers))
    assert deleted["accountDelete"]["__typename"] == "AccountDeleted"

    # then no flow or claim names them
    for document in (SocialFlowDocument, LinkedIdentityClaimDocument):
        assert await document.get_pymongo_collection().count_documents({"customer_id": customer_id}) == 0

    # and the same person can register again with the provider (the identity is free)
    async with browser(app) as client:
        again = await social.sign_in(client, sub)
    assert assert_no_errors(await social.gql("{ me { id } }", token=again["token"]))["me"]["id"] != customer_id


async def test_deleting_an_application_deletes_its_providers(gql, runtime, provider_server):
    # given an application with a provider
    social = await social_application(runtime, gql, provider_server)
    admin = await admin_token(runtime, gql, "owner")

    # when an admin deletes the application
    deleted = assert_no_errors(await gql("mutation($id: ID!) { applicationDelete(id: $id) { __typename } }",
                                         {"id": social.application_id}, token=admin))
    assert deleted["applicationDelete"]["__typename"] == "ApplicationDeleted"

    # then its providers (and their encrypted secrets) are gone too
    assert await IdentityProviderDocument.get_pymongo_collection().count_documents(
        {"application_id": social.application_id}) == 0
