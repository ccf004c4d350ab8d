"""Each journey clicked through in headless chromium, as a customer would, against a live gateway with the
embedded database and the aiosmtpd mailbox. Every page on the way is photographed at 360 and 1280 px
(var/screenshots/) and checked with axe-core."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pyotp
from playwright.async_api import expect

from tests.flows import PASSWORD, active_customer
from tests.pages.support import branded_application
from tests.support import GraphQLClient, unique_email

ENROLL = "mutation { mfaTotpEnroll { ... on MfaTotpEnrollment { secret } } }"
CONFIRM = "mutation($c: String!) { mfaTotpConfirm(input: {code: $c}) { __typename } }"


async def test_register_activate_from_the_mailed_link_and_sign_in_with_the_keyboard(live_gateway, context, mailbox,
                                                                                   look):
    base, runtime = live_gateway
    _, client_id = await branded_application(runtime, "Acme Shop", primary="#0b7285", accent="#ffd43b")
    email = unique_email("browser-register")
    page = await context.new_page()
    # given a visitor on the application's sign-in page, who follows "Create an account"
    await page.goto(f"{base}/sign-in?app={client_id}")
    await look(page, "sign-in")
    await page.get_by_role("link", name="Create an account").click()
    assert await page.title() == "Create your account · Acme Shop"
    await look(page, "register")
    # when they register with a password that is too common
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Given name (optional)").fill("Ada")
    await page.get_by_label("Password").fill("password")
    await page.get_by_role("button", name="Create account").click()
    # then the error sits with the password field, which describes itself with it
    error = page.locator("#password-error")
    assert "too common" in await error.text_content()
    assert "password-error" in await page.get_by_label("Password").get_attribute("aria-describedby")
    await look(page, "register-error")
    # when they choose a good one
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_role("heading", name="Check your inbox").wait_for()
    await look(page, "register-done")
    # and open the mailed link, and press the button
    link = (await mailbox.wait_for(email, "activate")).link("/activate")
    await page.goto(link)
    await look(page, "activate")
    await page.get_by_role("button", name="Activate my account").click()
    await page.get_by_role("heading", name="Your account is activated").wait_for()
    await look(page, "activated")
    # and sign in with the keyboard alone (the identifier field has the focus)
    await page.get_by_role("link", name="Sign in").click()
    await expect(page.get_by_label("Email address")).to_be_focused()
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    # then they land on their account page, signed in
    await page.wait_for_url(f"{base}/account?app={client_id}")
    await page.get_by_role("heading", name="Hello, Ada").wait_for()
    assert page.url == f"{base}/account?app={client_id}"
    await look(page, "account")
    # and signing out ends it
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_text("You are signed out.").wait_for()
    await page.goto(f"{base}/account")
    assert "/sign-in?next=%2Faccount" in page.url


async def test_sign_in_with_an_authenticator_app_step(live_gateway, context, mailbox, clock, look):
    base, _ = live_gateway
    async with httpx.AsyncClient(base_url=base) as http:
        # given a customer who enrolled an authenticator app through the API
        gql = GraphQLClient(http, ip="127.0.0.1")
        email = unique_email("browser-mfa")
        token = await active_customer(gql, mailbox, email)
        secret = (await gql(ENROLL, token=token))["data"]["mfaTotpEnroll"]["secret"]
        await gql(CONFIRM, {"c": pyotp.TOTP(secret).at(clock.now())}, token=token)
    page = await context.new_page()
    # when they sign in with their password
    await page.goto(f"{base}/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    # then they are asked for a code, and the challenge is in no URL
    await page.get_by_role("heading", name="Confirm it is you").wait_for()
    assert page.url == f"{base}/sign-in"
    await look(page, "sign-in-code")
    # when they type a wrong code, then the right one
    await page.get_by_label("Code", exact=True).fill("000000")
    await page.get_by_role("button", name="Continue").click()
    assert "The code is not right." in await page.locator("#code-error").text_content()
    await look(page, "sign-in-code-error")
    await page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30)))
    await page.get_by_role("button", name="Continue").click()
    # then they are signed in
    await page.get_by_role("heading", name="You are signed in").wait_for()


async def test_reset_a_forgotten_password_from_the_mailed_link_and_the_expired_link_asks_again(
        live_gateway, context, mailbox, look):
    base, _ = live_gateway
    async with httpx.AsyncClient(base_url=base) as http:
        email = unique_email("browser-forgot")
        await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email)
    page = await context.new_page()
    # given a customer who forgot their password, on the sign-in page
    await page.goto(f"{base}/sign-in")
    await page.get_by_role("link", name="Forgot your password?").click()
    await look(page, "forgot-password")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a link").click()
    await page.locator("#request-done").wait_for()
    await look(page, "forgot-password-done")
    # when they open the mailed link and choose a new password
    link = (await mailbox.wait_for(email, "reset your")).link("/reset-password")
    await page.goto(link)
    await look(page, "reset-password")
    await page.get_by_label("New password", exact=True).fill("a brand new passphrase")
    await page.get_by_label("Confirm new password").fill("a brand new passphrase")
    await page.get_by_role("button", name="Set new password").click()
    await page.get_by_role("heading", name="Your password has been changed").wait_for()
    await look(page, "reset-password-done")
    # then the new password signs in
    await page.get_by_role("link", name="Sign in").click()
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill("a brand new passphrase")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="You are signed in").wait_for()
    # and the used link shows the expired-link page, which asks for a new one
    await page.goto(link)
    await page.get_by_role("heading", name="This link has expired; request a new one").wait_for()
    await look(page, "reset-password-expired")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a new link").click()
    await page.locator("#request-done").wait_for()
    await mailbox.wait_for(email, "reset your", count=2)


async def test_forgotten_username_in_a_username_application(live_gateway, context, mailbox, look):
    base, runtime = live_gateway
    _, client_id = await branded_application(runtime, "Handle Club", primary="#5f3dc4", accent="#e9ecef",
                                             username_mode="USERNAME")
    email, username = unique_email("browser-username"), f"handle_{unique_email()[5:13]}"
    async with httpx.AsyncClient(base_url=base) as http:
        await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email,
                              headers={"x-application-id": client_id}, username=username)
    page = await context.new_page()
    # given a customer of that application on its sign-in page
    await page.goto(f"{base}/sign-in?app={client_id}")
    await look(page, "sign-in-username")
    # when they follow "Forgot your username?" and give their address
    await page.get_by_role("link", name="Forgot your username?").click()
    await look(page, "forgot-username")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me my username").click()
    await page.locator("#request-done").wait_for()
    await look(page, "forgot-username-done")
    # then their username is mailed, and signs them in
    assert username in (await mailbox.wait_for(email, "Handle Club username")).text
    await page.goto(f"{base}/sign-in?app={client_id}")
    await page.get_by_label("Email or username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="You are signed in").wait_for()


async def test_a_form_posted_from_another_site_is_refused(live_gateway, context, mailbox):
    base, _ = live_gateway
    async with httpx.AsyncClient(base_url=base) as http:
        email = unique_email("browser-csrf")
        await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email)
    page = await context.new_page()
    # given a customer signed in on the pages
    await page.goto(f"{base}/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="You are signed in").wait_for()
    # when a page of another site makes the browser post our sign-out form
    attacker = await context.new_page()
    await attacker.set_content(f'<form method="post" action="{base}/sign-out"><input name="csrf_token" '
                               f'value="guess"><button>Win a prize</button></form>')
    await attacker.get_by_role("button", name="Win a prize").click()
    # then it is refused, and the customer is still signed in
    await attacker.get_by_role("heading", name="This form has expired or was sent from another site").wait_for()
    await page.goto(f"{base}/account")
    assert page.url == f"{base}/account"


async def test_pages_speak_french_to_a_french_browser(live_gateway, chromium, look):
    base, _ = live_gateway
    context = await chromium.new_context(viewport={"width": 360, "height": 780}, locale="fr-FR")
    try:
        page = await context.new_page()
        await page.goto(f"{base}/sign-in")
        await page.get_by_role("heading", name="Connectez-vous à Default Application").wait_for()
        assert await page.get_attribute("html", "lang") == "fr"
        await look(page, "sign-in-fr")
        await page.get_by_role("link", name="Créer un compte").click()
        await page.get_by_role("button", name="Créer le compte").wait_for()
        await look(page, "register-fr")
    finally:
        await context.close()
