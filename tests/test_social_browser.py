"""Social sign-in through a real browser: Debian's chromium (Playwright) against the gateway served by
uvicorn and a real OpenID provider (oidc-provider-mock), both on loopback. The browser follows every
redirect itself and carries the gateway's binding cookie from the start URL to the callback."""

from __future__ import annotations

import uuid
import warnings
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import authlib.deprecate
import httpx
import pytest

from stores import config
from tests.browser import launched_chromium, served_gateway
from tests.flows import active_customer, admin_token, new_application
from tests.support import GraphQLClient, assert_no_errors, unique_email

with warnings.catch_warnings():  # the mock imports Authlib's deprecated authlib.jose
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    import oidc_provider_mock

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock")]

START = """
mutation Start($input: SocialSignInStartInput!) { socialSignInStart(input: $input) {
  __typename ... on SocialAuthorizationStarted { authorizationUrl } } }
"""
LINK = """
mutation Link($input: LinkedIdentityAddInput!) { linkedIdentityAdd(input: $input) {
  __typename ... on SocialAuthorizationStarted { authorizationUrl } } }
"""
COMPLETE = """
mutation Complete($grant: String!) { socialSignInComplete(input: {grant: $grant}) {
  __typename ... on SessionCreated { token } } }
"""
CREATE_PROVIDER = """
mutation Create($input: IdentityProviderInput!) { identityProviderCreate(input: $input) { __typename } }
"""
ME = "{ me { id email loginMethods { ... on LoginMethods { password linkedIdentities { id provider } } } } }"
REMOVE = "mutation Remove($id: ID!) { linkedIdentityRemove(id: $id) { __typename } }"


@pytest.fixture(scope="module")
def provider_server():
    with oidc_provider_mock.run_server_in_thread(access_token_max_age=timedelta(minutes=5)) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
async def live_gateway(settings, clock):
    """(base URL, runtime) of the gateway served by uvicorn on a loopback port, its public URL pointing at itself."""
    async with served_gateway(settings, clock) as served:
        yield served


@pytest.fixture(scope="module")
async def browser():
    async with launched_chromium() as launched:
        yield launched


class Shop:
    """An application whose site is the gateway's /healthz (a page that exists, on loopback), with the
    provider ``acme``; its frontend's calls go over HTTP."""

    def __init__(self, gql: GraphQLClient, base: str, client_id: str, provider_url: str) -> None:
        self.base, self.provider_url = base, provider_url
        self.headers = {"x-application-id": client_id}
        self.gql = gql.for_application(self.headers)  # the shop's frontend
        self.landing = f"{base}/healthz"

    async def user(self, sub: str, **claims) -> None:
        async with httpx.AsyncClient() as provider:
            assert (await provider.put(f"{self.provider_url}/users/{quote(sub, safe='')}", json=claims)).status_code == 204

    async def through_the_provider(self, page, authorization_url: str, sub: str) -> dict[str, str]:
        """The browser goes to the authorization URL, the person signs in at the provider as ``sub``, and
        the browser lands back on the shop: the query it came back with."""
        await page.goto(authorization_url)
        await page.wait_for_url(f"{self.provider_url}/oauth2/authorize?**")
        await page.fill("input[name=sub]", sub)
        await page.click("button:has-text('Authorize')")
        await page.wait_for_url(f"{self.landing}?**")
        return {key: values[0] for key, values in parse_qs(urlsplit(page.url).query).items()}


async def shop(runtime, gql: GraphQLClient, base: str, provider_url: str) -> Shop:
    application_id, client_id = await new_application(runtime, registration={"social_enabled": True})
    await config.update_application(application_id, {"redirect_urls": [f"{base}/healthz"]})
    runtime.forget_applications()
    admin = await admin_token(runtime, gql, "owner")
    created = assert_no_errors(await gql(CREATE_PROVIDER, {"input": {
        "applicationId": application_id, "name": "acme", "discoveryUrl": provider_url,
        "clientId": f"shop-{uuid.uuid4().hex[:8]}", "clientSecret": "shop secret"}}, token=admin))
    assert created["identityProviderCreate"]["__typename"] == "IdentityProvider"
    return Shop(gql, base, client_id, provider_url)


async def test_sign_in_link_and_unlink_in_a_browser(live_gateway, browser, mailbox, provider_server):
    base, runtime = live_gateway
    async with httpx.AsyncClient(base_url=base) as http:
        gql = GraphQLClient(http, ip="127.0.0.1")
        site = await shop(runtime, gql, base, provider_server)

        # given a newcomer the provider knows, with a verified email
        newcomer, newcomer_email = f"new-{uuid.uuid4().hex[:8]}", unique_email("browser-social-new")
        await site.user(newcomer, email=newcomer_email, email_verified=True)

        # when they sign in with the provider in the browser
        started = assert_no_errors(await gql(START, {"input": {"provider": "acme", "redirectUrl": site.landing}},
                                             headers=site.headers))["socialSignInStart"]
        page = await browser.new_page()
        try:
            landed = await site.through_the_provider(page, started["authorizationUrl"], newcomer)
        finally:
            await page.close()

        # then the shop receives a grant, which its frontend exchanges for a session of a new account
        signed_in = assert_no_errors(await gql(COMPLETE, {"grant": landed["grant"]}, headers=site.headers))
        token = signed_in["socialSignInComplete"]["token"]
        assert assert_no_errors(await site.gql(ME, token=token))["me"]["email"] == newcomer_email

        # given a customer with a password, signed in, and a provider identity with their own email
        email = unique_email("browser-social-link")
        customer = await active_customer(gql, mailbox, email, headers=site.headers)
        sub = f"linked-{uuid.uuid4().hex[:8]}"
        await site.user(sub, email=email, email_verified=True)

        # when they link it from their account settings in the browser
        started = assert_no_errors(await gql(LINK, {"input": {"provider": "acme", "redirectUrl": site.landing}},
                                             token=customer, headers=site.headers))["linkedIdentityAdd"]
        page = await browser.new_page()
        try:
            assert await site.through_the_provider(page, started["authorizationUrl"], sub) == {"linked": "acme"}

            # then a sign-in with the provider in the browser is a sign-in to their account
            started = assert_no_errors(await gql(START, {"input": {"provider": "acme", "redirectUrl": site.landing}},
                                                 headers=site.headers))["socialSignInStart"]
            grant = (await site.through_the_provider(page, started["authorizationUrl"], sub))["grant"]
            mine = assert_no_errors(await gql(COMPLETE, {"grant": grant}, headers=site.headers))
            me = assert_no_errors(await site.gql(ME, token=customer))["me"]
            assert assert_no_errors(await site.gql(ME, token=mine["socialSignInComplete"]["token"]))["me"]["id"] == me["id"]

            # when they unlink it
            identity = me["loginMethods"]["linkedIdentities"][0]["id"]
            assert assert_no_errors(await site.gql(REMOVE, {"id": identity}, token=customer))[
                "linkedIdentityRemove"]["__typename"] == "LinkedIdentityRemoved"

            # then the provider no longer signs in to the account, and never links it silently by its email
            started = assert_no_errors(await gql(START, {"input": {"provider": "acme", "redirectUrl": site.landing}},
                                                 headers=site.headers))["socialSignInStart"]
            assert await site.through_the_provider(page, started["authorizationUrl"], sub) == {"error": "account_exists"}
        finally:
            await page.close()
