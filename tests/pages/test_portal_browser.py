"""The account portal's journeys clicked through in headless chromium, as a customer would, against a live
gateway (on http://localhost, so that passkeys work) with the embedded database and the aiosmtpd mailbox.
Every tab and step on the way is photographed at 360 and 1280 px (var/screenshots/) and checked with
axe-core."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pyotp
import pytest

from stores import config
from tests.browser import served_gateway
from tests.flows import PASSWORD, active_customer, new_application
from tests.pages.support import branded_application
from tests.support import GraphQLClient, unique_email

ME = "{ me { email givenName } }"


@pytest.fixture(scope="module")
async def portal_gateway(settings, clock):
    """The gateway on http://localhost:<port>: a secure context and a relying party id browsers accept."""
    async with served_gateway(settings, clock, passkeys=True) as served:
        yield served


async def customer(base: str, mailbox, prefix: str, client_id: str | None = None, **extra) -> tuple[str, str]:
    """(email, API session token) of a new active customer of ``client_id``'s application."""
    email = unique_email(prefix)
    async with httpx.AsyncClient(base_url=base) as http:
        headers = {"x-application-id": client_id} if client_id else None
        token = await active_customer(GraphQLClient(http, ip="127.0.0.1"), mailbox, email, headers=headers, **extra)
    return email, token


def app_query(client_id: str | None) -> str:
    return f"?app={client_id}" if client_id else ""


async def sign_in_on_page(page, base: str, email: str, client_id: str | None = None) -> None:
    """Sign in on the sign-in page; the browser lands on the account portal."""
    await page.goto(f"{base}/sign-in{app_query(client_id)}")
    await page.get_by_label("Email address", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(re.compile(r"/account(\?|$)"))


async def test_edit_a_name_on_the_personal_information_tab(portal_gateway, context, mailbox, look):
    base, _ = portal_gateway
    email, token = await customer(base, mailbox, "portal-name")
    page = await context.new_page()
    # given a customer signed in: the account lands on its first tab
    await sign_in_on_page(page, base, email)
    await page.get_by_role("heading", name="Personal information").wait_for()
    assert await page.get_by_role("link", name="Personal information").get_attribute("aria-current") == "page"
    await look(page, "personal")
    # when they type a phone number that is not one
    await page.get_by_label("Phone number").fill("12")
    await page.get_by_role("button", name="Save changes").click()
    # then the error sits with the field, which describes itself with it
    error = page.locator("#phone-number-error")
    assert "international format" in await error.text_content()
    assert "phone-number-error" in await page.get_by_label("Phone number").get_attribute("aria-describedby")
    await look(page, "personal-error")
    # when they fix it, type their given name and press Enter
    await page.get_by_label("Phone number").fill("")
    await page.get_by_label("Given name").fill("Grace")
    await page.get_by_label("Given name").press("Enter")
    # then the change is saved, and the greeting uses it at once
    await page.get_by_text("Your changes are saved.").wait_for()
    await page.get_by_role("heading", name="Hello, Grace").wait_for()
    assert await page.get_by_label("Given name").input_value() == "Grace"
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await GraphQLClient(http)(ME, token=token))["data"]["me"]["givenName"] == "Grace"


async def test_change_email_through_the_mailed_link(portal_gateway, context, mailbox, look):
    base, _ = portal_gateway
    email, _token = await customer(base, mailbox, "portal-email")
    new_email = unique_email("portal-email-new")
    page = await context.new_page()
    # given a signed-in customer on the personal information tab
    await sign_in_on_page(page, base, email)
    await page.goto(f"{base}/account/personal")
    # when they ask to use a new address
    await page.get_by_label("New email address").fill(new_email)
    await page.get_by_role("button", name="Change my email address").click()
    # then they are told to check that inbox, and the address stays as it is until then
    await page.locator("#email-sent").wait_for()
    assert await page.locator("#current-email").text_content() == email
    await look(page, "email-sent")
    # when they open the mailed link and confirm
    link = (await mailbox.wait_for(new_email, "Confirm your new email")).link("/email-change")
    await page.goto(link)
    await page.get_by_role("button", name="Use this address").click()
    await page.get_by_role("heading", name="Your email address is changed").wait_for()
    # then the portal shows the new address
    await page.goto(f"{base}/account/personal")
    assert await page.locator("#current-email").text_content() == new_email


async def test_enrol_an_authenticator_app_after_confirming_it_is_you(portal_gateway, context, mailbox, clock, look):
    base, _ = portal_gateway
    email, _token = await customer(base, mailbox, "portal-totp")
    page = await context.new_page()
    await sign_in_on_page(page, base, email)
    await page.goto(f"{base}/account/security")
    await look(page, "security")
    # given a sign-in longer ago than the policy's ten minutes
    clock.advance(minutes=11)
    # when they set up an authenticator app, they are asked to confirm it is them first
    await page.get_by_role("button", name="Set up an authenticator app").click()
    await page.get_by_role("heading", name="Confirm it is you").wait_for()
    await look(page, "reauthenticate")
    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Confirm", exact=True).click()
    await page.get_by_text("You can make your change now").wait_for()
    # and then the set-up shows a QR code and the key to type
    await page.get_by_role("button", name="Set up an authenticator app").click()
    await page.get_by_role("heading", name="Set up an authenticator app").wait_for()
    assert await page.locator(".qr svg title").text_content() == "QR code for your authenticator app"
    await look(page, "totp")
    secret = (await page.locator("#totp-secret").text_content()).replace(" ", "")
    # when they type a wrong code, then the one their app shows
    await page.get_by_label("Code from the app").fill("000000")
    await page.get_by_role("button", name="Turn on the authenticator app").click()
    assert "not right" in await page.locator("#code-error").text_content()
    assert (await page.locator("#totp-secret").text_content()).replace(" ", "") == secret
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(clock.now()))
    await page.get_by_role("button", name="Turn on the authenticator app").click()
    # then the app is a second factor
    await page.get_by_text("Your authenticator app is set up.").wait_for()
    await page.get_by_role("button", name="Remove the authenticator app").wait_for()
    # and recovery codes are shown once, with a warning
    await page.get_by_role("button", name="Make recovery codes").click()
    await page.get_by_text("Save these codes now. They are shown only this once.").wait_for()
    codes = await page.locator("#recovery-codes code").all_text_contents()
    assert len(codes) == 10 and all(re.fullmatch(r"[A-Z2-7]{5}-[A-Z2-7]{5}", code) for code in codes)
    await look(page, "recovery-codes")
    await page.get_by_role("link", name="I have saved my codes").click()
    await page.get_by_text("Codes left: 10.").wait_for()
    # and the next sign-in asks for a code from the app
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await page.get_by_label("Email address", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.get_by_role("heading", name="Confirm it is you").wait_for()


async def test_sign_out_another_session(portal_gateway, chromium, context, mailbox, look):
    base, _ = portal_gateway
    email, app_token = await customer(base, mailbox, "portal-sessions")  # signed in through an app (the API)
    page = await context.new_page()
    other_context = await chromium.new_context(locale="en-GB", user_agent=(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Mobile/15E148 Safari/604.1"))
    try:
        # given the customer signed in through an app, on a phone, and on this browser
        other = await other_context.new_page()
        await sign_in_on_page(other, base, email)
        await sign_in_on_page(page, base, email)
        await page.goto(f"{base}/account/security")
        # then the sessions show where they are, this one marked
        sessions = page.locator("section[aria-labelledby=sessions-heading] .items > li")
        assert await sessions.count() == 3
        assert "This device" in await sessions.first.text_content()
        assert "Mobile Safari" in await page.locator("section[aria-labelledby=sessions-heading]").text_content()
        await look(page, "sessions")
        # when they sign out the phone's session
        phone = sessions.filter(has_text="Mobile Safari")
        await phone.get_by_role("button", name="Sign out this session").click()
        await page.get_by_text("That session is signed out.").wait_for()
        # then the phone is signed out
        await other.goto(f"{base}/account")
        assert "/sign-in?next=%2Faccount" in other.url
        # when they sign out everywhere else
        await page.get_by_role("button", name="Sign out everywhere else").click()
        await page.get_by_text("Every other session is signed out.").wait_for()
        # then the app's session is over too, and this one goes on
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await GraphQLClient(http)(ME, token=app_token))["data"]["me"] is None
        assert await page.locator("section[aria-labelledby=sessions-heading] .items > li").count() == 1
    finally:
        await other_context.close()


async def test_toggle_a_consent(portal_gateway, context, mailbox, look):
    base, runtime = portal_gateway
    application_id, client_id = await branded_application(runtime, "Consent Shop", primary="#0b7285",
                                                          accent="#ffd43b")
    await config.update_application(application_id, {"consent_policy": [
        {"key": "terms", "title": "Terms of sale", "description": "How we sell to you.", "version": 1,
         "required": True},
        {"key": "news", "title": "Product news by email", "description": "", "version": 1, "required": False}]})
    runtime.forget_applications()
    email, _token = await customer(base, mailbox, "portal-consent", client_id)
    page = await context.new_page()
    # given a signed-in customer of an application that asks for two consents, on the privacy tab
    await sign_in_on_page(page, base, email, client_id)
    await page.get_by_role("link", name="Privacy and data").click()
    await page.get_by_role("heading", name="Privacy and data").wait_for()
    # when they agree to the news, then change their mind
    await page.get_by_role("button", name="Agree to Product news by email").click()
    await page.get_by_text("Your answer is saved.").wait_for()
    await look(page, "privacy")
    await page.get_by_role("button", name="Withdraw Product news by email").click()
    await page.get_by_text("Your answer is saved.").wait_for()
    # then they are back to not having agreed
    await page.get_by_role("button", name="Agree to Product news by email").wait_for()
    # and a required consent, once given, cannot be withdrawn, and the page says why
    await page.get_by_role("button", name="Agree to Terms of sale").click()
    await page.get_by_text("Required to use Consent Shop: it cannot be withdrawn.").wait_for()
    assert await page.get_by_role("button", name="Withdraw Terms of sale").count() == 0


async def test_download_both_exports(portal_gateway, context, mailbox, look):
    base, _ = portal_gateway
    email, _token = await customer(base, mailbox, "portal-export")
    page = await context.new_page()
    await sign_in_on_page(page, base, email)
    await page.goto(f"{base}/account/privacy")
    # when they download their data as JSON
    async with page.expect_download() as json_download:
        await page.get_by_role("button", name="Download as JSON").click()
    document = json.loads(Path(await (await json_download.value).path()).read_text())
    # then the file parses and holds their profile
    assert document["profile"]["email"] == email and document["$schema"].startswith("identity-gateway/export/")
    assert (await json_download.value).suggested_filename.endswith(".json")
    # and as a web page
    async with page.expect_download() as html_download:
        await page.get_by_role("button", name="Download as a web page (HTML)").click()
    html = Path(await (await html_download.value).path()).read_text()
    assert "<title>Your account data (" in html and email in html
    # and the portal is still there
    await page.get_by_role("heading", name="Privacy and data").wait_for()


async def test_delete_the_account_and_undo_it_from_the_mailed_link(portal_gateway, context, mailbox, look):
    base, runtime = portal_gateway
    _, client_id = await new_application(runtime, name="Grace Period Shop", account_deletion={"grace_days": 7})
    email, _token = await customer(base, mailbox, "portal-delete", client_id)
    page = await context.new_page()
    await sign_in_on_page(page, base, email, client_id)
    await page.get_by_role("link", name="Account settings").click()
    await page.get_by_role("heading", name="How you sign in").wait_for()
    await look(page, "settings")
    # when they follow "Delete my account", they are told what happens and asked to confirm
    await page.get_by_role("link", name="Delete my account").click()
    await page.get_by_role("heading", name="Delete your account").wait_for()
    await look(page, "delete")
    await page.get_by_label("Your password").fill("not my password")
    await page.get_by_role("button", name="Delete my account").click()
    assert "not right" in await page.locator("#current-password-error").text_content()
    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Delete my account").click()
    # then the account waits to be deleted, they are signed out, and the undo is explained
    await page.get_by_role("heading", name="Your account will be deleted").wait_for()
    assert "open it before then to keep your account" in await page.locator("main").text_content()
    await look(page, "deleted")
    await page.goto(f"{base}/account{app_query(client_id)}")
    assert "/sign-in?" in page.url
    # when they open the mailed undo link and keep the account
    link = (await mailbox.wait_for(email, "will be deleted")).link("/account/restore")
    await page.goto(link)
    await page.get_by_role("button", name="Keep my account").click()
    await page.get_by_role("heading", name="Your account is restored").wait_for()
    # then they can sign in again
    await sign_in_on_page(page, base, email, client_id)


async def test_add_rename_and_remove_a_passkey(portal_gateway, context, mailbox, look):
    base, _ = portal_gateway
    email, _token = await customer(base, mailbox, "portal-passkey")
    page = await context.new_page()
    await sign_in_on_page(page, base, email)
    # given a browser with a platform authenticator that verifies its user
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    authenticator = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    await page.goto(f"{base}/account/security")
    # when they add a passkey, naming it
    await page.get_by_text("You have no passkey yet.").wait_for()
    await page.get_by_label("Name of the new passkey (optional)").fill("Laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    # then it is listed, and the authenticator holds a discoverable credential for this site
    await page.get_by_text("Your passkey is added.").wait_for()
    passkeys = page.locator("section[aria-labelledby=passkeys-heading]")
    await passkeys.get_by_text("Laptop", exact=True).wait_for()
    held = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]})
    assert [(c["rpId"], c["isResidentCredential"]) for c in held["credentials"]] == [("localhost", True)]
    await look(page, "security-passkey")
    # when they rename it
    await passkeys.get_by_label("Name of this passkey").fill("Work laptop")
    await passkeys.get_by_role("button", name="Rename").click()
    await page.get_by_text("The passkey is renamed.").wait_for()
    await passkeys.get_by_text("Work laptop", exact=True).wait_for()
    # and remove it
    await passkeys.get_by_role("button", name="Remove Work laptop").click()
    await page.get_by_text("The passkey is removed.").wait_for()
    await page.get_by_text("You have no passkey yet.").wait_for()
