"""Applications through the admin API: create with a generated client id, partial updates with branding
and redirect URLs (the allow-list for links back to the application's site), consent policy, delete."""

from __future__ import annotations

import pytest

from stores import config
from stores.documents import AuditEventDocument
from tests.flows import REGISTER, active_customer, admin_token, new_application
from tests.support import assert_denied, assert_no_errors, unique_email

APP_FIELDS = """
  id clientId name policyId identityStoreId isDefault passwordResetUrl redirectUrls version
  branding { logoUrl primaryColor accentColor supportEmail }
  consentPolicy { key title description version required } policy { id name }
"""

CREATE = f"""
mutation Create($input: ApplicationInput!) {{
  applicationCreate(input: $input) {{
    __typename ... on Application {{ {APP_FIELDS} }} ... on InvalidInputError {{ fields {{ field code message }} }}
  }}
}}
"""

UPDATE = f"""
mutation Update($id: ID!, $input: ApplicationInput!, $version: Int) {{
  applicationUpdate(id: $id, input: $input, version: $version) {{
    __typename ... on Application {{ {APP_FIELDS} }} ... on InvalidInputError {{ fields {{ field code message }} }}
    ... on ConflictError {{ currentVersion }} ... on Error {{ code field }}
  }}
}}
"""

CONSENT = f"""
mutation Consent($id: ID!, $items: [ConsentItemInput!]!, $version: Int) {{
  applicationConsentPolicyUpdate(id: $id, input: {{items: $items}}, version: $version) {{
    __typename ... on Application {{ {APP_FIELDS} }} ... on InvalidInputError {{ fields {{ field code message }} }}
    ... on ConflictError {{ currentVersion }} ... on Error {{ code field }}
  }}
}}
"""

DELETE = """
mutation Delete($id: ID!) {
  applicationDelete(id: $id) { __typename ... on ApplicationDeleted { id } ... on Error { code field message } }
}
"""

ONE = f"query One($id: ID!) {{ application(id: $id) {{ {APP_FIELDS} }} }}"
ALL = "query { applications { id clientId name } }"
ASK_RESET = "mutation Ask($email: String!) { passwordResetRequest(input: {email: $email}) { __typename } }"


async def create_app(gql, admin: str, **fields) -> dict:
    created = assert_no_errors(await gql(CREATE, {"input": {"name": "Shop", **fields}}, token=admin))[
        "applicationCreate"]
    assert created["__typename"] == "Application", created
    return created


async def update_app(gql, admin: str, application_id: str, version: int | None = None, **fields) -> dict:
    return assert_no_errors(await gql(UPDATE, {"id": application_id, "input": fields, "version": version},
                                      token=admin))["applicationUpdate"]


def field_errors(result: dict) -> list[tuple[str, str]]:
    assert result["__typename"] == "InvalidInputError", result
    return [(f["field"], f["code"]) for f in result["fields"]]


async def test_a_created_application_gets_a_client_id_and_serves_requests_at_once(gql, runtime):
    # given an admin
    admin = await admin_token(runtime, gql)

    # when they create two applications
    first = await create_app(gql, admin, name="Acme Shop", redirectUrls=["https://shop.acme.example"])
    second = await create_app(gql, admin, name="Acme Blog")

    # then each has its own random public client id, the default policy and store, and defaults elsewhere
    assert first["clientId"].startswith("app_") and len(first["clientId"]) == len("app_") + 22
    assert first["clientId"] != second["clientId"]
    assert first["policy"] == {"id": "default", "name": "Default Self-Service Policy"}
    assert first["identityStoreId"] == "default" and first["isDefault"] is False and first["version"] == 1
    assert first["redirectUrls"] == ["https://shop.acme.example"] and first["consentPolicy"] == []
    assert first["branding"] == {"logoUrl": None, "primaryColor": "#2563eb", "accentColor": "#f59e0b",
                                 "supportEmail": None}
    assert {"id": first["id"], "clientId": first["clientId"], "name": "Acme Shop"} in \
        assert_no_errors(await gql(ALL, token=admin))["applications"]
    # and customers can register through it right away
    registered = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("new-app"),
                                                                 "password": "a long enough passphrase"}},
                                            headers={"x-application-id": first["clientId"]}))
    assert registered["accountRegister"]["__typename"] == "AccountRegisterAccepted"


async def test_an_update_changes_only_the_given_fields_and_validates_branding(gql, runtime):
    # given an application with a support email
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin, branding={"supportEmail": "help@shop.example"})

    # when an admin changes the name and a colour, then sends bad branding values
    updated = await update_app(gql, admin, app["id"], name="Renamed", branding={"primaryColor": "#0b7285"})
    refused = await update_app(gql, admin, app["id"], branding={
        "primaryColor": "blue", "accentColor": "#12345", "logoUrl": "http://cdn.example/logo.png",
        "supportEmail": "not an email"})

    # then the good change is kept (the rest unchanged), and each bad value is named
    assert updated["name"] == "Renamed" and updated["version"] == 2
    assert updated["branding"] == {**app["branding"], "primaryColor": "#0b7285"}
    assert field_errors(refused) == [("branding.primaryColor", "INVALID"), ("branding.accentColor", "INVALID"),
                                     ("branding.logoUrl", "INVALID"), ("branding.supportEmail", "INVALID")]
    assert assert_no_errors(await gql(ONE, {"id": app["id"]}, token=admin))["application"]["version"] == 2


@pytest.mark.parametrize("url", [
    "http://shop.example", "https://user:pw@shop.example", "https://shop.example/?next=1", "https://shop.example/#x",
    "https://shop.example/a/../b", "javascript:alert(1)", "/relative", "https://", "https://shop.example/a b",
    "ftp://shop.example",
])
async def test_redirect_urls_must_be_absolute_https_without_tricks(gql, runtime, url):
    # given an application
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin)

    # when an admin puts an unacceptable URL in its redirect URLs
    refused = await update_app(gql, admin, app["id"], redirectUrls=["https://ok.example", url])

    # then it is refused, naming its place in the list
    assert field_errors(refused) == [("redirectUrls.1", "INVALID")]


async def test_loopback_http_and_duplicates(gql, runtime):
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin)

    local = await update_app(gql, admin, app["id"],
                             redirectUrls=["http://localhost:3000/callback", "http://127.0.0.1:8080"])
    twice = await update_app(gql, admin, app["id"],
                             redirectUrls=["https://Shop.example:443/app", "https://shop.example/app"])

    assert local["redirectUrls"] == ["http://localhost:3000/callback", "http://127.0.0.1:8080"]
    assert field_errors(twice) == [("redirectUrls.1", "DUPLICATE")]


@pytest.mark.parametrize(("reset_url", "allowed"), [
    ("https://a.example.com/reset", True),
    ("https://a.example.com:443/account/reset?x=1", True),
    ("https://a.example.com.evil/reset", False),
    ("https://a.example.comevil/reset", False),
    ("https://evil.example/https://a.example.com/reset", False),
    ("https://b.example.com/app", True),
    ("https://b.example.com/app/reset", True),
    ("https://b.example.com/application/reset", False),
    ("https://b.example.com/reset", False),
    ("https://b.example.com:8443/app/reset", False),
])
async def test_the_own_reset_page_must_fall_within_the_redirect_urls(gql, runtime, reset_url, allowed):
    # given an application that allows one whole origin, and one path on another
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin, redirectUrls=["https://a.example.com", "https://b.example.com/app"])

    # when an admin sets its own reset page
    result = await update_app(gql, admin, app["id"], passwordResetUrl=reset_url)

    # then only a URL on an allowed origin, at a path boundary, is accepted
    if allowed:
        assert result["passwordResetUrl"] == reset_url
    else:
        assert field_errors(result) == [("passwordResetUrl", "NOT_ALLOWED")]


async def test_redirect_urls_cannot_drop_the_reset_page_they_cover(gql, runtime):
    # given an application whose own reset page is covered by its redirect URLs
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin, redirectUrls=["https://shop.example"],
                           passwordResetUrl="https://shop.example/reset")

    # when an admin replaces the redirect URLs with ones that do not cover it, then together with a new page
    refused = await update_app(gql, admin, app["id"], redirectUrls=["https://other.example"])
    moved = await update_app(gql, admin, app["id"], redirectUrls=["https://other.example"],
                             passwordResetUrl="https://other.example/reset")

    # then the first is refused, the second is fine
    assert field_errors(refused) == [("redirectUrls", "NOT_ALLOWED")]
    assert moved["passwordResetUrl"] == "https://other.example/reset"


async def test_a_reset_page_outside_the_redirect_urls_is_never_linked(gql, mailbox, runtime):
    # given an application whose stored reset page is outside its redirect URLs (saved before they existed)
    application_id, client_id = await new_application(runtime)
    await config.update_application(application_id, {"password_reset_url": "https://evil.example/reset",
                                                      "redirect_urls": ["https://shop.example"]})
    runtime.forget_applications()
    headers = {"x-application-id": client_id}
    email = unique_email("outside")
    await active_customer(gql, mailbox, email, headers=headers)

    # when the customer asks for a reset
    assert_no_errors(await gql(ASK_RESET, {"email": email}, headers=headers))
    mail = await mailbox.wait_for(email, "reset your")

    # then the link points at the hosted page, never at the site outside the allow-list
    assert "evil.example" not in mail.text and "evil.example" not in mail.html
    assert mail.link("/reset-password").startswith(runtime.settings.public_url + "/reset-password?token=")


async def test_policy_id_must_name_a_policy_and_a_stale_version_conflicts(gql, runtime):
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin)

    unknown = await update_app(gql, admin, app["id"], policyId="no-such-policy")
    renamed = await update_app(gql, admin, app["id"], version=1, name="First")
    stale = await update_app(gql, admin, app["id"], version=1, name="Second")
    missing = await update_app(gql, admin, "no-such-app", name="x")

    assert field_errors(unknown) == [("policyId", "NOT_FOUND")]
    assert renamed["name"] == "First" and renamed["version"] == 2
    assert stale == {"__typename": "ConflictError", "currentVersion": 2, "code": "CONFLICT", "field": None}
    assert missing == {"__typename": "NotFoundError", "code": "NOT_FOUND", "field": "id"}


async def test_consent_items_are_validated_and_versions_only_grow(gql, runtime):
    # given an application with a consent policy
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin)
    items = [{"key": "terms", "title": "Terms of service", "version": 1, "required": True},
             {"key": "newsletter", "title": "Newsletter", "description": "Monthly news"}]
    saved = assert_no_errors(await gql(CONSENT, {"id": app["id"], "items": items}, token=admin))[
        "applicationConsentPolicyUpdate"]

    # when an admin bumps the terms, then tries bad items
    bumped = assert_no_errors(await gql(CONSENT, {"id": app["id"], "items": [{**items[0], "version": 2}, items[1]]},
                                        token=admin))["applicationConsentPolicyUpdate"]
    bad = assert_no_errors(await gql(CONSENT, {"id": app["id"], "items": [
        {**items[0], "version": 1}, {"key": "Bad Key", "title": "x"}, {"key": "newsletter", "title": ""},
        {"key": "newsletter", "title": "Twice"}]}, token=admin))["applicationConsentPolicyUpdate"]

    # then the saved and bumped policies are as sent, and every bad item field is named
    assert saved["consentPolicy"] == [
        {"key": "terms", "title": "Terms of service", "description": "", "version": 1, "required": True},
        {"key": "newsletter", "title": "Newsletter", "description": "Monthly news", "version": 1, "required": False}]
    assert [(i["key"], i["version"]) for i in bumped["consentPolicy"]] == [("terms", 2), ("newsletter", 1)]
    assert field_errors(bad) == [("items.0.version", "OUT_OF_RANGE"), ("items.1.key", "INVALID"),
                                 ("items.2.title", "REQUIRED"), ("items.3.key", "DUPLICATE")]
    current = assert_no_errors(await gql(ONE, {"id": app["id"]}, token=admin))["application"]
    assert current["consentPolicy"] == bumped["consentPolicy"]


async def test_the_default_application_cannot_be_deleted_and_another_is_gone_at_once(gql, mailbox, runtime):
    # given an application with a customer, that this instance has cached
    admin = await admin_token(runtime, gql)
    app = await create_app(gql, admin)
    headers = {"x-application-id": app["clientId"]}
    await active_customer(gql, mailbox, unique_email("stays"), headers=headers)

    # when an admin deletes the default application, then this one (twice)
    default = assert_no_errors(await gql(DELETE, {"id": "default"}, token=admin))["applicationDelete"]
    deleted = assert_no_errors(await gql(DELETE, {"id": app["id"]}, token=admin))["applicationDelete"]
    again = assert_no_errors(await gql(DELETE, {"id": app["id"]}, token=admin))["applicationDelete"]

    # then the default is refused, the other is deleted and its client id is unknown on the next request
    assert default["__typename"] == "InvalidInputError" and default["field"] == "id"
    assert deleted == {"__typename": "ApplicationDeleted", "id": app["id"]}
    assert again["__typename"] == "NotFoundError"
    response = await gql.post(REGISTER, {"input": {"email": unique_email("late"), "password": "x" * 20}},
                              headers=headers)
    assert response.status_code == 400 and "Unknown application" in response.text
    assert assert_no_errors(await gql(ONE, {"id": app["id"]}, token=admin))["application"] is None


async def test_each_application_mutation_records_an_audit_event_with_the_admin_as_actor(gql, runtime):
    admin = await admin_token(runtime, gql)
    me = assert_no_errors(await gql("{ adminMe { id } }", token=admin))["adminMe"]

    app = await create_app(gql, admin)
    await update_app(gql, admin, app["id"], name="Renamed", branding={"accentColor": "#000000"})
    assert_no_errors(await gql(CONSENT, {"id": app["id"], "items": [{"key": "terms", "title": "Terms"}]}, token=admin))
    assert_no_errors(await gql(DELETE, {"id": app["id"]}, token=admin))

    events = await AuditEventDocument.get_pymongo_collection().find({"subject_id": app["id"]}).sort("at", 1).to_list()
    assert [e["type"] for e in events] == ["application.created", "application.updated",
                                           "application.consent_policy_updated", "application.deleted"]
    assert {(e["actor_kind"], e["actor_id"]) for e in events} == {("admin", me["id"])}
    assert events[1]["data"]["fields"] == ["branding.accent_color", "name"]


async def test_applications_need_their_permissions(gql, mailbox, runtime):
    customer = await active_customer(gql, mailbox, unique_email("nosy"))
    viewer, support = await admin_token(runtime, gql, "viewer"), await admin_token(runtime, gql, "support")
    app = await create_app(gql, await admin_token(runtime, gql))

    assert_denied(await gql(ALL), "UNAUTHENTICATED")
    assert_denied(await gql(CREATE, {"input": {"name": "x"}}), "UNAUTHENTICATED")
    for token in (customer, support):
        assert_denied(await gql(ALL, token=token), "FORBIDDEN")
        assert_denied(await gql(ONE, {"id": app["id"]}, token=token), "FORBIDDEN")
    for token in (customer, viewer, support):
        assert_denied(await gql(CREATE, {"input": {"name": "x"}}, token=token), "FORBIDDEN")
        assert_denied(await gql(UPDATE, {"id": app["id"], "input": {"name": "x"}}, token=token), "FORBIDDEN")
        assert_denied(await gql(CONSENT, {"id": app["id"], "items": []}, token=token), "FORBIDDEN")
        assert_denied(await gql(DELETE, {"id": app["id"]}, token=token), "FORBIDDEN")
    assert assert_no_errors(await gql(ONE, {"id": app["id"]}, token=viewer))["application"]["id"] == app["id"]


async def test_an_applications_policy_is_read_only_with_policies_read(gql, runtime):
    # given an application, and a partner key that may read applications but not policies
    application_id, _ = await new_application(runtime)
    owner = await admin_token(runtime, gql, "owner")
    create_key = "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { ... on ApiKeyCreated { key } } }"
    key = assert_no_errors(await gql(create_key, {"input": {"name": "app-reader", "permissions": ["applications:read"]}},
                                     token=owner))["apiKeyCreate"]["key"]

    # when the key reads the application with and without its policy
    bare = await gql("query($id: ID!) { application(id: $id) { id policyId } }", {"id": application_id}, token=key)
    with_policy = await gql("query($id: ID!) { application(id: $id) { id policy { name } } }",
                            {"id": application_id}, token=key)

    # then it sees the application and which policy it has, but not the policy's content
    assert assert_no_errors(bare)["application"]["id"] == application_id
    assert_denied(with_policy, "FORBIDDEN")
