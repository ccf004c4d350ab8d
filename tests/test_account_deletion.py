"""Deleting one's account: erased now, or after a grace period with an emailed undo link; nothing of the
customer remains anywhere but one audit event that keeps only their id."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest

from resolvers import account
from resolvers.context import RequestMeta, epoch_ms
from resolvers.errors import NotFound
from stores import customers, erasure
from stores import mfa as mfa_store
from stores.documents import CustomerDocument
from tests.flows import (
    ME,
    PASSWORD,
    active_customer,
    add_totp_factor,
    admin_token,
    confirm_from_page,
    link_identity,
    new_application,
    record_consent,
    register,
    sign_in,
)
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

DELETE = """
mutation Delete($password: String) { accountDelete(input: {currentPassword: $password}) { __typename
  ... on AccountDeleted { erased eraseAt }
  ... on ReauthenticationRequiredError { maxAgeMinutes }
  ... on InvalidInputError { fields { field code } }
  ... on Error { code message field } } }
"""

REAUTHENTICATE = """
mutation Reauth($password: String!) { sessionReauthenticate(input: {password: $password}) {
  __typename ... on SessionReauthenticated { token } } }
"""

EXPORT = 'mutation { dataExport(format: JSON) { __typename ... on DataExportLink { url } } }'


def database():
    return CustomerDocument.get_pymongo_collection().database


async def rich_customer(gql: GraphQLClient, mailbox, runtime, prefix: str, headers: dict | None = None):
    """A customer who left something everywhere: names, a linked identity, an MFA factor, a consent, an
    export link, sessions, audit events, sent mail. Returns (token, id, email, given name, family name)."""
    email = unique_email(prefix)
    given, family = f"Zelda{uuid.uuid4().hex[:8]}", f"Quartz{uuid.uuid4().hex[:8]}"
    token = await active_customer(gql, mailbox, email, headers=headers, givenName=given, familyName=family)
    me = assert_no_errors(await gql("{ me { id } }", token=token, headers=headers))["me"]["id"]
    await link_identity(me, "google", email)
    await add_totp_factor(me, runtime.clock.now())
    await record_consent(me, "any-application", "newsletter", runtime.clock.now())
    await database()["mfa_challenges"].insert_one({"_id": uuid.uuid4().hex, "customer_id": me, "purpose": "SIGN_IN"})
    assert_no_errors(await gql(EXPORT, token=token, headers=headers))
    await sign_in(gql, email)  # a second session
    return token, me, email, given, family


async def traces_of(*needles: str) -> list[tuple[str, dict]]:
    """Every document, in every collection of the database, that mentions any of ``needles``."""
    found = []
    wanted = [needle.lower() for needle in needles]
    for name in await database().list_collection_names():
        async for document in database()[name].find({}):
            text = json.dumps(document, default=str, ensure_ascii=False).lower()
            if any(needle in text for needle in wanted):
                found.append((name, document))
    return found


def only_the_deletion_event(found: list[tuple[str, dict]], customer_id: str) -> None:
    assert [(name, doc["type"]) for name, doc in found] == [("audit_events", "customer.deleted")], found
    event = found[0][1]
    assert event["subject_id"] == customer_id and event["data"] == {}
    assert event.get("ip_address") is None and event.get("user_agent") is None and event.get("request_id") is None


async def after_the_follow_up(runtime, clock) -> None:
    """Let the erasure's follow-up sweep (10 s after it) come due and run; it holds the id and address until then."""
    clock.advance(seconds=11)
    await runtime.jobs.run_due()
    await runtime.drain()


async def wait_until_gone(customer_id: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await customers.get(customer_id) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"customer {customer_id} still exists")


async def test_deleting_without_grace_leaves_nothing_of_the_customer_anywhere(gql, mailbox, runtime, clock):
    # given a customer who left data in every collection
    token, me, email, given, family = await rich_customer(gql, mailbox, runtime, "erase")
    assert len(await traces_of(me, email, given, family)) > 5

    # when they delete their account with their password
    deleted = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token))["accountDelete"]

    # then it is erased now, and they are told so by mail
    assert deleted == {"__typename": "AccountDeleted", "erased": True, "eraseAt": None}
    confirmation = await mailbox.wait_for(email, "was deleted")
    assert given in confirmation.text
    await after_the_follow_up(runtime, clock)
    # and nothing of them remains anywhere (not even the record of that mail) but the deletion event
    only_the_deletion_event(await traces_of(me, email, given, family), me)
    # and their token is dead, and the email is free to register again
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert (await register(gql, email))["__typename"] == "AccountRegisterAccepted"
    assert (await customers.get_by_normalized_email("default", email.lower())) is not None


async def test_deletion_needs_a_recent_authentication_and_the_current_password(gql, mailbox, clock):
    # given a customer who signed in 11 minutes ago
    email = unique_email("reauthdel")
    token = await active_customer(gql, mailbox, email)
    clock.advance(minutes=11)

    # when they delete, re-authenticate, then delete with no password, a wrong one, and theirs
    stale = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token))["accountDelete"]
    token = assert_no_errors(await gql(REAUTHENTICATE, {"password": PASSWORD}, token=token))[
        "sessionReauthenticate"]["token"]
    missing = assert_no_errors(await gql(DELETE, {"password": None}, token=token))["accountDelete"]
    wrong = assert_no_errors(await gql(DELETE, {"password": "not my password"}, token=token))["accountDelete"]
    still_there = await customers.get_by_normalized_email("default", email.lower())
    done = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token))["accountDelete"]

    # then each refusal is typed and changes nothing; the last one erases the account
    assert (stale["__typename"], stale["maxAgeMinutes"]) == ("ReauthenticationRequiredError", 10)
    assert missing["fields"] == [{"field": "currentPassword", "code": "REQUIRED"}]
    assert (wrong["__typename"], wrong["field"]) == ("InvalidCredentialsError", "currentPassword")
    assert still_there is not None
    assert done["erased"] is True
    assert await customers.get(still_there.id) is None


async def test_account_deletion_switched_off_answers_feature_disabled(gql, mailbox, runtime):
    # given a customer of an application whose policy turns account deletion off
    _, client_id = await new_application(runtime, account_management={"account_deletion": False})
    headers = {"x-application-id": client_id}
    email = unique_email("nodelete")
    token = await active_customer(gql, mailbox, email, headers=headers)

    # when they try to delete their account
    refused = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token, headers=headers))

    # then it is refused and the account stays
    assert refused["accountDelete"]["__typename"] == "FeatureDisabledError"
    assert await customers.get_by_normalized_email("default", email.lower()) is not None


async def schedule(gql, mailbox, runtime, prefix: str, grace_days: int):
    """A customer of an application with a grace period who deleted their account."""
    _, client_id = await new_application(runtime, account_deletion={"grace_days": grace_days})
    headers = {"x-application-id": client_id}
    token, me, email, given, family = await rich_customer(gql, mailbox, runtime, prefix, headers=headers)
    deleted = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token, headers=headers))
    return headers, token, me, email, (given, family), deleted["accountDelete"]


async def test_with_a_grace_period_the_account_is_disabled_at_once_and_undo_restores_it(gql, mailbox, runtime,
                                                                                       clock, http):
    # given a customer who deleted their account under a 7-day grace period
    headers, token, me, email, _, deleted = await schedule(gql, mailbox, runtime, "grace", 7)

    # then it is not erased yet, but disabled and signed out at once
    assert deleted["__typename"] == "AccountDeleted" and deleted["erased"] is False
    assert deleted["eraseAt"][:10] == (clock.now() + timedelta(days=7)).date().isoformat()
    assert_denied(await gql(ME, token=token, headers=headers), "UNAUTHENTICATED")
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"

    # when they open the emailed undo link and confirm
    mail = await mailbox.wait_for(email, "will be deleted")
    restored = await confirm_from_page(http, account.UNDO_PATH, mail.token(account.UNDO_PATH))

    # then the account is active again and survives the end of the grace period
    assert restored.status_code == 200 and "Your account is restored" in restored.text
    assert (await sign_in(gql, email))["__typename"] == "MfaRequired"  # the password works again; its factor is next
    job_id = (await customers.get(me)).deletion_job_id
    assert job_id is None
    clock.advance(days=8)
    await runtime.jobs.run_due()
    assert (await sign_in(gql, email))["__typename"] == "MfaRequired"
    assert (await customers.get(me)).status == "active"


async def test_the_sweep_after_the_grace_period_erases_everything_once_on_two_instances(gql, mailbox, runtime,
                                                                                      clock, http):
    # given a customer who deleted their account under a 3-day grace period
    _, _, me, email, names, _ = await schedule(gql, mailbox, runtime, "sweep", 3)
    undo_token = (await mailbox.wait_for(email, "will be deleted")).token(account.UNDO_PATH)
    job_id = (await customers.get(me)).deletion_job_id

    # when the sweep runs two days later: nothing happens yet
    clock.advance(days=2)
    assert not await runtime.jobs.run(job_id)
    assert await customers.get(me) is not None

    # when it runs after the grace period, on two instances at once
    clock.advance(days=1, minutes=1)
    await asyncio.gather(runtime.jobs.run(job_id), runtime.jobs.run(job_id))
    await wait_until_gone(me)
    confirmations = await mailbox.wait_for(email, "was deleted")
    await after_the_follow_up(runtime, clock)

    # then the account is erased, once, and nothing of it remains but the deletion event
    assert "deleted" in confirmations.subject
    assert len([m for m in mailbox.to(email) if "was deleted" in m.subject]) == 1
    only_the_deletion_event(await traces_of(me, email, *names), me)
    # and the undo link is now worthless
    page = await http.get(account.UNDO_PATH, params={"token": undo_token})
    assert page.status_code == 400 and "invalid or has expired" in page.text


async def test_an_undo_that_comes_after_the_erasure_began_changes_nothing(gql, mailbox, runtime, clock):
    # given a scheduled deletion whose erasure has begun (the sweep claimed it)
    _, _, me, email, _, _ = await schedule(gql, mailbox, runtime, "late", 1)
    undo_token = (await mailbox.wait_for(email, "will be deleted")).token(account.UNDO_PATH)
    job_id = (await customers.get(me)).deletion_job_id
    clock.advance(hours=23)  # the link is still valid
    assert await erasure.begin_erasure(me, job_id, epoch_ms(clock.now()), scheduled_only=True)

    # when the customer confirms the undo link
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())
    state = await account.confirm_undo(ctx, undo_token)

    # then it is refused, and the erasure still completes
    assert state == "invalid"
    assert (await customers.get(me)).status == "disabled"
    clock.advance(hours=1, minutes=1)
    await runtime.jobs.run(job_id)
    await wait_until_gone(me)


async def test_an_erasure_cut_short_is_finished_by_the_sweep(gql, mailbox, runtime, clock, monkeypatch):
    # given a customer whose erasure fails halfway (the database goes away after the traces)
    token, me, email, given, family = await rich_customer(gql, mailbox, runtime, "crash")
    real_delete = erasure.delete_customer

    async def database_gone(customer_id):
        raise ConnectionError("database went away")

    monkeypatch.setattr(erasure, "delete_customer", database_gone)

    # when they delete their account
    failed = await gql(DELETE, {"password": PASSWORD}, token=token)

    # then the request fails, and the account is disabled and half erased
    assert failed["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    left = await customers.get(me)
    assert left is not None and left.status == "disabled"
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"

    # when the sweep runs after its grace
    monkeypatch.setattr(erasure, "delete_customer", real_delete)
    clock.advance(seconds=11)
    await runtime.jobs.run(left.deletion_job_id)
    await wait_until_gone(me)
    await after_the_follow_up(runtime, clock)

    # then it finished the erasure: nothing remains but the deletion event
    only_the_deletion_event(await traces_of(me, email, given, family), me)


async def test_an_admin_erasure_goes_through_the_same_function(gql, mailbox, runtime, clock):
    # given a customer, and an admin's context
    _, me, email, given, family = await rich_customer(gql, mailbox, runtime, "byadmin")
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta(ip_address="198.51.100.7"))

    # when the admin erases the account, and an id that does not exist
    await account.erase_account(ctx, me, actor=account.Actor("admin", "admin-1"))
    with pytest.raises(NotFound):
        await account.erase_account(ctx, uuid.uuid4().hex, actor=account.Actor("admin", "admin-1"))
    await mailbox.wait_for(email, "was deleted")
    await after_the_follow_up(runtime, clock)

    # then nothing of the customer remains but the deletion event, which names the admin
    found = await traces_of(me, email, given, family)
    only_the_deletion_event(found, me)
    assert (found[0][1]["actor_kind"], found[0][1]["actor_id"]) == ("admin", "admin-1")


async def test_an_account_an_admin_enabled_again_is_not_erased_and_can_be_deleted_again(gql, mailbox, runtime, clock):
    # given a scheduled deletion, and an admin who enables the account again during the grace period
    headers, _, me, email, _, _ = await schedule(gql, mailbox, runtime, "enabled", 3)
    first_job = (await customers.get(me)).deletion_job_id
    await CustomerDocument.get_pymongo_collection().update_one({"_id": me}, {"$set": {"status": "active"}})

    # when the first sweep comes due
    clock.advance(days=3, minutes=1)
    await runtime.jobs.run(first_job)

    # then the account stays, and its owner can sign in (without the stand-in factor, whose secret is no real
    # sealed one) and delete it again
    assert (await customers.get(me)).status == "active"
    await mfa_store.delete_for_customer(me)
    token = (await sign_in(gql, email, headers=headers))["token"]
    again = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token, headers=headers))
    assert again["accountDelete"]["__typename"] == "AccountDeleted" and again["accountDelete"]["erased"] is False
    assert (await customers.get(me)).deletion_job_id not in (None, first_job)


CUSTOMER_DISABLE = 'mutation($id: ID!) { customerDisable(id: $id) { __typename ... on Customer { status } } }'
CUSTOMER_ENABLE = 'mutation($id: ID!) { customerEnable(id: $id) { __typename ... on Customer { status } } }'


async def test_a_deletion_an_admin_cancelled_does_not_fire_when_the_account_is_disabled_again(gql, mailbox, runtime,
                                                                                             clock):
    # given a scheduled deletion that an admin cancels by enabling the account, then disables it (an
    # investigation) before the grace period ends
    headers, _, me, email, _, _ = await schedule(gql, mailbox, runtime, "cancelled", 3)
    first_job = (await customers.get(me)).deletion_job_id
    admin = await admin_token(runtime, gql)
    enabled = assert_no_errors(await gql(CUSTOMER_ENABLE, {"id": me}, token=admin))["customerEnable"]
    disabled = assert_no_errors(await gql(CUSTOMER_DISABLE, {"id": me}, token=admin))["customerDisable"]
    assert (enabled["status"], disabled["status"]) == ("ACTIVE", "DISABLED")

    # when the grace period has passed and the jobs run
    clock.advance(days=3, minutes=1)
    await runtime.jobs.run(first_job)
    await runtime.jobs.run_due()

    # then the account still exists, and once enabled its owner signs in (without the stand-in factor, whose
    # secret is no real sealed one)
    kept = await customers.get(me)
    assert kept is not None and kept.deletion_job_id is None and kept.deletion_due_at_ms is None
    admin = await admin_token(runtime, gql)  # the first one's session has ended meanwhile
    assert_no_errors(await gql(CUSTOMER_ENABLE, {"id": me}, token=admin))
    await mfa_store.delete_for_customer(me)
    assert (await sign_in(gql, email, headers=headers))["__typename"] == "SessionCreated"


async def test_mail_to_an_address_the_customer_changed_from_is_erased_too(gql, mailbox, runtime, clock):
    # given a customer who changed their email (the old address got a notice), then asked for their data
    old = unique_email("moved-from")
    token = await active_customer(gql, mailbox, old)
    me = assert_no_errors(await gql("{ me { id } }", token=token))["me"]["id"]
    new = unique_email("moved-to")
    requested = assert_no_errors(await gql(
        "mutation($e: String!) { emailChangeRequest(input: {newEmail: $e}) { __typename } }", {"e": new}, token=token))
    assert requested["emailChangeRequest"]["__typename"] == "EmailChangeRequested"
    link = (await mailbox.wait_for(new, "")).token("/email-change")
    assert_no_errors(await gql("mutation($t: String!) { emailChangeConfirm(token: $t) { __typename } }", {"t": link}))
    await mailbox.wait_for(old, "changed")
    await runtime.drain()

    # when they delete their account
    deleted = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token))["accountDelete"]
    assert deleted["__typename"] == "AccountDeleted"
    await wait_until_gone(me)
    await after_the_follow_up(runtime, clock)

    # then no mail record names either address any more, nor anything else but the deletion event
    only_the_deletion_event(await traces_of(me, old, new), me)


async def test_traces_written_after_the_erasure_swept_are_gone_after_its_follow_up(gql, mailbox, runtime, clock,
                                                                                  monkeypatch):
    # given a customer, and requests in flight that write about them just after the erasure's sweep: a failed
    # sign-in's audit event, a consent answer, a mail
    from resolvers import audit
    from stores.documents import OutboxDocument, OutboxStatus

    token, me, email, given, family = await rich_customer(gql, mailbox, runtime, "raced")
    real_sweep, raced = erasure.erase_traces, []

    async def sweep_then_a_racing_write(customer_id, *args):
        swept = await real_sweep(customer_id, *args)
        if not raced:
            raced.append(customer_id)
            ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta(ip_address="198.51.100.9"))
            await audit.record(ctx, "customer.login_failed", subject_id=me, actor_kind="public")
            await record_consent(me, "default", "newsletter", clock.now())
            await OutboxDocument.get_pymongo_collection().insert_one(OutboxDocument(
                id=uuid.uuid4().hex, kind="password_reset", to=email, subject_id=me, status=OutboxStatus.DEAD,
                created_at=clock.now()).model_dump(by_alias=True))
        return swept

    monkeypatch.setattr(erasure, "erase_traces", sweep_then_a_racing_write)

    # when they delete their account, and the erasure's follow-up comes due
    deleted = assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token))["accountDelete"]
    await mailbox.wait_for(email, "was deleted")
    await runtime.drain()
    left_by_the_race = {name for name, _ in await traces_of(me, email)}
    await after_the_follow_up(runtime, clock)

    # then the racing writes were there after the erasure, and its follow-up removed them: nothing of the
    # customer remains but the deletion event
    assert deleted["erased"] is True and raced == [me]
    assert {"audit_events", "consent_events", "outbox"} <= left_by_the_race
    only_the_deletion_event(await traces_of(me, email, given, family), me)


AUDIT_EVENTS = """
query Events($filter: AuditEventFilter) { auditEvents(first: 100, filter: $filter) {
  edges { node { action actor { kind id } target { kind id } details } } } }
"""


async def test_an_admins_events_about_an_erased_customer_stay_pseudonymised_and_the_customers_own_go(
        gql, mailbox, runtime, clock):
    from resolvers import audit

    # given a customer whom an admin disabled and enabled again, and who then signed in and deleted their account
    email = unique_email("accountable")
    await active_customer(gql, mailbox, email)
    admin = await admin_token(runtime, gql)
    me = (await customers.get_by_normalized_email("default", email.lower())).id
    assert_no_errors(await gql(CUSTOMER_DISABLE, {"id": me}, token=admin))
    assert_no_errors(await gql(CUSTOMER_ENABLE, {"id": me}, token=admin))
    admin_id = assert_no_errors(await gql("query { adminMe { id } }", token=admin))["adminMe"]["id"]
    # (and a partner's event whose details name them, as an integration might record)
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())
    key_id = uuid.uuid4().hex
    await audit.record(ctx, "customer.partner_note", subject_id=me, actor_kind="api_key", actor_id=key_id,
                       note=f"synced {email.upper()} ({me})", ids=[me])
    token = (await sign_in(gql, email))["token"]
    assert_no_errors(await gql(DELETE, {"password": PASSWORD}, token=token))
    await after_the_follow_up(runtime, clock)

    # when the admin reads the audit log: their own actions, and the events naming the customer
    async def events(**filter_):
        page = assert_no_errors(await gql(AUDIT_EVENTS, {"filter": filter_}, token=admin))["auditEvents"]
        return [edge["node"] for edge in page["edges"]]

    theirs = [event for event in await events(actorId=admin_id) + await events(actorId=key_id)
              if event["action"].startswith("customer.")]
    about_them = await events(targetId=me)

    # then the staff's actions are still there, naming the customer only by one pseudonym, details included
    assert sorted(event["action"] for event in theirs) == ["customer.disabled", "customer.enabled",
                                                           "customer.partner_note"]
    pseudonym = theirs[0]["target"]["id"]
    assert pseudonym.startswith("erased:") and {event["target"]["id"] for event in theirs} == {pseudonym}
    assert not [event for event in theirs if me in json.dumps(event) or email.lower() in json.dumps(event).lower()]
    note = next(event for event in theirs if event["action"] == "customer.partner_note")
    assert note["details"] == {"note": f"synced {pseudonym} ({pseudonym})", "ids": [pseudonym]}
    # and of the events naming the customer only the deletion remains: their sign-ins and the rest are gone
    assert [event["action"] for event in about_them] == ["customer.deleted"]
    assert [event["action"] for event in await events(actorId=me)] == ["customer.deleted"]
