"""Other ways to sign in, clicked through in headless chromium as a customer would, against a live gateway
on http://localhost (a relying party browsers accept) with the embedded database and the aiosmtpd
mailbox: a passkey (Chromium's virtual authenticator, CDP ``WebAuthn.addVirtualAuthenticator``), a social
identity at a real OpenID provider (oidc-provider-mock), an emailed link, and passwordless registration
then an emailed code. Every new page state is photographed at 360 and 1280 px and checked with axe-core."""

from __future__ import annotations

import re
import uuid
import warnings
from datetime import timedelta
from urllib.parse import quote

import authlib.deprecate
import httpx
import pytest
from playwright.async_api import expect

from tests.browser import served_gateway
from tests.flows import PASSWORD, active_customer, admin_token, new_application
from tests.pages.support import branded_application
from tests.support import GraphQLClient, assert_no_errors, unique_email

with warnings.catch_warnings():  # the mock imports Authlib's deprecated authlib.jose
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    import oidc_provider_mock

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock")]

CODE = re.compile(r"^ +(\d{6})\s*$", re.M)
CREATE_PROVIDER = """
mutation Create($input: IdentityProviderInput!) { identityProviderCreate(input: $input) { __typename } }
"""
ADD_PASSKEY = """
async ({token}) => {
  const gql = async (query, variables) => (await fetch("/graphql", {method: "POST",
      headers: {"content-type": "application/json", authorization: "Bearer " + token},
      body: JSON.stringify({query, variables})})).json();
  const start = await gql(`mutation { passkeyRegisterStart { ... on PasskeyRegistrationOptions { publicKey } } }`);
  const options = PublicKeyCredential.parseCreationOptionsFromJSON(start.data.passkeyRegisterStart.publicKey);
  const credential = await navigator.credentials.create({publicKey: options});
  const finish = await gql(`mutation($input: PasskeyRegisterFinishInput!) { passkeyRegisterFinish(input: $input) {
      __typename } }`, {input: {credential: credential.toJSON(), name: "Virtual authenticator"}});
  return finish.data.passkeyRegisterFinish.__typename;
}
"""


@pytest.fixture(scope="module")
async def live_localhost(settings, clock):
    """The gateway served by uvicorn on http://localhost:<port>, its passkeys' relying party ``localhost``."""
    async with served_gateway(settings, clock, passkeys=True) as served:
        yield served


@pytest.fixture(scope="module")
def provider_server():
    with oidc_provider_mock.run_server_in_thread(access_token_max_age=timedelta(minutes=5)) as server:
        yield f"http://localhost:{server.server_port}"


async def signed_in_at(page, url: str) -> None:
    """The browser landed on ``url`` (the account page), which answers a signed-in customer only."""
    await page.wait_for_url(url)
    assert page.url == url


async def test_sign_in_with_a_passkey_and_answer_the_second_factor_step_with_it(live_localhost, context, mailbox,
                                                                               look):
    base, _ = live_localhost
    email = unique_email("browser-page-passkey")
    async with httpx.AsyncClient(base_url=base) as http:
        token = await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email)
    page = await context.new_page()
    # given a customer whose browser holds a passkey for the gateway (a platform authenticator that
    # verifies its user), added through the API
    await page.goto(f"{base}/sign-in")
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    assert await page.evaluate(ADD_PASSKEY, {"token": token}) == "PasskeyAdded"
    # when they open the sign-in page: the passkey button is there, beside the password form
    await page.reload()
    button = page.get_by_role("button", name="Sign in with a passkey")
    await button.wait_for()
    await look(page, "sign-in-passkey")
    # and they press it, typing nothing
    await button.click()
    # then they are signed in
    await signed_in_at(page, f"{base}/account")
    # when, signed out, they sign in with their password (with the keyboard)
    await context.clear_cookies()
    await page.goto(f"{base}/sign-in")
    await expect(page.get_by_label("Email address")).to_be_focused()  # autofocus runs after the load event
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    # then the second-factor step asks for the passkey, which answers it
    await page.get_by_role("heading", name="Confirm it is you").wait_for()
    assert await page.get_by_text("Use your passkey to finish signing in.").is_visible()
    await look(page, "sign-in-code-passkey")
    await page.get_by_role("button", name="Use a passkey").click()
    await signed_in_at(page, f"{base}/account")


async def test_without_webauthn_the_passkey_button_is_absent(live_localhost, chromium):
    base, _ = live_localhost
    context = await chromium.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        # when a browser that runs no script opens the sign-in page
        await page.goto(f"{base}/sign-in")
        # then the password form is there, and the passkey form the page offers stays hidden (nothing broken
        # to press), with the section it alone fills
        await page.get_by_role("button", name="Sign in", exact=True).wait_for()
        assert await page.locator("form[data-passkey]").count() == 1
        assert await page.get_by_role("button", name="Sign in with a passkey").count() == 0
        assert not await page.get_by_text("Other ways to sign in").is_visible()
    finally:
        await context.close()


async def test_sign_in_with_a_social_identity_through_the_hosted_page(live_localhost, context, mailbox, provider_server,
                                                                     look):
    base, runtime = live_localhost
    # given an application (no redirect URLs) with an identity provider, social registration on
    application_id, client_id = await branded_application(runtime, "Acme Shop", registration={"social_enabled": True})
    async with httpx.AsyncClient(base_url=base) as http:
        gql = GraphQLClient(http, ip="127.0.0.1")
        admin = await admin_token(runtime, gql, "owner")
        created = assert_no_errors(await gql(CREATE_PROVIDER, {"input": {
            "applicationId": application_id, "name": "acme", "displayName": "Acme ID", "discoveryUrl": provider_server,
            "clientId": f"shop-{uuid.uuid4().hex[:8]}", "clientSecret": "shop secret"}}, token=admin))
        assert created["identityProviderCreate"]["__typename"] == "IdentityProvider"
        # and a newcomer the provider knows, and a customer whose address the provider also vouches for
        email = unique_email("browser-page-social-exists")
        await active_customer(gql, mailbox, email, headers={"x-application-id": client_id})
    newcomer = f"new-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient() as provider:
        for sub, address in ((newcomer, unique_email("browser-page-social")), ("exists-" + newcomer, email)):
            answer = await provider.put(f"{provider_server}/users/{quote(sub)}", json={"email": address,
                                                                                       "email_verified": True})
            assert answer.status_code == 204

    async def through_the_provider(page, sub: str) -> None:
        await page.goto(f"{base}/sign-in?app={client_id}")
        await page.get_by_role("link", name="Continue with Acme ID").click()
        await page.wait_for_url(f"{provider_server}/oauth2/authorize?**")
        await page.fill("input[name=sub]", sub)
        await page.click("button:has-text('Authorize')")

    page = await context.new_page()
    # when the newcomer presses the provider's button on the sign-in page and signs in there
    await page.goto(f"{base}/sign-in?app={client_id}")
    await look(page, "sign-in-social")
    await through_the_provider(page, newcomer)
    # then the provider sends them back to the gateway, which signs this browser in
    await signed_in_at(page, f"{base}/account?app={client_id}")
    # when the customer whose address it is tries the same (in a fresh browser)
    await context.clear_cookies()
    await through_the_provider(page, "exists-" + newcomer)
    # then they are back on the sign-in page, told to sign in as usual and link the provider afterwards
    await page.get_by_text("An account already uses the email address of this identity.").wait_for()
    assert page.url.startswith(f"{base}/sign-in?app={client_id}&error=account_exists")
    await look(page, "sign-in-social-error")


async def test_sign_in_with_an_emailed_link_on_the_hosted_pages(live_localhost, context, mailbox, look):
    base, runtime = live_localhost
    # given a customer of an application that signs in by emailed links
    _, client_id = await new_application(runtime, name="Mail Shop", email_sign_in={"enabled": True})
    email = unique_email("browser-page-email-link")
    async with httpx.AsyncClient(base_url=base) as http:
        await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email,
                              headers={"x-application-id": client_id})
    page = await context.new_page()
    # when they choose "Email me a sign-in link" on the sign-in page and give their address
    await page.goto(f"{base}/sign-in?app={client_id}")
    await look(page, "sign-in-email-link")
    await page.get_by_role("link", name="Email me a sign-in link").click()
    await look(page, "email-link")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    # then the page says to check the inbox, where the code could be typed too
    await page.get_by_role("heading", name="Check your inbox").wait_for()
    await look(page, "email-link-sent")
    # when they open the mailed link and confirm
    link = (await mailbox.wait_for(email, "sign-in link")).link("/sign-in/email")
    await page.goto(link)
    await look(page, "email-link-confirm")
    await page.get_by_role("button", name="Sign me in").click()
    # then this browser is signed in
    await signed_in_at(page, f"{base}/account?app={client_id}")


async def test_register_without_a_password_activate_and_sign_in_by_emailed_code(live_localhost, context, mailbox,
                                                                              look):
    base, runtime = live_localhost
    # given a passwordless application that signs in by emailed links and codes
    _, client_id = await branded_application(runtime, "Keyless Club", primary="#5f3dc4", accent="#e9ecef",
                                             passwordless=True, email_sign_in={"enabled": True})
    email = unique_email("browser-page-passwordless")
    page = await context.new_page()
    # when a visitor registers on its page, which asks for no password
    await page.goto(f"{base}/register?app={client_id}")
    assert await page.locator("input[type=password]").count() == 0
    await look(page, "register-passwordless")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Given name (optional)").fill("Ada")
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_role("heading", name="Check your inbox").wait_for()
    # and activates the account from the mailed link
    await page.goto((await mailbox.wait_for(email, "activ")).link("/activate"))
    await page.get_by_role("button", name="Activate my account").click()
    await page.get_by_role("heading", name="Your account is activated").wait_for()
    # and goes to sign in, where the address is all that is asked
    await page.get_by_role("link", name="Sign in").click()
    assert await page.locator("input[type=password]").count() == 0
    await look(page, "sign-in-passwordless")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await page.get_by_role("heading", name="Check your inbox").wait_for()
    # and types the mailed code
    code = CODE.search((await mailbox.wait_for(email, "sign-in link")).text).group(1)
    await page.get_by_label("Code").fill("000000" if code != "000000" else "111111")
    await page.get_by_role("button", name="Sign in").click()
    assert "not right" in await page.locator("#code-error").text_content()
    await look(page, "email-code-error")
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Sign in").click()
    # then they are signed in
    await signed_in_at(page, f"{base}/account?app={client_id}")
