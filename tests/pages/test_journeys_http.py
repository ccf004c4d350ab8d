"""The public journeys over HTTP: register, forgotten password and reset, forgotten username; the
application and language a page acts in."""

from __future__ import annotations

from tests.flows import PASSWORD, active_customer, new_application, sign_in
from tests.pages.support import branded_application, browser_client, form_fields, submit
from tests.support import unique_email


async def test_registering_on_the_page_mails_an_activation_link_in_the_browsers_language(app, gql, mailbox):
    email = unique_email("page-register")
    async with browser_client(app, ip=None) as browser:
        # given a French-speaking visitor on the registration page
        french = {"accept-language": "fr-CA,fr;q=0.9,en;q=0.5"}
        page = await browser.get("/register", headers=french)
        assert page.status_code == 200 and '<html lang="fr">' in page.text and "Créez votre compte" in page.text
        # when they register
        done = await submit(browser, page, "/register", headers=french, email=email, password=PASSWORD,
                            given_name="Ada")
    # then the page tells them to check their inbox, and the activation mail is in French
    assert done.status_code == 200 and email in done.text and "Consultez votre boîte de réception" in done.text
    mail = await mailbox.wait_for(email, "Activez votre compte")
    assert mail.text.startswith("Bonjour") and "/activate?token=" in mail.text


async def test_registration_errors_are_tied_to_their_fields(app):
    async with browser_client(app) as browser:
        page = await browser.get("/register")
        # when the email is not an address and the password is too common
        refused = await submit(browser, page, "/register", email="not-an-address", password="password")
    # then each error sits with its field, and what was typed (but the password) is kept
    assert refused.status_code == 400
    assert 'id="email-error"' in refused.text and 'aria-describedby="email-error"' in refused.text
    assert 'value="not-an-address"' in refused.text and 'value="password"' not in refused.text


async def test_forgotten_password_then_reset_from_the_mailed_link(app, gql, mailbox):
    email = unique_email("page-reset")
    await active_customer(gql, mailbox, email)
    async with browser_client(app) as browser:
        # given a customer who asks for a reset link on the page
        page = await browser.get("/forgot-password")
        asked = await submit(browser, page, "/forgot-password", email=email)
        assert asked.status_code == 200 and 'id="request-done"' in asked.text
        link = (await mailbox.wait_for(email, "reset your")).link("/reset-password")
        # when they open the link and type two different passwords
        form = await browser.get(link.split("gateway.test", 1)[1])
        assert form.status_code == 200 and "Choose a new password" in form.text
        mismatch = await submit(browser, form, "/reset-password", new_password="a fresh passphrase 1",
                                confirm_password="another passphrase 2")
        # then the error is tied to the confirmation field
        assert mismatch.status_code == 400 and 'id="confirm-password-error"' in mismatch.text
        # when they type the same new password twice
        done = await submit(browser, mismatch, "/reset-password", new_password="a fresh passphrase 1",
                            confirm_password="a fresh passphrase 1")
        assert done.status_code == 200 and "Your password has been changed" in done.text
        # then the new password signs in, and the used link offers to ask again
        assert (await sign_in(gql, email, "a fresh passphrase 1"))["__typename"] == "SessionCreated"
        again = await browser.get(link.split("gateway.test", 1)[1])
    assert again.status_code == 400 and "This link has expired; request a new one" in again.text
    assert form_fields(again.text, "/forgot-password")["csrf_token"]


async def test_forgotten_username_for_a_username_application_in_its_brand(app, runtime, gql, mailbox):
    # given an application whose customers choose a username, and one of its customers
    _, client_id = await branded_application(runtime, "Username Shop", username_mode="USERNAME")
    email = unique_email("page-username")
    headers = {"x-application-id": client_id}
    await active_customer(gql, mailbox, email, headers=headers, username="ada_" + email[14:22])
    async with browser_client(app) as browser:
        # when they open the sign-in page of that application and follow "Forgot your username?"
        sign_in_page = await browser.get("/sign-in", params={"app": client_id})
        assert f'href="/forgot-username?app={client_id}"' in sign_in_page.text
        page = await browser.get("/forgot-username", params={"app": client_id})
        assert "Username Shop" in page.text and form_fields(page.text, "/forgot-username")["client_id"] == client_id
        done = await submit(browser, page, "/forgot-username", email=email)
    # then the page confirms, and the username is mailed
    assert done.status_code == 200 and 'id="request-done"' in done.text
    assert "ada_" in (await mailbox.wait_for(email, "Username Shop username")).text


async def test_pages_an_application_does_not_offer_are_not_found(app, runtime):
    # given an application with registration off, and the default one (email as username)
    _, closed = await new_application(runtime, name="Closed Shop", registration={"enabled": False})
    async with browser_client(app) as browser:
        register = await browser.get("/register", params={"app": closed})
        reminder = await browser.get("/forgot-username")
        unknown = await browser.get("/sign-in", params={"app": "app_no-such-client"})
        sign_in_page = await browser.get("/sign-in", params={"app": closed})
    # then each says it is not available (never the default application's page in its place)
    assert register.status_code == 404 and "This is not available here" in register.text
    assert reminder.status_code == 404
    assert unknown.status_code == 404 and "This application is not known" in unknown.text
    assert "/register" not in sign_in_page.text


async def test_a_signed_in_customers_locale_wins_over_the_browsers(app, gql, mailbox):
    # given a customer whose profile says French
    email = unique_email("page-locale")
    token = await active_customer(gql, mailbox, email)
    updated = await gql('mutation { profileUpdate(input: {locale: "fr"}) { __typename } }', token=token)
    assert updated["data"]["profileUpdate"]["__typename"] == "ProfileUpdated", updated
    async with browser_client(app) as browser:
        page = await browser.get("/sign-in", headers={"accept-language": "en"})
        signed = await submit(browser, page, "/sign-in", identifier=email, password=PASSWORD)
        assert signed.status_code == 303
        # when the browser asks for English
        account = await browser.get("/account", headers={"accept-language": "en-GB,en"})
    # then the page speaks the customer's language
    assert '<html lang="fr">' in account.text and "Se déconnecter" in account.text
