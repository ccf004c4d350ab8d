"""Email templates per application and locale, branding, and the outbox's delivery guarantees."""

from __future__ import annotations

from tests.conftest import running_gateway, with_smtp_down
from tests.flows import active_customer, admin_token, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

UPDATE = """
mutation Update($input: EmailTemplateUpdateInput!) {
  emailTemplateUpdate(input: $input) {
    __typename
    ... on EmailTemplate { kind locale subject isDefault }
    ... on InvalidInputError { fields { field code message } }
    ... on Error { code message }
  }
}
"""

RESET_TEMPLATE = """
mutation Reset($input: EmailTemplateRefInput!) {
  emailTemplateReset(input: $input) { __typename ... on EmailTemplate { subject isDefault locale } }
}
"""

PREVIEW = """
query Preview($input: EmailTemplateRefInput!) {
  emailTemplatePreview(input: $input) { __typename ... on EmailTemplatePreview { subject html text } ... on Error { code } }
}
"""

LIST = """
query List($id: ID!) {
  emailTemplates(applicationId: $id) { __typename ... on EmailTemplateList { templates { kind locale isDefault } } }
}
"""

BRANDING = """
mutation Brand($id: ID!, $input: ApplicationInput!) {
  applicationUpdate(id: $id, input: $input) {
    __typename
    ... on Application { name branding { primaryColor accentColor logoUrl supportEmail } }
    ... on InvalidInputError { fields { field code } }
  }
}
"""

ASK_RESET = "mutation Ask($email: String!) { passwordResetRequest(input: {email: $email}) { __typename } }"

CUSTOM_HTML = ('<p style="color:{{ application.primary_color }}">{{ application.name }} reset for '
               '{{ customer.email }}: <a href="{{ action_url }}">go</a></p>')
CUSTOM_TEXT = "Custom text for {{ application.name }}: {{ action_url }}"


def template_input(application_id: str, kind: str = "password_reset", locale: str | None = None, **parts) -> dict:
    return {"input": {"applicationId": application_id, "kind": kind, "locale": locale,
                      "subject": parts.get("subject", "Custom reset for {{ application.name }}"),
                      "html": parts.get("html", CUSTOM_HTML), "text": parts.get("text", CUSTOM_TEXT)}}


async def test_override_and_branding_colours_appear_in_the_sent_mail(gql, mailbox, runtime):
    # given an application with its own branding and its own password-reset template
    application_id, client_id = await new_application(runtime, name="Acme Shop")
    admin = await admin_token(runtime, gql)
    branded = assert_no_errors(await gql(BRANDING, {"id": application_id, "input": {"branding": {
        "primaryColor": "#123456", "accentColor": "#abcdef", "supportEmail": "help@acme.example"}}},
        token=admin))["applicationUpdate"]
    assert branded["branding"]["primaryColor"] == "#123456"
    saved = assert_no_errors(await gql(UPDATE, template_input(application_id), token=admin))["emailTemplateUpdate"]
    assert saved == {"__typename": "EmailTemplate", "kind": "password_reset", "locale": None,
                     "subject": "Custom reset for {{ application.name }}", "isDefault": False}
    runtime.forget_applications()

    # when a customer of that application asks for a reset
    headers = {"x-application-id": client_id}
    email = unique_email("branded")
    await active_customer(gql, mailbox, email, headers=headers)
    assert_no_errors(await gql(ASK_RESET, {"email": email}, headers=headers))

    # then the mail uses the override and the branding
    mail = await mailbox.wait_for(email, "custom reset")
    assert mail.subject == "Custom reset for Acme Shop"
    assert 'style="color:#123456"' in mail.html and f"reset for {email}" in mail.html
    assert mail.text.startswith("Custom text for Acme Shop: http://gateway.test/reset-password?token=")

    # and the activation mail (not overridden) still comes from the default, branded
    activation = await mailbox.wait_for(email, "activate")
    assert "Acme Shop" in activation.subject and "#123456" in activation.html


async def test_locale_override_falls_back_to_application_then_default(gql, mailbox, runtime):
    application_id, client_id = await new_application(runtime, name="Globex")
    admin = await admin_token(runtime, gql)
    assert_no_errors(await gql(UPDATE, template_input(application_id, locale="fr",
                                                      subject="Réinitialisez votre mot de passe {{ application.name }}"),
                               token=admin))

    french, german = unique_email("fr"), unique_email("de")
    await active_customer(gql, mailbox, french, headers={"x-application-id": client_id, "accept-language": "fr-FR,fr;q=0.9"})
    await active_customer(gql, mailbox, german, headers={"x-application-id": client_id, "accept-language": "de"})
    for email in (french, german):
        assert_no_errors(await gql(ASK_RESET, {"email": email}, headers={"x-application-id": client_id}))

    # fr-FR falls back to the application's "fr" override; German has none, so the default applies
    assert (await mailbox.wait_for(french, "réinitialisez")).subject == "Réinitialisez votre mot de passe Globex"
    assert (await mailbox.wait_for(german, "reset your")).subject == "Reset your Globex password"

    # an application-wide override (no locale) beats the default for every other language
    assert_no_errors(await gql(UPDATE, template_input(application_id), token=admin))
    assert_no_errors(await gql(ASK_RESET, {"email": german}, headers={"x-application-id": client_id}))
    assert (await mailbox.wait_for(german, "custom reset")).subject == "Custom reset for Globex"
    assert_no_errors(await gql(RESET_TEMPLATE, {"input": {"applicationId": application_id,
                                                          "kind": "password_reset"}}, token=admin))

    # resetting the locale override brings back the default
    back = assert_no_errors(await gql(RESET_TEMPLATE, {"input": {"applicationId": application_id,
                                                                 "kind": "password_reset", "locale": "fr"}},
                                      token=admin))["emailTemplateReset"]
    assert back == {"__typename": "EmailTemplate", "subject": "Reset your {{ application.name }} password\n",
                    "isDefault": True, "locale": None}


async def test_broken_templates_are_rejected_at_save(gql, runtime):
    application_id, _ = await new_application(runtime)
    admin = await admin_token(runtime, gql)
    cases = [
        ("TEMPLATE_SYNTAX", {"html": "<p>{% if %}</p>"}),
        ("TEMPLATE_RENDER", {"text": "Hello {{ nobody.knows }} {{ action_url }}"}),
        ("TEMPLATE_UNSAFE", {"text": "{{ action_url }} {{ ''.__class__.__mro__[1].__subclasses__() }}"}),
        ("MISSING_LINK", {"text": "No link here, {{ customer.email }}"}),
        ("REQUIRED", {"subject": "   "}),
        ("TEMPLATE_RENDER", {"text": "{{ action_url }} {{ customer.given_name.upper() }}"}),  # given_name may be null
    ]
    for code, parts in cases:
        result = assert_no_errors(await gql(UPDATE, template_input(application_id, **parts), token=admin))
        rejected = result["emailTemplateUpdate"]
        assert rejected["__typename"] == "InvalidInputError", (code, rejected)
        assert code in [f["code"] for f in rejected["fields"]], (code, rejected)

    listed = assert_no_errors(await gql(LIST, {"id": application_id}, token=admin))["emailTemplates"]["templates"]
    assert all(t["isDefault"] for t in listed)
    assert {t["kind"] for t in listed} >= {"activation", "registration_attempt", "password_reset",
                                           "password_changed", "username_reminder"}


async def test_unknown_kind_locale_and_application_are_typed_errors(gql, runtime):
    application_id, _ = await new_application(runtime)
    admin = await admin_token(runtime, gql)
    bad_kind = assert_no_errors(await gql(UPDATE, template_input(application_id, kind="nope"), token=admin))
    assert bad_kind["emailTemplateUpdate"]["fields"][0]["field"] == "kind"
    bad_locale = assert_no_errors(await gql(UPDATE, template_input(application_id, locale="french!"), token=admin))
    assert bad_locale["emailTemplateUpdate"]["fields"][0]["field"] == "locale"
    missing = assert_no_errors(await gql(UPDATE, template_input("no-such-app"), token=admin))
    assert missing["emailTemplateUpdate"]["code"] == "NOT_FOUND"


async def test_preview_renders_sample_data_with_branding(gql, runtime):
    application_id, _ = await new_application(runtime, name="Initech")
    admin = await admin_token(runtime, gql)
    preview = assert_no_errors(await gql(PREVIEW, {"input": {"applicationId": application_id,
                                                             "kind": "username_reminder"}}, token=admin))
    rendered = preview["emailTemplatePreview"]
    assert rendered["subject"] == "Your Initech username"
    assert "ada" in rendered["text"] and "#2563eb" in rendered["html"]


RESET_PAGE = """
mutation Page($id: ID!, $input: ApplicationInput!) {
  applicationUpdate(id: $id, input: $input) {
    __typename
    ... on Application { passwordResetUrl }
    ... on InvalidInputError { fields { field code message } }
  }
}
"""


async def test_the_applications_own_reset_page_must_be_https(gql, runtime):
    # given an application and an admin
    application_id, _ = await new_application(runtime)
    admin = await admin_token(runtime, gql)

    # when the reset page is set to anything but an absolute https URL
    for url in ("http://shop.example/reset", "HTTP://shop.example/reset", "javascript:alert(1)", "/reset",
                "https:///reset", "https://shop.example/reset page", 'https://shop.example/"><script>'):
        refused = assert_no_errors(await gql(RESET_PAGE, {"id": application_id, "input": {
            "redirectUrls": ["https://shop.example"], "passwordResetUrl": url}}, token=admin))

        # then it is refused with a field error that says https
        assert refused["applicationUpdate"]["__typename"] == "InvalidInputError", url
        fields = refused["applicationUpdate"]["fields"]
        assert [(f["field"], f["code"]) for f in fields] == [("passwordResetUrl", "INVALID")], url
        assert "https://" in fields[0]["message"]

    # and an https URL is kept
    kept = assert_no_errors(await gql(RESET_PAGE, {"id": application_id, "input": {
        "redirectUrls": ["https://shop.example"], "passwordResetUrl": "https://shop.example/reset?x=1"}}, token=admin))
    assert kept["applicationUpdate"] == {"__typename": "Application",
                                         "passwordResetUrl": "https://shop.example/reset?x=1"}


async def test_template_admin_needs_the_templates_permissions(gql, mailbox, runtime):
    application_id, _ = await new_application(runtime)
    customer = await active_customer(gql, mailbox, unique_email("nosy"))
    viewer = await admin_token(runtime, gql, role="viewer")

    assert_denied(await gql(UPDATE, template_input(application_id), token=customer), "FORBIDDEN")
    assert_denied(await gql(UPDATE, template_input(application_id), token=viewer), "FORBIDDEN")
    assert_denied(await gql(LIST, {"id": application_id}), "UNAUTHENTICATED")


async def test_failed_sends_are_kept_retried_and_emptied_once_delivered(settings, clock):
    from stores.documents import OutboxDocument

    # given an SMTP server that is down
    down, port = with_smtp_down(settings)
    async with running_gateway(down, clock) as (app, http):
        runtime = app.state.runtime
        gql = GraphQLClient(http)
        email = unique_email("outage")

        # when a customer registers, the request still succeeds
        accepted = assert_no_errors(await gql(
            "mutation($e: String!) { accountRegister(input: {email: $e, password: \"correct horse battery staple\"})"
            " { __typename } }", {"e": email}))
        assert accepted["accountRegister"]["__typename"] == "AccountRegisterAccepted"
        await runtime.drain()

        # then the message waits in the outbox with its body, encrypted at rest, and a later retry time
        stored = await OutboxDocument.get_pymongo_collection().find_one({"to": email})
        assert stored["status"] == "pending" and stored["attempts"] == 1
        assert "/activate?token=" in runtime.mailer.unseal(stored["body"]).text
        assert "activate" not in str(stored).lower()

        # when the server is back and the retry time has come
        controller, box = start_smtp_on(port)
        try:
            clock.advance(seconds=6)
            assert await runtime.mailer.retry_due() >= 1
            mail = await box.wait_for(email, "activate")
        finally:
            controller.stop()

        # then it is delivered, and only metadata remains
        assert "/activate?token=" in mail.text
        sent = await OutboxDocument.get_pymongo_collection().find_one({"to": email})
        assert sent["status"] == "sent" and sent["kind"] == "activation" and sent["created_at"]
        assert "body" not in sent


def start_smtp_on(port: int):
    from aiosmtpd.controller import Controller

    from tests.support import Mailbox

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, box


async def test_default_mails_never_draw_text_in_the_accent_colour(gql, mailbox, runtime):
    # given an application whose accent is a light yellow (fine for a mark, unreadable as text on white)
    application_id, client_id = await new_application(runtime, name="Sunny")
    admin = await admin_token(runtime, gql)
    assert_no_errors(await gql(BRANDING, {"id": application_id, "input": {"branding": {"accentColor": "#fde047"}}},
                               token=admin))
    runtime.forget_applications()

    # when a customer of it asks for a reset (the default template)
    headers = {"x-application-id": client_id}
    email = unique_email("accent")
    await active_customer(gql, mailbox, email, headers=headers)
    assert_no_errors(await gql(ASK_RESET, {"email": email}, headers=headers))

    # then the accent marks the expiry notice as a border, and the notice's text keeps the default colour
    mail = await mailbox.wait_for(email, "reset")
    assert "border-left:4px solid #fde047" in mail.html
    assert "color:#fde047" not in mail.html
