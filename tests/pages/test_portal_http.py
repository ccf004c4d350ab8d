"""The account portal over HTTP: tabs the policy turns off, signed-out visitors, CSRF, another customer's
session, the re-authentication step, passwordless accounts, and the profile form's attribute types."""

from __future__ import annotations

import contextlib
import re
import uuid

from stores.documents import AttributeDefinitionDocument, AttributeType, CustomerDocument
from tests.flows import PASSWORD, active_customer, isolated_application, new_application, sign_in
from tests.pages.support import browser_client, form_fields, set_cookies, submit
from tests.support import unique_email

ME = "{ me { id email givenName } }"
ATTRIBUTES = "{ me { attributes { key value } } }"


@contextlib.asynccontextmanager
async def portal_browser(app, gql, mailbox, prefix="portal", *, client_id: str | None = None):
    """(email, browser, session token) of an active customer signed in on the sign-in page of ``client_id``'s
    application (the default one when None)."""
    email = unique_email(prefix)
    headers = {"x-application-id": client_id} if client_id else None
    await active_customer(gql, mailbox, email, headers=headers)
    params = {"app": client_id} if client_id else {}
    async with browser_client(app) as browser:
        page = await browser.get("/sign-in", params=params)
        done = await submit(browser, page, "/sign-in", identifier=email, password=PASSWORD)
        assert done.status_code == 303, done.text
        yield email, browser, set_cookies(done)["gw_session"]["value"]


def token_for(app, browser, action: str) -> str:
    """The CSRF token a page of ours would give this browser for a form posting to ``action``."""
    from gateway.csrf import CsrfProtection

    rules = app.state.runtime.rules
    return CsrfProtection(rules.secret_key, rules.public_url).sign(browser.cookies["gw_csrf"], action)


def tab_links(page) -> list[str]:
    nav = re.search(r'<nav class="tabs"[^>]*>(.*?)</nav>', page.text, re.S)
    return re.findall(r'href="([^"?]+)', nav.group(1)) if nav else []


async def test_a_tab_that_is_off_answers_404_and_is_not_in_the_navigation(app, runtime, gql, mailbox):
    # given an application whose policy turns security settings off
    _, client_id = await new_application(runtime, name="No Security Tab",
                                         account_management={"security_settings": False})
    async with portal_browser(app, gql, mailbox, "portal-off", client_id=client_id) as (_, browser, _token):
        # when the customer opens their account
        landing = await browser.get("/account", params={"app": client_id})
        # then the other three tabs are there, the security tab is not
        assert landing.status_code == 200
        assert tab_links(landing) == ["/account/personal", "/account/settings", "/account/privacy"]
        # and its page and its forms answer 404
        tab = await browser.get("/account/security", params={"app": client_id})
        action = "/account/security/sessions/revoke-others"  # its form, as a page shown before the change had it
        post = await browser.post(action, data={"client_id": client_id, "csrf_token": token_for(app, browser, action)},
                                  headers={"sec-fetch-site": "same-origin"})
    assert tab.status_code == 404 and "This page is not available" in tab.text
    assert post.status_code == 404


async def test_the_account_lands_on_the_first_tab_that_is_on(app, runtime, gql, mailbox):
    # given an application with personal information off
    _, client_id = await new_application(runtime, name="Settings First",
                                         account_management={"personal_information": False})
    async with portal_browser(app, gql, mailbox, "portal-first", client_id=client_id) as (_, browser, _token):
        landing = await browser.get("/account", params={"app": client_id})
    # then /account shows account settings, marked as the current tab
    assert landing.status_code == 200
    assert re.search(r'href="/account/settings\?app=[^"]+" aria-current="page"', landing.text)
    assert '<h2 class="page-heading">Account settings</h2>' in landing.text


async def test_a_signed_out_visitor_is_sent_to_sign_in_and_back_to_the_tab(app, runtime):
    _, client_id = await new_application(runtime, name="Come Back")
    async with browser_client(app) as browser:
        # when nobody is signed in and the security tab of an application is asked for
        answer = await browser.get("/account/security", params={"app": client_id})
    # then the sign-in page of that application is asked for, with the tab to return to
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/sign-in?app={client_id}&next=%2Faccount%2Fsecurity"


async def test_a_cross_site_post_to_the_portal_is_refused(app, gql, mailbox):
    async with portal_browser(app, gql, mailbox, "portal-csrf") as (_, browser, token):
        page = await browser.get("/account/personal")
        # when another site makes the browser post the profile form (its cookies go along, the token cannot)
        forged = await browser.post("/account/personal", data={"given_name": "Mallory"},
                                    headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"})
        # and even with a token of this very form, from another site
        replayed = await browser.post("/account/personal", data={
            **form_fields(page.text, "/account/personal"), "given_name": "Mallory"},
            headers={"sec-fetch-site": "cross-site"})
    # then both are refused and nothing changed
    assert forged.status_code == 403 and replayed.status_code == 403
    assert "This form has expired or was sent from another site" in forged.text
    assert (await gql(ME, token=token))["data"]["me"]["givenName"] is None


async def test_another_customers_session_cannot_be_signed_out(app, gql, mailbox):
    # given another customer, signed in
    other_email = unique_email("portal-victim")
    other_token = await active_customer(gql, mailbox, other_email)
    other_session = (await gql("{ me { sessions { id } } }", token=other_token))["data"]["me"]["sessions"][0]["id"]
    async with portal_browser(app, gql, mailbox, "portal-foreign") as (email, browser, _token):
        await sign_in(gql, email)  # a second session of their own, so the page has a "sign out" form
        page = await browser.get("/account/security")
        # when a customer sends that session's id with their own "sign out this session" form
        refused = await submit(browser, page, "/account/security/sessions/revoke", session_id=other_session)
    # then it is not found (as an unknown id would be), and the other customer is still signed in
    assert refused.status_code == 404
    assert "This session is not one of yours, or has ended already." in refused.text
    assert (await gql(ME, token=other_token))["data"]["me"]["email"] == other_email


async def test_a_stale_session_confirms_it_is_you_then_makes_the_change(app, gql, mailbox, clock):
    async with portal_browser(app, gql, mailbox, "portal-stale") as (email, browser, old_token):
        # given a customer who signed in 11 minutes ago (the policy asks for a sign-in within 10)
        clock.advance(minutes=11)
        page = await browser.get("/account/personal")
        new_email = unique_email("portal-stale-new")
        # when they ask to change their email address
        asked = await submit(browser, page, "/account/personal/email", new_email=new_email)
        # then they are asked to confirm it is them first, and come back to the tab afterwards
        assert asked.status_code == 303
        assert asked.headers["location"] == "/account/reauthenticate?next=%2Faccount%2Fpersonal"
        step = await browser.get(asked.headers["location"])
        assert step.status_code == 200 and 'id="password"' in step.text and "Confirm it is you" in step.text
        wrong = await submit(browser, step, "/account/reauthenticate", password="not my password")
        assert wrong.status_code == 400 and 'id="password-error"' in wrong.text
        confirmed = await submit(browser, wrong, "/account/reauthenticate", password=PASSWORD)
        assert confirmed.status_code == 303
        assert confirmed.headers["location"] == "/account/personal?done=reauthenticated"
        new_token = set_cookies(confirmed)["gw_session"]["value"]
        back = await browser.get(confirmed.headers["location"])
        assert "You can make your change now: submit it again." in back.text
        # when they submit the change again
        done = await submit(browser, back, "/account/personal/email", new_email=new_email)
    # then it is accepted, and the link is mailed to the new address
    assert done.status_code == 200 and 'id="email-sent"' in done.text and new_email in done.text
    assert "/email-change?token=" in (await mailbox.wait_for(new_email, "Confirm your new email")).text
    # and the session got a new token (the old one no longer works)
    assert new_token != old_token and (await gql(ME, token=old_token))["data"]["me"] is None
    assert (await gql(ME, token=new_token))["data"]["me"]["email"] == email


async def test_a_passwordless_account_has_no_password_form_and_confirms_with_an_emailed_code(app, gql, mailbox,
                                                                                           clock):
    async with portal_browser(app, gql, mailbox, "portal-passwordless") as (email, browser, token):
        # given an account without a password
        customer_id = (await gql(ME, token=token))["data"]["me"]["id"]
        await CustomerDocument.get_pymongo_collection().update_one({"_id": customer_id},
                                                                   {"$set": {"password_hash": None}})
        # when they open their security and account settings
        security = await browser.get("/account/security")
        settings = await browser.get("/account/settings")
        # then there is no password to change, and they are told they sign in without one
        assert security.status_code == 200 and "/account/security/password" not in security.text
        assert 'id="current-password"' not in security.text and "Change your password" not in security.text
        assert "No: you sign in without a password." in settings.text
        # and when a change needs a recent sign-in, they confirm with an emailed code, not a password
        clock.advance(minutes=11)
        asked = await submit(browser, security, "/account/security/recovery-codes")
        assert asked.headers["location"] == "/account/reauthenticate?next=%2Faccount%2Fsecurity"
        step = await browser.get(asked.headers["location"])
        assert 'id="password"' not in step.text and "/account/reauthenticate/send" in step.text
        sent = await submit(browser, step, "/account/reauthenticate/send")
        assert "We emailed you a code." in sent.text
        code = re.search(r"\b(\d{6})\b", (await mailbox.wait_for(email, "code")).text).group(1)
        confirmed = await submit(browser, sent, "/account/reauthenticate", code=code)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/account/security?done=reauthenticated"


async def test_the_profile_form_edits_each_attribute_type_and_ties_errors_to_fields(app, runtime, gql, mailbox):
    # given an identity store with custom attributes of every type, one of them read-only
    _, client_id, store_id = await isolated_application(runtime)
    now = runtime.clock.now()
    for key, label, kind, extra in (
            ("nickname", "Nickname", AttributeType.STRING, {}), ("shoeSize", "Shoe size", AttributeType.NUMBER, {}),
            ("newsletter", "Newsletter", AttributeType.BOOLEAN, {}),
            ("memberSince", "Member since", AttributeType.DATE, {}),
            ("tier", "Tier", AttributeType.ENUM, {"enum_values": ["bronze", "silver", "gold"]}),
            ("loyaltyId", "Loyalty number", AttributeType.STRING, {"self_service_editable": False})):
        await AttributeDefinitionDocument.get_pymongo_collection().insert_one(AttributeDefinitionDocument(
            id=uuid.uuid4().hex, store_id=store_id, key=key, label=label, type=kind, created_at=now,
            **extra).model_dump(by_alias=True))
    gql_app = gql.for_application({"x-application-id": client_id})
    async with portal_browser(app, gql, mailbox, "portal-attributes", client_id=client_id) as (_, browser, token):
        page = await browser.get("/account/personal", params={"app": client_id})
        # then each type has its control, and the read-only one is shown but not editable
        assert 'id="attr-nickname" name="attr_nickname"' in page.text
        assert re.search(r'<select id="attr-newsletter"[^>]*>\s*<option value="" selected>Not set</option>', page.text)
        assert 'type="date"' in page.text and '<option value="silver">silver</option>' in page.text
        assert "<dt>Loyalty number</dt>" in page.text and 'name="attr_loyaltyId"' not in page.text
        # when they save a number that is not one, with a wrong phone number
        refused = await submit(browser, page, "/account/personal", given_name="Ada", attr_shoeSize="big",
                               phone_number="12", attr_tier="silver", attr_newsletter="yes")
        # then each error sits with its field, what they typed stays, and nothing is saved
        assert refused.status_code == 400
        assert 'aria-describedby="attr-shoeSize-error"' in refused.text
        assert re.search(r'id="attr-shoeSize-error">Enter a number.<', refused.text)
        assert 'aria-describedby="phone-number-hint phone-number-error"' in refused.text
        assert 'value="big"' in refused.text
        assert (await gql_app(ME, token=token))["data"]["me"]["givenName"] is None
        # when they correct them
        saved = await submit(browser, refused, "/account/personal", given_name="Ada", attr_shoeSize="42.5",
                             phone_number="+41 44 668 18 00", attr_tier="silver", attr_newsletter="yes",
                             attr_memberSince="2020-02-29", attr_nickname="ada")
        assert saved.status_code == 303 and saved.headers["location"] == f"/account/personal?app={client_id}&done=saved"
        shown = await browser.get(saved.headers["location"])
    # then the values are saved in their types, and shown again
    assert "Your changes are saved." in shown.text and 'value="+41446681800"' in shown.text
    me = (await gql_app(ME, token=token))["data"]["me"]
    values = {a["key"]: a["value"] for a in (await gql_app(ATTRIBUTES, token=token))["data"]["me"]["attributes"]}
    assert me["givenName"] == "Ada"
    assert values == {"nickname": "ada", "shoeSize": 42.5, "newsletter": True, "memberSince": "2020-02-29",
                      "tier": "silver", "loyaltyId": None}


async def test_the_sign_in_page_signs_into_the_portal_of_its_own_application_only(app, runtime, gql, mailbox):
    # given a customer signed in on the default application's pages
    _, client_id = await new_application(runtime, name="Elsewhere")
    async with portal_browser(app, gql, mailbox, "portal-bound") as (email, browser, _token):
        mine = await browser.get("/account")
        # when they open another application's portal
        other = await browser.get("/account", params={"app": client_id})
    # then their session does not count there: sign in to that application first
    assert mine.status_code == 200 and email in mine.text
    assert other.status_code == 303 and other.headers["location"].startswith(f"/sign-in?app={client_id}")
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_consents_answered_under_another_application_of_the_store_are_listed_too(app, runtime, gql, mailbox):
    from stores import config

    # given an application of the same identity store whose consent the customer gave there
    other_id, _ = await new_application(runtime, name="Sister Shop")
    await config.update_application(other_id, {"consent_policy": [
        {"key": "loyalty", "title": "Loyalty programme", "description": "", "version": 1, "required": False}]})
    runtime.forget_applications()
    async with portal_browser(app, gql, mailbox, "portal-sister") as (_, browser, token):
        given = await gql('mutation($a: ID!) { consentSet(input: {applicationId: $a, key: "loyalty", granted: true}) '
                          '{ __typename } }', {"a": other_id}, token=token)
        assert given["data"]["consentSet"]["__typename"] == "ConsentRecorded", given
        # when they open the privacy tab of the default application
        page = await browser.get("/account/privacy")
        # then that consent is listed under its application, with a form to withdraw it
        assert "<h4>Sister Shop</h4>" in page.text and "Loyalty programme" in page.text
        withdrawn = await submit(browser, page, "/account/privacy/consent", application_id=other_id, key="loyalty",
                                 granted="no")
    assert withdrawn.status_code == 303 and withdrawn.headers["location"] == "/account/privacy?done=consent_saved"
    history = await gql("{ me { consentHistory { ... on ConsentHistory { events { key granted } } } } }", token=token)
    assert history["data"]["me"]["consentHistory"]["events"] == [{"key": "loyalty", "granted": False},
                                                                 {"key": "loyalty", "granted": True}]


async def test_the_totp_qr_code_is_svg_in_the_page_with_no_style_and_no_secret_in_a_url(app, gql, mailbox):
    async with portal_browser(app, gql, mailbox, "portal-qr") as (_, browser, _token):
        page = await browser.get("/account/security")
        # when the customer starts setting up an authenticator app
        started = await submit(browser, page, "/account/security/totp")
    # then the QR code is SVG markup in the page: no style attribute (the CSP allows none), no image URL
    assert started.status_code == 200
    svg = re.search(r"<svg[^>]*>.*?</svg>", started.text, re.S).group(0)
    assert "<title>QR code for your authenticator app</title>" in svg and 'viewBox="' in svg
    assert " style=" not in started.text and "<style" not in started.text and "otpauth://" not in started.text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', started.text).group(1).replace(" ", "")
    assert len(secret) == 32 and secret not in str(started.url)
    assert "default-src 'none'" in started.headers["content-security-policy"]


async def test_the_portal_speaks_french_to_a_french_browser(app, gql, mailbox):
    async with portal_browser(app, gql, mailbox, "portal-french") as (_, browser, _token):
        page = await browser.get("/account/security", headers={"accept-language": "fr-FR,fr;q=0.9"})
    # then the tabs, headings and buttons are French
    assert '<html lang="fr">' in page.text and "Informations personnelles" in page.text
    assert '<h2 class="page-heading">Paramètres de sécurité</h2>' in page.text
    assert "Configurer une application d’authentification" in page.text and "Cet appareil" in page.text


async def test_an_unknown_application_gets_the_not_found_page_on_every_portal_route(app, gql, mailbox):
    async with portal_browser(app, gql, mailbox, "portal-unknown-app") as (_, browser, _token):
        # when a signed-in customer opens a tab, and posts forms, naming an application that does not exist
        tab = await browser.get("/account/security", params={"app": "no-such-app"})
        page = await browser.get("/account/personal")
        posted = await browser.post("/account/personal", data={
            **form_fields(page.text, "/account/personal"), "client_id": "no-such-app", "given_name": "Ada"})
        step = await browser.post("/account/reauthenticate", data={"client_id": "no-such-app", "password": "x"})
    # then each answers the 404 page, never the default application's portal
    for answer in (tab, posted, step):
        assert answer.status_code == 404 and "This application is not known" in answer.text, answer.text[:300]
