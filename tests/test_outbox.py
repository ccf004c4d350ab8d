"""Mail is never silently lost, never delivered after its links died, and unreadable at rest."""

from __future__ import annotations

import asyncio

import pytest

from pymongo.errors import AutoReconnect

from gateway.mail import body_cipher
from resolvers.mail_templates import RenderedMail
from stores import jobs, outbox, templates
from stores.documents import CustomerDocument, OutboxDocument
from tests.conftest import running_gateway, with_smtp_down
from tests.flows import PASSWORD, active_customer, register, sign_in
from tests.support import GraphQLClient, assert_no_errors, unique_email
from tests.test_recovery import NEW_PASSWORD, RESET, reset_input, reset_token
from tests.test_templates import start_smtp_on


def failing_once(monkeypatch, module, name: str) -> list[int]:
    """Make ``module.name`` raise AutoReconnect (a database outage) on its next call only."""
    original, calls = getattr(module, name), []

    async def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise AutoReconnect("database unavailable (test)")
        return await original(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return calls


async def run_jobs_later(runtime, clock, seconds: float = 11) -> None:
    """Let deferred work finish, then move past the jobs' retry time and run what is due, as the sweep would."""
    await runtime.drain()
    clock.advance(seconds=seconds)
    await runtime.jobs.run_due()
    await runtime.drain()


async def test_a_database_error_while_preparing_the_activation_mail_delays_it_but_never_loses_it(
        gql, mailbox, runtime, clock, monkeypatch):
    # given the template look-up fails once (the database is away for a moment)
    email = unique_email("flaky-template")
    calls = failing_once(monkeypatch, templates, "best_match")

    # when a customer registers
    assert (await register(gql, email))["__typename"] == "AccountRegisterAccepted"
    await runtime.drain()
    assert calls and not mailbox.to(email)

    # then the mail is still on its way, and arrives once the job runs again
    await run_jobs_later(runtime, clock)
    assert "/activate?token=" in (await mailbox.wait_for(email, "activate")).text


async def test_a_database_error_before_the_registration_is_recorded_fails_it_with_nothing_created(
        gql, monkeypatch):
    # given the database refuses the registration's first write
    email = unique_email("no-job")
    failing_once(monkeypatch, jobs, "insert")

    # when a customer registers
    response = await gql.post("mutation($i: AccountRegisterInput!) { accountRegister(input: $i) { __typename } }",
                              {"i": {"email": email, "password": PASSWORD}})

    # then they are told to retry, and no account exists (so registering again will work)
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert await CustomerDocument.get_pymongo_collection().count_documents({"email": email}) == 0


async def test_a_database_error_before_a_reset_changes_nothing_and_says_so(gql, mailbox, monkeypatch):
    # given a customer with a reset link, and a database that fails the reset's first write
    email = unique_email("reset-outage")
    await active_customer(gql, mailbox, email)
    link = await reset_token(gql, mailbox, email)
    failing_once(monkeypatch, jobs, "insert")

    # when they set a new password
    body = (await gql.post(RESET, reset_input(link))).json()

    # then the answer says the service is unavailable, the old password still works and the link still does
    assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert (await sign_in(gql, email, PASSWORD))["__typename"] == "SessionCreated"
    done = assert_no_errors(await gql(RESET, reset_input(link)))["passwordReset"]
    assert done["__typename"] == "PasswordResetDone"


async def test_a_failed_outbox_write_delays_the_password_changed_notice_but_never_loses_it(
        gql, mailbox, runtime, clock, monkeypatch):
    # given a customer with a reset link, and an outbox that fails its next write
    email = unique_email("notice-outage")
    await active_customer(gql, mailbox, email)
    link = await reset_token(gql, mailbox, email)
    failing_once(monkeypatch, outbox, "insert")

    # when they reset their password
    done = assert_no_errors(await gql(RESET, reset_input(link)))["passwordReset"]
    assert done["__typename"] == "PasswordResetDone"
    await runtime.drain()
    assert not [m for m in mailbox.to(email) if "was changed" in m.subject.lower()]

    # then the notice arrives once its job runs again
    await run_jobs_later(runtime, clock)
    await mailbox.wait_for(email, "was changed")


async def test_of_concurrent_resets_with_one_link_one_wins_and_one_notice_is_sent(gql, mailbox, runtime):
    # given a customer with a reset link
    email = unique_email("one-notice")
    await active_customer(gql, mailbox, email)
    link = await reset_token(gql, mailbox, email)

    # when ten browsers submit it at once
    results = await asyncio.gather(*(GraphQLClient(gql.http)(RESET, reset_input(link, f"{NEW_PASSWORD} {i}"))
                                     for i in range(10)))
    await runtime.drain()

    # then exactly one reset happened, and exactly one "password changed" mail was sent
    kinds = [assert_no_errors(r)["passwordReset"]["__typename"] for r in results]
    assert kinds.count("PasswordResetDone") == 1
    await mailbox.wait_for(email, "was changed")
    await asyncio.sleep(0.5)
    assert len([m for m in mailbox.to(email) if "was changed" in m.subject.lower()]) == 1


async def test_a_mail_whose_link_expired_before_delivery_becomes_a_dead_letter(settings, clock):
    # given an SMTP server that is down when a reset link is mailed
    down, port = with_smtp_down(settings)
    async with running_gateway(down, clock) as (app, http):
        runtime = app.state.runtime
        gql = GraphQLClient(http)
        email = unique_email("too-late")
        await register(gql, email)
        await runtime.drain()

        # when the server comes back only after the link (24 hours) has expired
        controller, box = start_smtp_on(port)
        try:
            clock.advance(hours=25)
            await runtime.mailer.retry_due()
            await asyncio.sleep(0.5)

            # then the mail is not delivered, but kept as a dead letter without its body, and counted
            assert box.to(email) == []
        finally:
            controller.stop()
        raw = await OutboxDocument.get_pymongo_collection().find_one({"to": email, "kind": "activation"})
        assert raw["status"] == "dead" and raw["dead_reason"] == "expired" and "body" not in raw
        metrics = (await http.get("/metrics")).text
        dead = [line for line in metrics.splitlines() if line.startswith("gateway_mail_dead_letters ")]
        assert dead and float(dead[0].split()[1]) >= 1


async def test_a_body_sealed_under_another_key_is_a_dead_letter_not_garbage_mail(mailbox, runtime, clock):
    # given a pending mail whose body was encrypted under another secret key
    email = unique_email("other-key")
    sealed = body_cipher(b"another secret key entirely").encrypt(b'{"subject":"s","html":"h","text":"t"}').decode()
    message = OutboxDocument(id=f"foreign-{email}", kind="activation", to=email, body=sealed,
                             created_at=clock.now(), next_attempt_ms=0)
    await outbox.insert(message)

    # when it is delivered
    delivered = await runtime.mailer.deliver(message.id)

    # then nothing is sent, and it is a dead letter
    assert delivered is False and mailbox.to(email) == []
    raw = await OutboxDocument.get_pymongo_collection().find_one({"_id": message.id})
    assert raw["status"] == "dead" and raw["dead_reason"] == "undecryptable"


async def test_bodies_are_encrypted_at_rest_and_read_back_whole(runtime):
    # given a rendered mail with a live link
    mail = RenderedMail(subject="Reset", html="<a href='https://x/?token=SECRET'>go</a>", text="https://x/?token=SECRET")

    # when it is sealed for the outbox
    sealed = runtime.mailer.seal(mail)

    # then the stored form shows nothing of it, and unseals to the same mail
    assert "SECRET" not in sealed and "Reset" not in sealed
    assert runtime.mailer.unseal(sealed) == mail


REQUESTS = {
    "password reset": ("mutation($e: String!) { passwordResetRequest(input: {email: $e}) { __typename } }",
                       "reset your", "active"),
    "activation re-send": ("mutation($e: String!) { accountActivationResend(email: $e) { __typename } }",
                           "activate", "pending"),
}


@pytest.mark.parametrize("kind", REQUESTS)
async def test_an_accepted_mail_request_survives_a_failed_outbox_write(gql, mailbox, runtime, clock, monkeypatch,
                                                                      kind):
    # given an account, and an outbox that fails its next write
    mutation, subject, state = REQUESTS[kind]
    email = unique_email("durable-request")
    if state == "active":
        await active_customer(gql, mailbox, email)
    else:
        await register(gql, email)
        await mailbox.wait_for(email, "activate")
    before = len(mailbox.to(email))
    failing_once(monkeypatch, outbox, "insert")

    # when the customer asks for the mail, and is told it is on its way
    assert "Error" not in assert_no_errors(await gql(mutation, {"e": email})).popitem()[1]["__typename"]
    await runtime.drain()

    # then the mail arrives once the request's job runs again
    await run_jobs_later(runtime, clock)
    await mailbox.wait_for(email, subject, count=before + 1 if state == "pending" else 1)


async def test_without_smtp_mail_that_must_leave_no_record_is_not_stored(settings, clock):
    # given a development gateway (no SMTP: mail stays in the outbox, its links logged)
    development = settings.model_copy(update={"smtp_url": None})
    async with running_gateway(development, clock) as (app, _):
        runtime = app.state.runtime
        erased, kept = unique_email("erased"), unique_email("kept")

        # when it "sends" the goodbye mail of an erased account, and an ordinary mail
        def view(email: str) -> dict:
            return {"customer": {"email": email, "username": None, "given_name": None, "family_name": None}}

        await runtime.mailer.send("account_deleted", erased, view(erased), runtime.default_application,
                                  erase_when_done=True)
        await runtime.mailer.send("account_deleted", kept, view(kept), runtime.default_application)

        # then only the ordinary one is in the outbox: nothing names the erased address
        stored = await OutboxDocument.get_pymongo_collection().find({"to": {"$in": [erased, kept]}}).to_list()
        assert [doc["to"] for doc in stored] == [kept]
