"""Download my data: a one-time, 5-minute URL; JSON that matches the published schema; one inert HTML page."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

from gateway.observability import redact

from stores.documents import CustomerDocument
from tests.flows import PASSWORD, active_customer, add_totp_factor, link_identity, new_application, record_consent
from tests.support import assert_no_errors, unique_email

EXPORT = """
mutation Export($format: ExportFormat!) { dataExport(format: $format) { __typename
  ... on DataExportLink { url expiresAt } ... on Error { code } } }
"""


def validator(repo_root) -> Draft202012Validator:
    schema = json.loads((repo_root / "docs" / "export.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


async def customer_with_data(gql, mailbox, runtime, prefix: str, given: str = "Ada") -> tuple[str, str, str]:
    """A customer with attributes, a linked identity, a TOTP factor and a consent; (token, id, email)."""
    email = unique_email(prefix)
    token = await active_customer(gql, mailbox, email, givenName=given, familyName="Lovelace")
    me = assert_no_errors(await gql("{ me { id } }", token=token))["me"]["id"]
    await CustomerDocument.get_pymongo_collection().update_one({"_id": me}, {"$set": {
        "attributes": {"loyalty_tier": "gold", "hidden_score": 42}, "phone_number": "+33612345678",
        "address": {"street_address": "1 Rue de Rivoli", "locality": "Paris", "region": None,
                    "postal_code": "75001", "country": "FR"}}})
    await link_identity(me, "github", email)
    await add_totp_factor(me, runtime.clock.now(), "SEALED-TOTP-SECRET")
    await record_consent(me, "default", "newsletter", runtime.clock.now())
    return token, me, email


async def export_url(gql, token: str, export_format: str = "JSON", headers: dict | None = None) -> dict:
    result = assert_no_errors(await gql(EXPORT, {"format": export_format}, token=token, headers=headers))
    return result["dataExport"]


def path_of(url: str) -> str:
    return urlsplit(url).path


async def test_the_json_export_holds_the_customers_data_matches_its_schema_and_nothing_of_anothers(
        gql, http, mailbox, runtime, repo_root):
    # given a customer with data everywhere, and another customer
    token, me, email = await customer_with_data(gql, mailbox, runtime, "export")
    _, other, other_email = await customer_with_data(gql, mailbox, runtime, "bystander")

    # when they ask for a JSON export and download it
    link = await export_url(gql, token)
    response = await http.get(path_of(link["url"]))

    # then it is a private attachment with a link that lived 5 minutes
    assert link["__typename"] == "DataExportLink" and re.fullmatch(r".*/me/export/[\w-]+\.json", link["url"])
    expires = datetime.fromisoformat(link["expiresAt"])
    assert timedelta(minutes=4) < expires - runtime.clock.now() <= timedelta(minutes=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r'attachment; filename="account-data-\d{4}-\d{2}-\d{2}\.json"',
                        response.headers["content-disposition"])
    assert response.headers["cache-control"] == "no-store"
    # and it matches the published schema
    document = response.json()
    errors = [f"{list(e.path)}: {e.message}" for e in validator(repo_root).iter_errors(document)]
    assert errors == []
    # and it holds their profile with every attribute, methods, factors, sessions, consents and activity
    assert (document["profile"]["id"], document["profile"]["email"]) == (me, email)
    assert document["profile"]["address"]["locality"] == "Paris"
    assert document["attributes"] == {"loyalty_tier": "gold", "hidden_score": 42}
    assert document["loginMethods"]["password"] is True
    assert [i["provider"] for i in document["loginMethods"]["linkedIdentities"]] == ["github"]
    assert [f["type"] for f in document["mfaFactors"]] == ["TOTP"]
    assert len(document["sessions"]) == 1
    assert [c["key"] for c in document["consents"]] == ["newsletter"]
    assert document["consentHistory"][0]["userAgent"] == "Consenting Browser"
    assert {"customer.login_succeeded", "customer.data_export_requested"} <= {e["type"] for e in document["auditEvents"]}
    # and never a secret, nor anything of the other customer
    text = response.text
    assert "SEALED-TOTP-SECRET" not in text and "argon2" not in text
    assert other not in text and other_email not in text


async def test_the_link_works_once_and_for_5_minutes(gql, http, mailbox, runtime, clock):
    # given a customer with two export links asked for one after another
    token, _, _ = await customer_with_data(gql, mailbox, runtime, "once")
    first = await export_url(gql, token)
    second = await export_url(gql, token)

    # when the first (replaced) and the second are fetched, then the second again
    replaced = await http.get(path_of(first["url"]))
    head = await http.head(path_of(second["url"]))
    used = await http.get(path_of(second["url"]))
    again = await http.get(path_of(second["url"]))
    # and a third link is fetched 6 minutes later
    late = await export_url(gql, token)
    clock.advance(minutes=6)
    expired = await http.get(path_of(late["url"]))

    # then only the latest link works, once (HEAD does not use it up), and not after 5 minutes
    assert head.status_code == 200 and used.status_code == 200
    assert [replaced.status_code, again.status_code, expired.status_code] == [404, 404, 404]
    assert "invalid, used or expired" in again.text


async def test_the_html_export_is_one_inert_self_contained_page(gql, http, mailbox, runtime):
    # given a customer whose name is markup
    token, me, _ = await customer_with_data(gql, mailbox, runtime, "html", given='<script>alert("x")</script>')
    await CustomerDocument.get_pymongo_collection().update_one(
        {"_id": me}, {"$set": {"attributes": {"note": '<img src=x onerror=alert(1)>'}}})

    # when they download the HTML export
    link = await export_url(gql, token, "HTML")
    response = await http.get(path_of(link["url"]))

    # then it is an HTML attachment where the markup is text, with no script and nothing to load
    page = response.text
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.html"')
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page.lower() and "<img" not in page.lower()
    tags = re.findall(r"<[a-zA-Z][^>]*>", page)
    assert {re.match(r"<(\w+)", tag).group(1).lower() for tag in tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "tr", "th", "td", "span"}
    assert not [tag for tag in tags if re.search(r"(?i)\s(src|href|action|on\w+)\s*=", tag)]
    assert not re.search(r"(?i)url\(|@import", page)
    assert "default-src 'none'" in page
    # and it shows the same data as the JSON: the profile, the linked identity, the consent
    assert me in page and "github" in page and "newsletter" in page


async def test_export_switched_off_answers_feature_disabled(gql, mailbox, runtime):
    # given a customer of an application whose policy turns data export off
    _, client_id = await new_application(runtime, account_management={"data_export": False})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("noexport"), headers=headers)

    # when they ask for an export
    refused = await export_url(gql, token, headers=headers)

    # then it is refused
    assert refused == {"__typename": "FeatureDisabledError", "code": "FEATURE_DISABLED"}


async def test_a_link_from_before_a_password_change_or_for_a_disabled_account_downloads_nothing(
        gql, http, mailbox, runtime):
    # given a customer with an export link, whose account is then disabled
    token, me, _ = await customer_with_data(gql, mailbox, runtime, "disabled")
    link = await export_url(gql, token)
    await CustomerDocument.get_pymongo_collection().update_one(
        {"_id": me}, {"$set": {"status": "disabled"}, "$inc": {"credential_version": 1}})

    # when the link is fetched
    response = await http.get(path_of(link["url"]))

    # then nothing is downloaded
    assert response.status_code == 404 and "@" not in response.text


async def test_a_download_url_in_a_log_line_keeps_no_token(gql, mailbox, runtime):
    # given a customer's download URL, as an access log line would show it
    token, _, _ = await customer_with_data(gql, mailbox, runtime, "logged")
    url = (await export_url(gql, token, "HTML"))["url"]
    line = f'127.0.0.1:40000 - "GET {path_of(url)} HTTP/1.1" 200'

    # when the log formatter cleans it
    cleaned = redact(line)

    # then the token is gone and the route stays readable
    secret = path_of(url).rsplit("/", 1)[1].split(".")[0]
    assert secret not in cleaned and '"GET /me/export/[redacted] HTTP/1.1" 200' in cleaned


REAUTHENTICATE = """
mutation Reauth($password: String!) { sessionReauthenticate(input: {password: $password}) {
  __typename ... on SessionReauthenticated { token } } }
"""


async def test_a_session_that_signed_in_too_long_ago_must_reauthenticate_for_an_export(gql, http, mailbox, runtime,
                                                                                      clock):
    # given a customer who signed in 11 minutes ago (the policy asks for a proof within 10)
    token, _, _ = await customer_with_data(gql, mailbox, runtime, "stale")
    clock.advance(minutes=11)

    # when they ask for an export, then re-authenticate and ask again
    stale = await export_url(gql, token)
    fresh = assert_no_errors(await gql(REAUTHENTICATE, {"password": PASSWORD}, token=token))
    link = await export_url(gql, fresh["sessionReauthenticate"]["token"])

    # then the stale session gets no link, and the proven one does, which downloads
    assert stale == {"__typename": "ReauthenticationRequiredError", "code": "REAUTHENTICATION_REQUIRED"}
    assert link["__typename"] == "DataExportLink"
    assert (await http.get(path_of(link["url"]))).status_code == 200


async def test_other_requests_are_answered_while_an_export_is_being_rendered(gql, http, mailbox, runtime,
                                                                           monkeypatch):
    # given a customer's HTML export link, and a page render that holds until the test lets it go
    import asyncio
    import threading

    from gateway import exports

    token, _, _ = await customer_with_data(gql, mailbox, runtime, "busy")
    link = await export_url(gql, token, "HTML")
    rendering, release, released_by_us = threading.Event(), threading.Event(), []
    real_render = exports.render_html

    def held_render(document):
        rendering.set()
        released_by_us.append(release.wait(timeout=5))  # on the event loop, nothing could release it
        return real_render(document)

    monkeypatch.setattr(exports, "render_html", held_render)

    # when the download starts, and another request comes while the page renders
    download = asyncio.ensure_future(http.get(path_of(link["url"])))
    assert await asyncio.to_thread(rendering.wait, 10)
    health = await http.get("/healthz")
    release.set()
    response = await download

    # then the other request was answered during the render, and the download completed
    assert health.status_code == 200
    assert released_by_us == [True]
    assert response.status_code == 200 and "newsletter" in response.text
