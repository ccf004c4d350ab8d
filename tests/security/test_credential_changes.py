"""A credential change kills what came before it, atomically; a disabled account's sessions die at once.

Races are made deterministic by doing the competing change inside the sign-in, right after it has
verified the password (the hasher's ``verify`` is wrapped), which is the widest window a real race has.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as Argon2Hasher

from resolvers import customers as customer_use_cases
from resolvers import links
from resolvers.context import RequestMeta
from stores import customers, sessions
from stores.documents import CustomerDocument, SessionDocument
from tests.flows import ME, PASSWORD, active_customer, sign_in
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email
from tests.test_recovery import NEW_PASSWORD, RESET, reset_input, reset_token


async def customer_by_email(email: str) -> CustomerDocument:
    raw = await CustomerDocument.get_pymongo_collection().find_one({"email": email})
    return CustomerDocument.model_validate(raw)


async def session_count(customer_id: str) -> int:
    return await SessionDocument.get_pymongo_collection().count_documents({"subject_id": customer_id})


def during_next_verify(runtime, monkeypatch, change) -> None:
    """Run ``change()`` once, right after the next password verification succeeds or fails."""
    original = runtime.hasher.verify
    pending = [change]

    async def verify_then_change(*args, **kwargs):
        result = await original(*args, **kwargs)
        if pending:
            await pending.pop()()
        return result

    monkeypatch.setattr(runtime.hasher, "verify", verify_then_change)


async def test_a_sign_in_that_verified_the_old_password_keeps_no_session_after_a_reset(gql, mailbox, runtime,
                                                                                      monkeypatch):
    # given an active customer holding a reset link
    email = unique_email("race-reset")
    await active_customer(gql, mailbox, email)
    customer = await customer_by_email(email)
    link = await reset_token(gql, mailbox, email)
    assert await session_count(customer.id) == 1

    async def reset():
        done = assert_no_errors(await GraphQLClient(gql.http)(RESET, reset_input(link)))
        assert done["passwordReset"]["__typename"] == "PasswordResetDone"

    # when the password is reset while a sign-in with the old password is between its check and its session
    during_next_verify(runtime, monkeypatch, reset)
    raced = await sign_in(gql, email, PASSWORD)

    # then that sign-in fails and leaves no session behind; only the new password works
    assert raced["__typename"] == "InvalidCredentialsError"
    assert await session_count(customer.id) == 0
    monkeypatch.undo()
    assert (await sign_in(gql, email, PASSWORD))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"


async def test_a_rehash_at_sign_in_never_puts_back_a_password_changed_meanwhile(gql, mailbox, runtime, monkeypatch):
    # given a customer whose stored hash was made with weaker argon2 parameters, so the next sign-in rehashes it
    email = unique_email("race-rehash")
    await active_customer(gql, mailbox, email)
    customer = await customer_by_email(email)
    weak = Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    await CustomerDocument.get_pymongo_collection().update_one({"_id": customer.id}, {"$set": {"password_hash": weak}})
    link = await reset_token(gql, mailbox, email)

    async def reset():
        assert_no_errors(await GraphQLClient(gql.http)(RESET, reset_input(link)))

    # when the password is reset between that sign-in's check and its rehash
    during_next_verify(runtime, monkeypatch, reset)
    raced = await sign_in(gql, email, PASSWORD)
    monkeypatch.undo()

    # then the old password stays dead: the rehash did not write it back
    assert raced["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email, PASSWORD))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"
    assert (await customer_by_email(email)).credential_version == customer.credential_version + 1


async def test_of_concurrently_issued_links_of_one_purpose_exactly_one_is_valid(gql, mailbox, runtime):
    # given an active customer
    email = unique_email("race-issue")
    await active_customer(gql, mailbox, email)
    customer = await customer_by_email(email)
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())

    # when ten reset links are issued at once
    urls = await asyncio.gather(*(links.issue(ctx, "password_reset", customer.id, 60, "/reset-password",
                                              credential_version=customer.credential_version)
                                  for _ in range(10)))

    # then exactly one of them opens the reset form
    statuses = [(await gql.http.get(url.removeprefix("http://gateway.test"))).status_code for url in urls]
    assert sorted(statuses) == [200] + [400] * 9, statuses


async def test_two_concurrent_reset_requests_leave_one_working_link(gql, mailbox):
    # given an active customer
    email = unique_email("race-request")
    await active_customer(gql, mailbox, email)

    # when two reset requests arrive at once (from two clients), and both mails arrive
    await asyncio.gather(reset_token(gql, mailbox, email), reset_token(GraphQLClient(gql.http), mailbox, email))
    await mailbox.wait_for(email, "reset your", count=2)
    mails = [m for m in mailbox.to(email) if "reset your" in m.subject.lower()]
    assert len(mails) == 2

    # then exactly one of the two links resets the password
    results = [assert_no_errors(await gql(RESET, reset_input(m.token("/reset-password"))))["passwordReset"]["__typename"]
               for m in mails]
    assert sorted(results) == ["InvalidTokenError", "PasswordResetDone"], results


async def test_a_link_issued_before_a_credential_change_is_refused(gql, mailbox):
    # given an active customer holding a reset link
    email = unique_email("stale-link")
    await active_customer(gql, mailbox, email)
    customer = await customer_by_email(email)
    link = await reset_token(gql, mailbox, email)

    # when their credentials change by another way (as a password change from account settings would)
    assert await customers.set_password(customer.id, customer.password_hash, customer.credential_version, 0)

    # then the link no longer works, and the password is unchanged
    refused = assert_no_errors(await gql(RESET, reset_input(link)))["passwordReset"]
    assert refused["__typename"] == "InvalidTokenError"
    assert (await sign_in(gql, email, PASSWORD))["__typename"] == "SessionCreated"


async def test_disabling_an_account_ends_its_sessions_at_once(gql, mailbox, runtime):
    # given a customer signed in on two devices
    email = unique_email("disable")
    first = await active_customer(gql, mailbox, email)
    second = (await sign_in(gql, email))["token"]
    customer = await customer_by_email(email)
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())

    # when an admin disables the account
    await customer_use_cases.disable(ctx, customer.id)

    # then both tokens are dead on the very next request, and the password no longer signs in
    for token in (first, second):
        assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"
    assert await session_count(customer.id) == 0


async def test_a_session_whose_account_is_no_longer_active_is_refused(gql, mailbox):
    # given a signed-in customer
    email = unique_email("status-copy")
    token = await active_customer(gql, mailbox, email)
    customer = await customer_by_email(email)
    assert assert_no_errors(await gql(ME, token=token))["me"]["email"] == email

    # when the account's status changes and the sessions' profile copies say so (as every status write keeps them)
    await CustomerDocument.get_pymongo_collection().update_one({"_id": customer.id},
                                                               {"$set": {"status": "disabled"}})
    raw = await SessionDocument.get_pymongo_collection().find_one({"subject_id": customer.id})
    await sessions.refresh_profile(customer.id, {**raw["profile"], "status": "disabled"})

    # then the session check sees it: the token is refused
    assert_denied(await gql(ME, token=token), "UNAUTHENTICATED")


async def test_a_sign_in_racing_a_disable_keeps_no_session(gql, mailbox, runtime, monkeypatch):
    # given an active customer
    email = unique_email("race-disable")
    await active_customer(gql, mailbox, email)
    customer = await customer_by_email(email)
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())

    async def disable():
        await customer_use_cases.disable(ctx, customer.id)

    # when the account is disabled between a sign-in's password check and its session
    during_next_verify(runtime, monkeypatch, disable)
    raced = await sign_in(gql, email, PASSWORD)

    # then the sign-in fails and no session exists
    assert raced["__typename"] == "InvalidCredentialsError"
    assert await session_count(customer.id) == 0


async def test_sessions_before_a_reset_die_even_when_ending_them_at_once_fails(gql, mailbox, runtime, clock,
                                                                              monkeypatch):
    from pymongo.errors import AutoReconnect

    # given a signed-in customer (say an attacker's session) and a reset link for the owner
    email = unique_email("purge")
    old_token = await active_customer(gql, mailbox, email)
    link = await reset_token(gql, mailbox, email)

    # when the reset goes through but ending the sessions at once fails (the database hiccups)
    original = sessions.delete_for_subject

    async def fails(*args, **kwargs):
        raise AutoReconnect("database unavailable (test)")

    monkeypatch.setattr(sessions, "delete_for_subject", fails)
    await GraphQLClient(gql.http).post(RESET, reset_input(link))
    monkeypatch.setattr(sessions, "delete_for_subject", original)
    await runtime.drain()

    # then the new password works and the old session is dead all the same (the change's durable follow-up)
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"
    assert_denied(await gql(ME, token=old_token), "UNAUTHENTICATED")
