"""Consents: each application's consent items, the customer's answers as an append-only history,
re-acceptance after a version bump, and required items that cannot be withdrawn."""

from __future__ import annotations

import uuid

from stores import config
from stores.documents import ApplicationDocument, ConsentEventDocument, ConsentItem
from tests.conftest import running_gateway
from tests.flows import active_customer, admin_token, new_application
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

CONSENTS = """
query Consents($app: ID) { me { consents(applicationId: $app) { __typename
  ... on Consents { items { applicationId key title required currentVersion granted grantedAt version
                            needsReacceptance } }
  ... on Error { code field } } } }
"""

HISTORY = """
query History($app: ID) { me { consentHistory(applicationId: $app) { __typename
  ... on ConsentHistory { events { id applicationId key version granted at ipAddress userAgent } }
  ... on Error { code } } } }
"""

SET = """
mutation Set($input: ConsentSetInput!) { consentSet(input: $input) { __typename
  ... on ConsentRecorded { consent { key granted version needsReacceptance currentVersion } }
  ... on Error { code message field } } }
"""

ADMIN_CONSENTS = """
query Customer($id: ID!, $app: ID) { customer(id: $id) { consents(applicationId: $app) { __typename
  ... on Consents { items { key granted version } } } } }
"""

TERMS = ConsentItem(key="terms", title="Terms of service", version=1, required=True)
NEWSLETTER = ConsentItem(key="newsletter", title="Newsletter", description="A monthly email", version=1)


async def application_with(runtime, *items: ConsentItem) -> tuple[str, dict]:
    """An application (of the default identity store) asking for these consents; (id, its headers)."""
    application_id, client_id = await new_application(runtime, name="Consenting App")
    await config.update_application(application_id, {"consent_policy": [i.model_dump() for i in items]})
    runtime.forget_applications()
    return application_id, {"x-application-id": client_id}


async def answer(gql, token, application_id: str, key: str, granted: bool, headers: dict | None = None) -> dict:
    result = await gql(SET, {"input": {"applicationId": application_id, "key": key, "granted": granted}},
                       token=token, headers=headers)
    return assert_no_errors(result)["consentSet"]


async def items_of(gql, token, application_id: str | None = None, headers: dict | None = None) -> dict:
    result = assert_no_errors(await gql(CONSENTS, {"app": application_id}, token=token, headers=headers))
    consents = result["me"]["consents"]
    assert consents["__typename"] == "Consents", consents
    return {item["key"]: item for item in consents["items"]}


async def test_granting_lists_each_item_with_its_answer(gql, mailbox, runtime):
    # given an application asking for terms (required) and a newsletter, and one of its customers
    application_id, headers = await application_with(runtime, TERMS, NEWSLETTER)
    token = await active_customer(gql, mailbox, unique_email("consent"), headers=headers)

    # when they accept the terms only
    granted = await answer(gql, token, application_id, "terms", True, headers)

    # then the terms show as granted at version 1, the newsletter as not granted
    assert granted == {"__typename": "ConsentRecorded", "consent": {
        "key": "terms", "granted": True, "version": 1, "needsReacceptance": False, "currentVersion": 1}}
    items = await items_of(gql, token, headers=headers)
    assert list(items) == ["terms", "newsletter"]
    assert items["terms"]["granted"] is True and items["terms"]["grantedAt"] is not None
    assert items["terms"]["applicationId"] == application_id and items["terms"]["required"] is True
    assert items["newsletter"] == {"applicationId": application_id, "key": "newsletter", "title": "Newsletter",
                                   "required": False, "currentVersion": 1, "granted": False, "grantedAt": None,
                                   "version": None, "needsReacceptance": False}


async def test_bumping_an_items_version_asks_for_reacceptance(gql, mailbox, runtime):
    # given a customer who accepted version 1 of the terms
    application_id, headers = await application_with(runtime, TERMS, NEWSLETTER)
    token = await active_customer(gql, mailbox, unique_email("bump"), headers=headers)
    await answer(gql, token, application_id, "terms", True, headers)

    # when an admin bumps the terms to version 2
    await config.update_application(application_id, {"consent_policy": [
        TERMS.model_copy(update={"version": 2}).model_dump(), NEWSLETTER.model_dump()]})
    runtime.forget_applications()
    before = (await items_of(gql, token, headers=headers))["terms"]
    # and the customer accepts again
    await answer(gql, token, application_id, "terms", True, headers)
    after = (await items_of(gql, token, headers=headers))["terms"]

    # then it asked for re-acceptance of version 2, and no longer does once accepted
    assert (before["granted"], before["version"], before["currentVersion"], before["needsReacceptance"]) == \
        (True, 1, 2, True)
    assert (after["version"], after["needsReacceptance"]) == (2, False)


async def test_a_required_consent_cannot_be_withdrawn_and_an_optional_one_can(gql, mailbox, runtime):
    # given a customer who accepted both items
    application_id, headers = await application_with(runtime, TERMS, NEWSLETTER)
    token = await active_customer(gql, mailbox, unique_email("withdraw"), headers=headers)
    await answer(gql, token, application_id, "terms", True, headers)
    await answer(gql, token, application_id, "newsletter", True, headers)

    # when they withdraw each
    terms = await answer(gql, token, application_id, "terms", False, headers)
    newsletter = await answer(gql, token, application_id, "newsletter", False, headers)

    # then the terms refuse with ConsentRequiredError and stay granted; the newsletter is withdrawn
    assert (terms["__typename"], terms["code"]) == ("ConsentRequiredError", "CONSENT_REQUIRED")
    assert newsletter["consent"]["granted"] is False
    items = await items_of(gql, token, headers=headers)
    assert items["terms"]["granted"] is True and items["newsletter"]["granted"] is False


async def test_the_history_keeps_every_event_unchanged_newest_first(gql, mailbox, runtime):
    # given a customer who grants, withdraws and grants the newsletter again, from a browser
    application_id, headers = await application_with(runtime, NEWSLETTER)
    browser = {**headers, "user-agent": "Consent Browser/1.0"}
    token = await active_customer(gql, mailbox, unique_email("history"), headers=headers)
    await answer(gql, token, application_id, "newsletter", True, browser)
    first = assert_no_errors(await gql(HISTORY, token=token, headers=headers))["me"]["consentHistory"]["events"]
    await answer(gql, token, application_id, "newsletter", False, browser)
    await answer(gql, token, application_id, "newsletter", False, browser)  # changes nothing
    await answer(gql, token, application_id, "newsletter", True, browser)

    # when they read their history
    events = assert_no_errors(await gql(HISTORY, {"app": application_id}, token=token,
                                        headers=headers))["me"]["consentHistory"]["events"]

    # then it holds the three changes, newest first, with who/what/version/when/IP/user agent,
    # and the first event is exactly as it was
    assert [e["granted"] for e in events] == [True, False, True]
    assert all(e["key"] == "newsletter" and e["version"] == 1 and e["applicationId"] == application_id
               for e in events)
    assert {e["ipAddress"] for e in events} == {gql.ip} and {e["userAgent"] for e in events} == {"Consent Browser/1.0"}
    assert events[-1] == first[0]
    assert await ConsentEventDocument.get_pymongo_collection().count_documents(
        {"application_id": application_id}) == 3


async def test_unknown_applications_and_keys_are_not_found(gql, mailbox, runtime):
    # given a customer, an application of another identity store, and one of theirs asking for terms
    application_id, headers = await application_with(runtime, TERMS)
    token = await active_customer(gql, mailbox, unique_email("unknown"), headers=headers)
    other_store = f"app-{uuid.uuid4().hex[:10]}"
    await config.insert_if_missing(ApplicationDocument(
        id=other_store, client_id=f"client-{other_store}", name="Elsewhere", policy_id="default",
        identity_store_id="another-store", consent_policy=[TERMS], created_at=runtime.clock.now()))

    # when they answer an unknown key, an unknown application, and the other store's application
    key = await answer(gql, token, application_id, "cookies", True, headers)
    unknown = await answer(gql, token, uuid.uuid4().hex, "terms", True, headers)
    foreign = await answer(gql, token, other_store, "terms", True, headers)
    listed = assert_no_errors(await gql(CONSENTS, {"app": other_store}, token=token, headers=headers))

    # then each is NotFoundError naming the field, and the foreign application looks like an unknown one
    assert (key["__typename"], key["field"]) == ("NotFoundError", "key")
    assert unknown == foreign and (unknown["__typename"], unknown["field"]) == ("NotFoundError", "applicationId")
    assert listed["me"]["consents"] == {"__typename": "NotFoundError", "code": "NOT_FOUND", "field": "applicationId"}


async def test_any_application_of_the_customers_store_can_be_asked_about(gql, mailbox, runtime):
    # given a customer who registered through the default application, and another application of the same store
    application_id, _ = await application_with(runtime, NEWSLETTER)
    token = await active_customer(gql, mailbox, unique_email("elsewhere"))

    # when they answer and read that application's consents
    granted = await answer(gql, token, application_id, "newsletter", True)
    items = await items_of(gql, token, application_id)

    # then it works: the data is theirs
    assert granted["consent"]["granted"] is True and items["newsletter"]["granted"] is True


async def test_an_admin_reads_the_consents_of_the_customer_asked_about(gql, mailbox, runtime):
    # given a customer who accepted the terms, and a viewer admin (customers:read)
    application_id, headers = await application_with(runtime, TERMS)
    token = await active_customer(gql, mailbox, unique_email("adminconsent"), headers=headers)
    await answer(gql, token, application_id, "terms", True, headers)
    me = assert_no_errors(await gql("{ me { id } }", token=token, headers=headers))["me"]["id"]
    admin = await admin_token(runtime, gql, "viewer")

    # when the admin reads that customer's consents for the application
    found = assert_no_errors(await gql(ADMIN_CONSENTS, {"id": me, "app": application_id}, token=admin))

    # then they see the customer's answer
    assert found["customer"]["consents"] == {"__typename": "Consents",
                                             "items": [{"key": "terms", "granted": True, "version": 1}]}


async def test_privacy_switched_off_answers_feature_disabled(gql, mailbox, runtime):
    # given a customer of an application whose policy turns privacy and data off
    application_id, client_id = await new_application(runtime, account_management={"privacy_and_data": False})
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("privacyoff"), headers=headers)

    # when they read consents and history, and answer one
    consents = assert_no_errors(await gql(CONSENTS, token=token, headers=headers))["me"]["consents"]
    history = assert_no_errors(await gql(HISTORY, token=token, headers=headers))["me"]["consentHistory"]
    answered = await answer(gql, token, application_id, "terms", True, headers)

    # then each says the feature is disabled; and without a token consentSet is unauthenticated
    assert consents["__typename"] == history["__typename"] == answered["__typename"] == "FeatureDisabledError"
    assert_denied(await gql(SET, {"input": {"applicationId": application_id, "key": "terms", "granted": True}}),
                  "UNAUTHENTICATED")


async def test_consent_answers_are_limited_per_customer_and_the_refused_one_is_not_recorded(settings, clock, mailbox):
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "consent_change_attempts": 3})
    async with running_gateway(limited, clock) as (app, http):
        runtime, gql = app.state.runtime, GraphQLClient(http)
        # given a customer of an application with an optional newsletter consent
        application_id, headers = await application_with(runtime, NEWSLETTER)
        token = await active_customer(gql, mailbox, unique_email("flipper"), headers=headers)

        # when they flip it four times in a row
        answers = [(await answer(gql, token, application_id, "newsletter", i % 2 == 0, headers))["__typename"]
                   for i in range(4)]
        events = assert_no_errors(await gql(HISTORY, {"app": application_id}, token=token, headers=headers))

        # then the fourth answer is limited, and the history holds the three that were recorded
        assert answers == ["ConsentRecorded"] * 3 + ["RateLimitedError"]
        assert [e["granted"] for e in events["me"]["consentHistory"]["events"]] == [True, False, True]


async def test_an_answer_that_races_the_accounts_erasure_is_not_left_behind(gql, mailbox, runtime, monkeypatch):
    # given a customer answering a consent, whose account is disabled for its erasure just as the answer is written
    from stores import consents as consent_store
    from stores.documents import CustomerDocument

    application_id, headers = await application_with(runtime, NEWSLETTER)
    email = unique_email("racing-consent")
    token = await active_customer(gql, mailbox, email, headers=headers)
    me = assert_no_errors(await gql("query { me { id } }", token=token, headers=headers))["me"]["id"]
    real_append = consent_store.append

    async def append_while_erased(event):
        await real_append(event)
        await CustomerDocument.get_pymongo_collection().update_one(
            {"_id": me}, {"$set": {"status": "disabled"}, "$inc": {"credential_version": 1}})

    monkeypatch.setattr(consent_store, "append", append_while_erased)

    # when the answer completes
    result = await gql(SET, {"input": {"applicationId": application_id, "key": "newsletter", "granted": True}},
                       token=token, headers=headers)

    # then it is refused, and no consent event of theirs remains
    assert_denied(result, "UNAUTHENTICATED")
    assert await ConsentEventDocument.get_pymongo_collection().count_documents({"customer_id": me}) == 0
