"""The sign-in page over HTTP: the browser-session cookie, the second-factor step, sign-out, CSRF."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pyotp

from gateway.app import create_app
from tests.flows import PASSWORD, active_customer
from tests.pages.support import browser_client, form_fields, set_cookies, submit
from tests.support import GraphQLClient, unique_email

ME = "{ me { email } }"
ENROLL = "mutation { mfaTotpEnroll { ... on MfaTotpEnrollment { secret } } }"
CONFIRM = "mutation($c: String!) { mfaTotpConfirm(input: {code: $c}) { __typename } }"


@contextlib.asynccontextmanager
async def signed_in_browser(app, gql, mailbox, prefix="page-sign-in"):
    """(email, browser, the sign-in's answer) of an active customer signed in on the page."""
    email = unique_email(prefix)
    await active_customer(gql, mailbox, email)
    async with browser_client(app) as browser:
        page = await browser.get("/sign-in")
        done = await submit(browser, page, "/sign-in", identifier=email, password=PASSWORD)
        assert done.status_code == 303, done.text
        yield email, browser, done


async def test_signing_in_sets_an_http_only_lax_cookie_and_lands_on_the_account_page(app, gql, mailbox):
    # given an active customer on the sign-in page
    async with signed_in_browser(app, gql, mailbox) as (email, browser, done):
        # then the answer redirects to the account page and hands over the session in a cookie
        assert done.headers["location"] == "/account"
        cookie = set_cookies(done)["gw_session"]
        assert cookie["value"].startswith("gwc_")
        assert (cookie["path"], cookie["httponly"], cookie["samesite"], cookie["secure"]) == ("/", True, "lax", "")
        assert int(cookie["max-age"]) > 3600
        # and the account page knows the customer
        account = await browser.get("/account")
        assert account.status_code == 200 and email in account.text
        # and the same token works as a bearer token for API clients
        assert (await gql(ME, token=cookie["value"]))["data"]["me"]["email"] == email


async def test_the_api_never_reads_the_browser_session_cookie(app, gql, mailbox):
    # given a browser signed in through the page
    async with signed_in_browser(app, gql, mailbox, "page-cookie-api") as (email, browser, done):
        # when the browser calls /graphql with its cookie only
        answer = await browser.post("/graphql", json={"query": ME})
    # then the API sees nobody: it is bearer-only, so a cross-site request cannot ride on the cookie
    assert answer.json()["data"]["me"] is None


async def test_on_https_the_session_cookie_is_host_only_and_secure(settings, clock, gql, mailbox):
    # given the gateway behind an https public URL
    secure_app = create_app(settings.model_copy(update={"public_url": "https://id.example"}), clock=clock)
    async with secure_app.router.lifespan_context(secure_app):
        email = unique_email("page-https")
        await active_customer(gql, mailbox, email)
        async with browser_client(secure_app, "https://id.example") as browser:
            # when a customer signs in on its sign-in page
            page = await browser.get("/sign-in")
            done = await submit(browser, page, "/sign-in", identifier=email, password=PASSWORD,
                                headers={"origin": "https://id.example"})
    # then the session and device cookies are __Host- prefixed and Secure
    cookies = set_cookies(done)
    assert cookies["__Host-gw_session"]["secure"] is True and cookies["__Host-gw_session"]["path"] == "/"
    assert cookies["__Host-gw_device"]["secure"] is True and cookies["__Host-gw_device"]["httponly"] is True
    assert "gw_session" not in cookies


async def test_signing_out_ends_the_session_and_clears_the_cookie(app, gql, mailbox):
    # given a signed-in browser
    async with signed_in_browser(app, gql, mailbox, "page-sign-out") as (email, browser, done):
        token = set_cookies(done)["gw_session"]["value"]
        # when the customer presses "Sign out" on the account page
        account = await browser.get("/account")
        out = await submit(browser, account, "/sign-out")
        # then the cookie is cleared and the session is over, for the page and for the API
        assert out.status_code == 303 and out.headers["location"].startswith("/sign-in")
        assert set_cookies(out)["gw_session"]["max-age"] == "0"
        assert (await browser.get("/account")).headers["location"] == "/sign-in?next=%2Faccount"
    assert (await gql(ME, token=token))["data"]["me"] is None


async def test_a_wrong_password_is_said_once_and_a_missing_one_is_tied_to_its_field(app, gql, mailbox):
    email = unique_email("page-wrong")
    await active_customer(gql, mailbox, email)
    async with browser_client(app) as browser:
        page = await browser.get("/sign-in")
        # when the password is wrong
        wrong = await submit(browser, page, "/sign-in", identifier=email, password="not the password")
        # then the page says so, keeps the identifier, and sets no session
        assert wrong.status_code == 400 and "The identifier or password is incorrect." in wrong.text
        assert f'value="{email}"' in wrong.text and "gw_session" not in set_cookies(wrong)
        # when the password is left out
        empty = await submit(browser, wrong, "/sign-in", identifier=email, password="")
    # then the error is tied to the password field
    assert empty.status_code == 400
    assert 'id="password-error"' in empty.text and "Enter your password." in empty.text
    assert 'aria-invalid="true" aria-describedby="password-error"' in empty.text


async def test_the_second_factor_step_carries_its_challenge_in_the_form_not_the_url(app, gql, mailbox, clock):
    # given a customer with an authenticator app, enrolled through the API
    email = unique_email("page-mfa")
    token = await active_customer(gql, mailbox, email)
    secret = (await gql(ENROLL, token=token))["data"]["mfaTotpEnroll"]["secret"]
    assert (await gql(CONFIRM, {"c": pyotp.TOTP(secret).at(clock.now())}, token=token))[
        "data"]["mfaTotpConfirm"]["__typename"] == "MfaFactorAdded"
    async with browser_client(app) as browser:
        # when they sign in with their password
        page = await browser.get("/sign-in")
        step = await submit(browser, page, "/sign-in", identifier=email, password=PASSWORD)
        # then the answer is the code step itself (no redirect: no challenge in a URL), and no session yet
        assert step.status_code == 200 and "location" not in step.headers and "gw_session" not in set_cookies(step)
        fields = form_fields(step.text, "/sign-in/code")
        assert fields["challenge_token"].startswith("gwm_") and fields["factor"] == "TOTP"
        assert fields["challenge_token"] not in str(step.url)
        # when they type a wrong code, the error is tied to the code field and they may try again
        wrong = await submit(browser, step, "/sign-in/code", code="000000")
        assert wrong.status_code == 400 and 'id="code-error"' in wrong.text and "The code is not right." in wrong.text
        # when they type the code their app shows
        code = pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30))
        done = await submit(browser, wrong, "/sign-in/code", code=code)
        # then they are signed in
        assert done.status_code == 303 and done.headers["location"] == "/account"
        assert (await browser.get("/account")).status_code == 200


async def test_a_cross_site_post_to_a_state_changing_page_is_refused(app, gql, mailbox):
    # given a signed-in browser
    async with signed_in_browser(app, gql, mailbox, "page-csrf") as (email, browser, done):
        token = set_cookies(done)["gw_session"]["value"]
        # when another site makes the browser post the sign-out and sign-in forms (no token of ours)
        headers = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
        sign_out = await browser.post("/sign-out", data={}, headers=headers)
        forged_sign_in = await browser.post("/sign-in", data={"identifier": email, "password": PASSWORD},
                                            headers=headers)
        # and when a request without Fetch Metadata forges the form but cannot know the token
        no_metadata = await browser.post("/sign-out", data={"csrf_token": "guess"})
    # then each is refused and changes nothing
    for answer in (sign_out, forged_sign_in, no_metadata):
        assert answer.status_code == 403 and "nothing was changed" in answer.text
        assert "gw_session" not in set_cookies(answer)
    assert (await gql(ME, token=token))["data"]["me"]["email"] == email


async def test_next_only_leads_to_a_page_of_this_gateway(app, gql, mailbox):
    email = unique_email("page-next")
    await active_customer(gql, mailbox, email)
    async with browser_client(app) as browser:
        # when the sign-in page is opened with next pointing at another site
        page = await browser.get("/sign-in", params={"next": "//evil.example/steal"})
        done = await submit(browser, page, "/sign-in", identifier=email, password=PASSWORD,
                            next="https://evil.example/")
    # then the customer still lands on our account page
    assert done.status_code == 303 and done.headers["location"] == "/account"
