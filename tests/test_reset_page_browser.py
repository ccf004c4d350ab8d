"""The hosted pages in a real browser (the reset dialog, the activation confirm page): Debian's chromium
driven by Playwright, over real HTTP."""

from __future__ import annotations

import pytest

from tests.browser import launched_chromium, served_gateway
from tests.flows import active_customer, register, sign_in
from tests.support import GraphQLClient, unique_email


@pytest.fixture(scope="module")
async def live_gateway(settings, clock):
    """The base URL of the gateway served by uvicorn on a loopback port, emailed links pointing at it."""
    async with served_gateway(settings, clock) as (base, _runtime):
        yield base


@pytest.fixture(scope="module")
async def browser():
    async with launched_chromium() as launched:
        yield launched


async def test_reset_dialog_shows_mismatch_then_sets_the_password(live_gateway, browser, mailbox):
    import httpx

    async with httpx.AsyncClient(base_url=live_gateway) as http:
        # given an active customer who asked for a reset link
        gql = GraphQLClient(http, ip="127.0.0.1")
        email = unique_email("browser")
        await active_customer(gql, mailbox, email)
        await gql("mutation($e: String!) { passwordResetRequest(input: {email: $e}) { __typename } }", {"e": email})
        link = (await mailbox.wait_for(email, "reset your")).link("/reset-password")
        assert link.startswith(live_gateway)

        page = await browser.new_page()
        try:
            # when they open the link and type two different passwords
            await page.goto(link)
            await page.fill("#new-password", "a fresh passphrase 1")
            await page.fill("#confirm-password", "a different passphrase 2")
            await page.click("button[type=submit]")

            # then they see the mismatch error
            error = page.locator("#reset-error")
            await error.wait_for(state="visible")
            assert "do not match" in (await error.text_content())

            # when they type a common password, they are told why it is refused
            await page.fill("#new-password", "password")
            await page.fill("#confirm-password", "password")
            await page.click("button[type=submit]")
            # (a locator, not wait_for_function: the page's CSP rightly forbids the eval that polling uses)
            await page.locator("#reset-error", has_text="too common").wait_for(state="visible")

            # when they type the same good password twice
            await page.fill("#new-password", "a fresh passphrase 1")
            await page.fill("#confirm-password", "a fresh passphrase 1")
            await page.click("button[type=submit]")

            # then they see success, and the new password works
            await page.locator("#reset-done").wait_for(state="visible")
            assert "password has been changed" in (await page.locator("#reset-done").text_content())
            assert (await sign_in(gql, email, "a fresh passphrase 1"))["__typename"] == "SessionCreated"

            # and opening the used link again offers to request a new one
            await page.goto(link)
            expired = page.locator("#expired-section")
            await expired.wait_for(state="visible")
            assert "This link has expired; request a new one" in (await expired.text_content())
            await page.fill("#email", email)
            await page.click("#request-form button[type=submit]")
            await page.locator("#request-done").wait_for(state="visible")
            await mailbox.wait_for(email, "reset your", count=2)
        finally:
            await page.close()


async def test_reset_page_for_an_unknown_token_offers_a_new_link(live_gateway, browser):
    page = await browser.new_page()
    try:
        response = await page.goto(f"{live_gateway}/reset-password?token=not-a-real-token")
        assert response.status == 400
        assert await page.locator("#expired-section").is_visible()
        assert await page.locator("#reset-form").count() == 0
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    finally:
        await page.close()


async def test_activation_link_is_confirmed_with_the_button(live_gateway, browser, mailbox):
    import httpx

    async with httpx.AsyncClient(base_url=live_gateway) as http:
        # given a customer who registered and got the activation mail
        gql = GraphQLClient(http, ip="127.0.0.1")
        email = unique_email("browser-activate")
        await register(gql, email)
        link = (await mailbox.wait_for(email, "activate")).link("/activate")
        assert link.startswith(live_gateway)

        page = await browser.new_page()
        try:
            # when they open the mailed link
            await page.goto(link)

            # then they see the confirm page, and the account is not active yet
            assert await page.locator("h1").text_content() == "Activate your account"
            assert (await sign_in(gql, email))["__typename"] == "AccountNotActivatedError"

            # when they press the button
            await page.click("button[type=submit]")

            # then the account is activated, and they can sign in through the API
            await page.locator("h1", has_text="Your account is activated").wait_for(state="visible")
            assert (await sign_in(gql, email))["__typename"] == "SessionCreated"
        finally:
            await page.close()
