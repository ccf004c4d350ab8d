"""Other ways to sign in on the hosted pages, over HTTP: passkeys (a software authenticator), social
identities (a real OpenID provider on loopback, oidc-provider-mock), emailed links and codes, passwordless
registration; and the refusals: CSRF on every new form, unknown providers, grants carried to another
browser or application, known and unknown addresses answered alike."""

from __future__ import annotations

import html
import json
import re
import uuid
import warnings
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import authlib.deprecate
import httpx
import pytest

from stores import config
from stores.documents import SocialFlowDocument
from tests.conftest import running_gateway
from tests.flows import PASSWORD, SoftPasskey, active_customer, admin_token, new_application
from tests.pages.support import browser_client, form_fields, set_cookies, submit
from tests.support import GraphQLClient, assert_no_errors, unique_email

with warnings.catch_warnings():  # the mock imports Authlib's deprecated authlib.jose
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    import oidc_provider_mock

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock")]

BASE = "http://localhost"  # the gateway's public URL here: a relying party browsers accept, on http
ORIGIN = BASE

REGISTER_START = "mutation { passkeyRegisterStart { ... on PasskeyRegistrationOptions { publicKey } } }"
REGISTER_FINISH = """
mutation Finish($input: PasskeyRegisterFinishInput!) { passkeyRegisterFinish(input: $input) { __typename } }
"""
CREATE_PROVIDER = """
mutation Create($input: IdentityProviderInput!) { identityProviderCreate(input: $input) { __typename
  ... on IdentityProvider { id } } }
"""
DISABLE_PROVIDER = """
mutation Update($id: ID!, $input: IdentityProviderInput!) { identityProviderUpdate(id: $id, input: $input) {
  __typename } }
"""
ENROLL = "mutation { mfaTotpEnroll { ... on MfaTotpEnrollment { secret } } }"
CONFIRM = "mutation($c: String!) { mfaTotpConfirm(input: {code: $c}) { __typename } }"
RECOVERY_CODES = "mutation { mfaRecoveryCodesRegenerate { __typename } }"
START_TOKEN = re.compile(r'data-start-token="([^"]+)"')
CODE = re.compile(r"^ +(\d{6})\s*$", re.M)


@pytest.fixture(scope="module")
async def passkey_gateway(settings, clock):
    """The gateway on http://localhost, whose applications' passkeys work there."""
    configured = settings.model_copy(update={"public_url": BASE, "webauthn_rp_id": "localhost",
                                             "webauthn_origins": ORIGIN})
    configured.check()
    async with running_gateway(configured, clock) as (app, http):
        yield app, http


@pytest.fixture
def app(passkey_gateway):
    return passkey_gateway[0]


@pytest.fixture
def gql(passkey_gateway):
    return GraphQLClient(passkey_gateway[1])


@pytest.fixture
def runtime(app):
    return app.state.runtime


@pytest.fixture(scope="module")
def provider_server():
    with oidc_provider_mock.run_server_in_thread(access_token_max_age=timedelta(minutes=5)) as server:
        yield f"http://localhost:{server.server_port}"


def browser(app, **kwargs) -> httpx.AsyncClient:
    return browser_client(app, BASE, **kwargs)


async def add_passkey(gql: GraphQLClient, token: str, device: SoftPasskey, headers: dict | None = None) -> None:
    options = assert_no_errors(await gql(REGISTER_START, token=token, headers=headers))["passkeyRegisterStart"]
    credential = device.create(options["publicKey"], ORIGIN)
    finished = assert_no_errors(await gql(REGISTER_FINISH, {"input": {"credential": credential}}, token=token,
                                          headers=headers))
    assert finished["passkeyRegisterFinish"]["__typename"] == "PasskeyAdded", finished


async def passkey_options(client: httpx.AsyncClient, page: httpx.Response, **extra) -> httpx.Response:
    """What passkey-sign-in.js does first: ask for the options with the token the page gave it."""
    fields = form_fields(page.text, "/sign-in/passkey")
    data = {"client_id": fields["client_id"], "csrf_token": html.unescape(START_TOKEN.search(page.text).group(1)),
            **({"challenge_token": fields["challenge_token"]} if "challenge_token" in fields else {}), **extra}
    return await client.post("/sign-in/passkey/start", data=data, headers={"sec-fetch-site": "same-origin"})


async def answer_with_passkey(client: httpx.AsyncClient, page: httpx.Response, device: SoftPasskey,
                              origin: str = ORIGIN) -> httpx.Response:
    """Then the browser's WebAuthn, then the passkey form posted with the credential."""
    options = await passkey_options(client, page)
    assert options.status_code == 200, options.text
    credential = device.get(options.json()["publicKey"], origin)
    return await submit(client, page, "/sign-in/passkey", credential=json.dumps(credential))


async def press_provider(client: httpx.AsyncClient, page: httpx.Response, provider: str,
                         headers: dict | None = None) -> httpx.Response:
    """Follow the sign-in page's button (a link) for ``provider``, as the browser does from the page."""
    href = html.unescape(re.search(r'href="(/sign-in/social\?[^"]+)"', page.text).group(1))
    href = re.sub(r"provider=[^&]*", f"provider={provider}", href)
    return await client.get(href, headers={"sec-fetch-site": "same-origin", **(headers or {})})


class Shop:
    """An application with the mock as its provider ``acme`` and no redirect URLs at all."""

    def __init__(self, runtime, gql: GraphQLClient, provider_url: str) -> None:
        self.runtime, self.gql, self.provider_url = runtime, gql, provider_url

    async def create(self, **policy) -> Shop:
        self.application_id, self.client_id = await new_application(self.runtime, name="Acme Shop", **policy)
        admin = await admin_token(self.runtime, self.gql, "owner")
        created = assert_no_errors(await self.gql(CREATE_PROVIDER, {"input": {
            "applicationId": self.application_id, "name": "acme", "displayName": "Acme ID",
            "discoveryUrl": self.provider_url, "clientId": f"shop-{uuid.uuid4().hex[:8]}",
            "clientSecret": "shop secret"}}, token=admin))["identityProviderCreate"]
        self.provider_id = created["id"]
        return self

    async def user(self, sub: str, **claims) -> None:
        async with httpx.AsyncClient() as provider:
            response = await provider.put(f"{self.provider_url}/users/{quote(sub, safe='')}", json=claims)
            assert response.status_code == 204, response.text

    async def to_return_page(self, client: httpx.AsyncClient, sub: str, *, next_path: str = "",
                             headers: dict | None = None) -> str:
        """On the sign-in page, press the provider's button, sign in at the provider as ``sub``: the URL of
        the gateway page the browser is sent back to (not yet opened)."""
        page = await client.get("/sign-in", params={"app": self.client_id, **({"next": next_path} if next_path else {})},
                                headers=headers)
        started = await press_provider(client, page, "acme", headers)
        assert started.status_code == 303, started.text
        assert started.headers["location"].startswith(f"{BASE}/oauth/start/acme?token=")
        at_provider = await client.get(started.headers["location"])
        assert at_provider.status_code == 303, at_provider.text
        async with httpx.AsyncClient() as provider:
            authorized = await provider.post(at_provider.headers["location"], data={"sub": sub})
        assert authorized.status_code == 302, authorized.text
        back = await client.get(authorized.headers["location"])  # the callback
        assert back.status_code == 303, back.text
        return back.headers["location"]


# -- the sign-in page ------------------------------------------------------------------------------------

async def test_the_sign_in_page_offers_what_the_application_and_its_policy_allow(app, runtime, gql, provider_server):
    # given an application with two providers (one disabled) and passkeys on, and one with passkeys off and
    # emailed sign-in on
    shop = await Shop(runtime, gql, provider_server).create()
    admin = await admin_token(runtime, gql, "owner")
    other = assert_no_errors(await gql(CREATE_PROVIDER, {"input": {
        "applicationId": shop.application_id, "name": "old", "displayName": "Old ID",
        "discoveryUrl": provider_server, "clientId": "old-client"}}, token=admin))["identityProviderCreate"]
    assert_no_errors(await gql(DISABLE_PROVIDER, {"id": other["id"], "input": {"enabled": False}}, token=admin))
    _, mailing = await new_application(runtime, passkeys={"enabled": False}, email_sign_in={"enabled": True})
    async with browser(app) as client:
        # when a visitor opens each sign-in page
        shop_page = (await client.get("/sign-in", params={"app": shop.client_id})).text
        mailing_page = (await client.get("/sign-in", params={"app": mailing})).text
    # then the shop shows the passkey form (hidden until its script finds WebAuthn) and one button per
    # enabled provider, and no emailed link
    assert re.search(r'<form method="post" action="/sign-in/passkey" [^>]*hidden data-passkey', shop_page)
    assert '<script src="/assets/passkey-sign-in.js?v=' in shop_page
    assert re.findall(r'href="/sign-in/social\?app=[^"]*provider=([^&"]+)[^"]*csrf_token=[^"]+">([^<]+)<',
                      shop_page) == [("acme", "Continue with Acme ID")]
    assert 'action="/sign-in/email-link"' not in shop_page
    # and the other leads to the emailed link's page, and shows neither passkeys nor providers
    assert f'href="/sign-in/email-link?app={mailing}">Email me a sign-in link</a>' in mailing_page
    assert "data-passkey" not in mailing_page and "/sign-in/social" not in mailing_page


async def test_the_passkey_script_is_served_from_the_gateway(app):
    async with browser(app) as client:
        page = await client.get("/sign-in")
        src = re.search(r'<script src="(/assets/passkey-sign-in.js\?v=[^"]+)"', page.text).group(1)
        script = await client.get(src)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "navigator.credentials.get" in script.text and "immutable" in script.headers["cache-control"]


# -- passkeys ------------------------------------------------------------------------------------------

async def test_a_passkey_signs_in_on_the_page_and_the_browser_gets_its_session(app, gql, mailbox):
    # given a customer who added a passkey
    email, device = unique_email("page-passkey"), SoftPasskey()
    await add_passkey(gql, await active_customer(gql, mailbox, email), device)
    async with browser(app) as client:
        # when they press "Sign in with a passkey" on the sign-in page (their authenticator answers)
        page = await client.get("/sign-in", params={"next": "/account?tab=security"})
        done = await answer_with_passkey(client, page, device)
        # then the browser holds a session and goes on to next
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/account?tab=security"
        assert set_cookies(done)["gw_session"]["value"].startswith("gwc_")
        assert email in (await client.get("/account")).text


async def test_next_with_a_query_of_its_own_keeps_the_application(app, runtime, gql, mailbox):
    # given a customer of an application, sent to its sign-in page to come back to a tab of the account page
    _, client_id = await new_application(runtime)
    email = unique_email("page-next-query")
    await active_customer(gql, mailbox, email, headers={"x-application-id": client_id})
    async with browser(app) as client:
        page = await client.get("/sign-in", params={"app": client_id, "next": "/account?tab=security"})
        # when they sign in
        done = await submit(client, page, "/sign-in", identifier=email, password=PASSWORD)
    # then they go to that tab, for that application
    assert done.status_code == 303 and done.headers["location"] == f"/account?app={client_id}&tab=security"


async def test_a_passkey_for_another_site_is_refused_on_the_page(app, gql, mailbox):
    # given a customer with a passkey
    device = SoftPasskey()
    await add_passkey(gql, await active_customer(gql, mailbox, unique_email("page-passkey-phish")), device)
    async with browser(app) as client:
        page = await client.get("/sign-in")
        # when the assertion was made on another origin (a phishing page relaying the ceremony)
        refused = await answer_with_passkey(client, page, device, origin="https://evil.example")
    # then the sign-in page says so, and no session is handed out
    assert refused.status_code == 400
    assert "This passkey could not sign you in." in refused.text and "gw_session" not in set_cookies(refused)


async def test_the_second_factor_step_offers_every_factor_and_a_passkey_answers_it(app, gql, mailbox, clock):
    import pyotp

    # given a customer with an authenticator app, recovery codes and a passkey
    email, device = unique_email("page-passkey-mfa"), SoftPasskey()
    token = await active_customer(gql, mailbox, email)
    secret = (await gql(ENROLL, token=token))["data"]["mfaTotpEnroll"]["secret"]
    await gql(CONFIRM, {"c": pyotp.TOTP(secret).at(clock.now())}, token=token)
    assert (await gql(RECOVERY_CODES, token=token))["data"]["mfaRecoveryCodesRegenerate"]["__typename"] \
        == "MfaRecoveryCodes"
    await add_passkey(gql, token, device)
    async with browser(app) as client:
        # when they sign in with their password on the page
        page = await client.get("/sign-in")
        step = await submit(client, page, "/sign-in", identifier=email, password=PASSWORD)
        # then the second-factor step offers the passkey (its own form, with the challenge) and the codes
        assert step.status_code == 200, step.text
        assert "Use your passkey, or enter a code from one of your second factors." in step.text
        passkey_form = form_fields(step.text, "/sign-in/passkey")
        assert passkey_form["challenge_token"] == form_fields(step.text, "/sign-in/code")["challenge_token"]
        assert re.findall(r'name="factor" value="([A-Z_]+)"', step.text) == ["TOTP", "RECOVERY_CODE"]
        # when the passkey answers
        done = await answer_with_passkey(client, step, device)
    # then they are signed in
    assert done.status_code == 303 and done.headers["location"] == "/account", done.text
    assert set_cookies(done)["gw_session"]["value"].startswith("gwc_")


# -- social identities -----------------------------------------------------------------------------------

async def test_social_sign_in_returns_to_the_hosted_pages_without_a_redirect_url(app, runtime, gql, provider_server):
    # given an application with a provider and no redirect URLs, and a newcomer the provider knows
    shop = await Shop(runtime, gql, provider_server).create(registration={"social_enabled": True})
    sub, email = f"new-{uuid.uuid4().hex[:8]}", unique_email("page-social")
    await shop.user(sub, email=email, email_verified=True, given_name="Ada")
    async with browser(app) as client:
        # when they press its button on the sign-in page and sign in at the provider
        back = await shop.to_return_page(client, sub, next_path="/account?tab=settings")
        # then the provider sends them back to the gateway's own page, which signs this browser in
        assert back.startswith(f"{BASE}/oauth/return?")
        assert parse_qs(urlsplit(back).query)["app"] == [shop.client_id]
        done = await client.get(back)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/account?app={shop.client_id}&tab=settings"
        assert set_cookies(done)["gw_session"]["value"].startswith("gwc_")
        assert email in (await client.get("/account", params={"app": shop.client_id})).text


async def test_a_grant_carried_to_another_browser_is_refused(app, runtime, gql, provider_server):
    # given an attacker who went through the provider in their own browser and kept the return URL
    shop = await Shop(runtime, gql, provider_server).create(registration={"social_enabled": True})
    sub = f"attacker-{uuid.uuid4().hex[:8]}"
    await shop.user(sub, email=unique_email("page-social-attacker"), email_verified=True)
    async with browser(app) as attacker:
        back = await shop.to_return_page(attacker, sub)
    # when the victim's browser is made to open it (login CSRF)
    async with browser(app) as victim:
        refused = await victim.get(back)
    # then the victim is not signed in to the attacker's account
    assert refused.status_code == 303 and "gw_session" not in set_cookies(refused)
    assert refused.headers["location"].startswith(f"/sign-in?app={shop.client_id}&error=expired")


async def test_a_grant_from_another_application_is_refused(app, runtime, gql, provider_server):
    # given a sign-in through the shop's provider, back at the return page
    shop = await Shop(runtime, gql, provider_server).create(registration={"social_enabled": True})
    _, other = await new_application(runtime, name="Other Shop")
    sub = f"app-{uuid.uuid4().hex[:8]}"
    await shop.user(sub, email=unique_email("page-social-app"), email_verified=True)
    async with browser(app) as client:
        back = await shop.to_return_page(client, sub)
        # when the return page is opened for another application
        query = parse_qs(urlsplit(back).query)
        refused = await client.get("/oauth/return", params={"app": other, "grant": query["grant"][0],
                                                           "next": query["next"][0]})
        # then no session is handed out, for either application
        assert refused.status_code == 303 and "gw_session" not in set_cookies(refused)
        assert refused.headers["location"].startswith(f"/sign-in?app={other}&error=expired")
        assert "gw_session" not in set_cookies(await client.get(back))


async def test_the_api_cannot_exchange_a_hosted_pages_grant(app, runtime, gql, provider_server):
    # given a sign-in through the hosted page, back at the return page
    shop = await Shop(runtime, gql, provider_server).create(registration={"social_enabled": True})
    sub = f"api-{uuid.uuid4().hex[:8]}"
    await shop.user(sub, email=unique_email("page-social-api"), email_verified=True)
    async with browser(app) as client:
        back = await shop.to_return_page(client, sub)
    # when someone posts its grant to socialSignInComplete
    grant = parse_qs(urlsplit(back).query)["grant"][0]
    answer = assert_no_errors(await gql("mutation($g: String!) { socialSignInComplete(input: {grant: $g}) { "
                                        "__typename } }", {"g": grant}, headers={"x-application-id": shop.client_id}))
    # then it is refused: only the browser that started the flow, on the return page, exchanges it
    assert answer["socialSignInComplete"]["__typename"] == "InvalidTokenError"


async def test_social_refusals_are_shown_translated_on_the_sign_in_page(app, runtime, gql, mailbox, provider_server):
    # given a customer with a password, and a provider identity with their verified address
    shop = await Shop(runtime, gql, provider_server).create()
    email = unique_email("page-social-exists")
    await active_customer(gql, mailbox, email, headers={"x-application-id": shop.client_id})
    sub = f"exists-{uuid.uuid4().hex[:8]}"
    await shop.user(sub, email=email, email_verified=True)
    french = {"accept-language": "fr-FR"}
    async with browser(app) as client:
        # when they press the provider's button on the (French) sign-in page
        back = await shop.to_return_page(client, sub, headers=french)
        assert parse_qs(urlsplit(back).query)["error"] == ["account_exists"]
        sign_in = await client.get(back)
        page = await client.get(sign_in.headers["location"], headers=french)
    # then they are back on the sign-in page, told in French to sign in as usual and link it from their settings
    assert sign_in.headers["location"].startswith(f"/sign-in?app={shop.client_id}&error=account_exists")
    assert page.status_code == 200 and "gw_session" not in set_cookies(sign_in)
    assert "Un compte utilise déjà l’adresse e-mail de cette identité." in html.unescape(page.text)


async def test_an_unknown_or_disabled_provider_is_refused_on_the_page(app, runtime, gql, provider_server):
    # given an application with one provider
    shop = await Shop(runtime, gql, provider_server).create()
    async with browser(app) as client:
        page = await client.get("/sign-in", params={"app": shop.client_id})
        # when the button's link is changed to name a provider it does not have
        refused = await press_provider(client, page, "nobody")
    # then the sign-in page says so, and no flow was started
    assert refused.status_code == 404 and "This way to sign in is not available." in refused.text
    assert await SocialFlowDocument.find({"provider_name": "nobody"}).count() == 0


# -- emailed links and codes ---------------------------------------------------------------------------

async def test_the_emailed_link_signs_in_the_browser_that_confirms_it(app, runtime, gql, mailbox):
    # given a customer of an application with emailed sign-in and no redirect URLs
    _, client_id = await new_application(runtime, email_sign_in={"enabled": True})
    email = unique_email("page-email-link")
    await active_customer(gql, mailbox, email, headers={"x-application-id": client_id})
    async with browser(app) as client:
        # when they ask for a sign-in link on the sign-in page
        page = await client.get("/sign-in", params={"app": client_id, "next": "/account?tab=privacy"})
        link = re.search(r'href="(/sign-in/email-link\?[^"]+)"', page.text).group(1)
        page = await client.get(html.unescape(link))
        sent = await submit(client, page, "/sign-in/email-link", email=email)
        assert sent.status_code == 200 and "Check your inbox" in sent.text
    # and open the mailed link, in the browser where they read their mail, and confirm
    link = (await mailbox.wait_for(email, "sign-in link")).link("/sign-in/email")
    async with browser(app) as reader:
        landing = await reader.get(link)
        assert landing.status_code == 200 and "Sign me in" in landing.text
        done = await submit(reader, landing, "/sign-in/email")
        # then that browser is signed in and goes on to where the sign-in page was asked to lead
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/account?app={client_id}&tab=privacy"
        assert set_cookies(done)["gw_session"]["value"].startswith("gwc_")
        assert email in (await reader.get("/account", params={"app": client_id})).text
        # and the link works once
        again = await reader.get(link)
        assert "This link is invalid or has expired" in again.text


async def test_an_emailed_link_still_asks_for_the_second_factor(app, runtime, gql, mailbox, clock):
    import pyotp

    # given a customer with an authenticator app, of an application with emailed sign-in
    _, client_id = await new_application(runtime, email_sign_in={"enabled": True})
    headers = {"x-application-id": client_id}
    email = unique_email("page-email-link-mfa")
    token = await active_customer(gql, mailbox, email, headers=headers)
    secret = (await gql(ENROLL, token=token, headers=headers))["data"]["mfaTotpEnroll"]["secret"]
    await gql(CONFIRM, {"c": pyotp.TOTP(secret).at(clock.now())}, token=token, headers=headers)
    async with browser(app) as client:
        page = await client.get("/sign-in/email-link", params={"app": client_id})
        await submit(client, page, "/sign-in/email-link", email=email)
        link = (await mailbox.wait_for(email, "sign-in link")).link("/sign-in/email")
        # when they confirm the mailed link
        landing = await client.get(link)
        step = await submit(client, landing, "/sign-in/email")
        # then the link alone hands out no session: the second-factor step asks for the app's code
        assert step.status_code == 200 and "Confirm it is you" in step.text and "gw_session" not in set_cookies(step)
        done = await submit(client, step, "/sign-in/code",
                            code=pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30)))
    assert done.status_code == 303 and done.headers["location"] == f"/account?app={client_id}", done.text
    assert set_cookies(done)["gw_session"]["value"].startswith("gwc_")


async def test_known_and_unknown_addresses_are_answered_alike(app, runtime, gql, mailbox):
    # given an application with emailed sign-in, and one of its customers
    _, client_id = await new_application(runtime, email_sign_in={"enabled": True})
    known, unknown = unique_email("page-email-known"), unique_email("page-email-unknown")
    await active_customer(gql, mailbox, known, headers={"x-application-id": client_id})

    async def ask(address: str) -> httpx.Response:
        async with browser(app) as client:
            page = await client.get("/sign-in/email-link", params={"app": client_id})
            return await submit(client, page, "/sign-in/email-link", email=address)

    # when a link is asked for each address
    answers = [await ask(known), await ask(unknown)]

    # then both pages are the same but for the address and the form's token
    def shown(answer: httpx.Response, address: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", answer.text).replace(address, "ADDRESS")
    assert [a.status_code for a in answers] == [200, 200]
    assert shown(answers[0], known) == shown(answers[1], unknown)
    # and only the account is mailed
    await mailbox.wait_for(known, "sign-in link")
    assert mailbox.to(unknown) == []


async def test_the_emailed_code_signs_in_on_the_inbox_page(app, runtime, gql, mailbox):
    # given a customer who asked for a sign-in mail on the page
    _, client_id = await new_application(runtime, email_sign_in={"enabled": True})
    email = unique_email("page-email-code")
    await active_customer(gql, mailbox, email, headers={"x-application-id": client_id})
    async with browser(app) as client:
        page = await client.get("/sign-in/email-link", params={"app": client_id})
        inbox = await submit(client, page, "/sign-in/email-link", email=email)
        code = CODE.search((await mailbox.wait_for(email, "sign-in link")).text).group(1)
        # when they type a wrong code
        wrong = await submit(client, inbox, "/sign-in/email-code", code="000000" if code != "000000" else "111111")
        # then the error sits with the code field
        assert wrong.status_code == 400 and 'id="code-error"' in wrong.text
        assert "The email address or the code is not right." in html.unescape(wrong.text)
        # when they type the right one
        done = await submit(client, wrong, "/sign-in/email-code", code=code)
    # then they are signed in
    assert done.status_code == 303 and done.headers["location"] == f"/account?app={client_id}", done.text
    assert set_cookies(done)["gw_session"]["value"].startswith("gwc_")


async def test_a_provider_button_followed_from_another_site_or_without_its_token_starts_nothing(
        app, runtime, gql, provider_server):
    # given an application with a provider, and a visitor of its sign-in page
    shop = await Shop(runtime, gql, provider_server).create()
    async with browser(app) as client:
        page = await client.get("/sign-in", params={"app": shop.client_id})
        href = html.unescape(re.search(r'href="(/sign-in/social\?[^"]+)"', page.text).group(1))
        # when another site sends the browser to the button's address, and when the token is left out
        cross_site = await client.get(href, headers={"sec-fetch-site": "cross-site"})
        tokenless = await client.get(re.sub(r"&csrf_token=[^&]+", "", href), headers={"sec-fetch-site": "same-origin"})
    # then both are refused, and no flow is started
    for refused in (cross_site, tokenless):
        assert refused.status_code == 403 and "location" not in refused.headers
    assert await SocialFlowDocument.find({"application_id": shop.application_id}).count() == 0


@pytest.mark.parametrize("path", ["/sign-in/passkey/start", "/sign-in/passkey", "/sign-in/email-link",
                                  "/sign-in/email-code"])
async def test_the_new_forms_refuse_cross_site_and_tokenless_posts(app, runtime, path):
    _, client_id = await new_application(runtime, email_sign_in={"enabled": True})
    async with browser(app) as client:
        page = await client.get("/sign-in", params={"app": client_id})
        # when another site makes the browser post to it, and when a post comes without the form's token
        cross_site = await client.post(path, data={"client_id": client_id, "email": unique_email("csrf"),
                                                   "provider": "acme", "csrf_token": "guess"},
                                       headers={"sec-fetch-site": "cross-site"})
        tokenless = await client.post(path, data={"client_id": client_id, "email": unique_email("csrf")},
                                      headers={"sec-fetch-site": "same-origin"})
    # then both are refused, and nothing is started or handed out
    assert page.status_code == 200
    for refused in (cross_site, tokenless):
        assert refused.status_code == 403, (path, refused.text)
        assert "location" not in refused.headers and "gw_session" not in set_cookies(refused)


# -- passwordless registration -----------------------------------------------------------------------------

async def test_a_passwordless_application_registers_without_a_password(app, runtime, mailbox):
    # given an application whose policy is passwordless, with emailed sign-in
    _, client_id = await new_application(runtime, passwordless=True, email_sign_in={"enabled": True})
    email = unique_email("page-passwordless")
    async with browser(app) as client:
        # when a visitor opens its registration page and registers
        page = await client.get("/register", params={"app": client_id})
        done = await submit(client, page, "/register", email=email)
        sign_in = await client.get("/sign-in", params={"app": client_id})
    # then the page asks for no password, the account is made and its activation mailed
    assert 'type="password"' not in page.text and "No password needed" in page.text
    assert done.status_code == 200 and "Check your inbox" in done.text
    await mailbox.wait_for(email, "activ")
    # and its sign-in page asks for the address to mail a link to, not for a password
    assert 'type="password"' not in sign_in.text and 'action="/sign-in/email-link"' in sign_in.text
