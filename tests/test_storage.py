"""What the database holds: no plaintext secrets anywhere, and an audit trail without secrets."""

from __future__ import annotations

import uuid

from resolvers.identifiers import normalize_identifier
from resolvers.security import token_hash
from stores.documents import AuditEventDocument, CustomerDocument, RateCounterDocument
from tests.flows import (ACTIVATE, ADMIN_PASSWORD, ADMIN_SIGN_IN, REGISTER, SIGN_OUT, activation_token, admin_token,
                         sign_in)
from tests.support import assert_no_errors, unique_email


def unique_password() -> str:
    return f"storage passphrase {uuid.uuid4().hex}"


async def dump_database() -> str:
    """Every document of every collection of the gateway's database, as one string."""
    db = CustomerDocument.get_pymongo_collection().database
    parts = []
    for name in sorted(await db.list_collection_names()):
        async for document in db[name].find({}):
            parts.append(f"{name}: {document!r}")
    return "\n".join(parts)


async def registered_activated_signed_in(gql, mailbox, runtime, email: str, password: str) -> tuple[str, str]:
    """Returns (activation token, session token), through the public API."""
    accepted = assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": password}}))
    assert accepted["accountRegister"]["__typename"] == "AccountRegisterAccepted"
    link = await activation_token(mailbox, email)
    assert assert_no_errors(await gql(ACTIVATE, {"token": link}))["accountActivate"]["__typename"] == "AccountActivated"
    session = await sign_in(gql, email, password)
    assert session["__typename"] == "SessionCreated"
    await runtime.drain()
    return link, session["token"]


async def audit_events(subject_id: str) -> list[dict]:
    return await AuditEventDocument.get_pymongo_collection().find({"subject_id": subject_id}).sort("at", 1).to_list()


async def test_no_plaintext_password_session_token_or_link_token_is_stored(gql, mailbox, runtime):
    # given a customer who registered, activated and signed in, and a signed-in admin
    email, password = unique_email("storage"), unique_password()
    link, session = await registered_activated_signed_in(gql, mailbox, runtime, email, password)
    admin_session = await admin_token(runtime, gql)

    # when the whole database is read raw
    dump = await dump_database()

    # then it holds the account and the hashes, never the secrets themselves
    assert email in dump and token_hash(session) in dump and token_hash(link) in dump
    assert password not in dump
    assert session not in dump and session.removeprefix("gwc_") not in dump
    assert admin_session not in dump and ADMIN_PASSWORD not in dump
    assert link not in dump

    # and the password is stored as an argon2id hash
    stored = await CustomerDocument.get_pymongo_collection().find_one({"email_norm": normalize_identifier(email)})
    assert stored["password_hash"].startswith("$argon2id$")


async def test_rate_counters_hold_neither_emails_nor_addresses(gql, mailbox, runtime):
    # given failed sign-ins for an email from this client's address
    email = unique_email("counted")
    for _ in range(3):
        assert (await sign_in(gql, email, "wrong password here"))["__typename"] == "InvalidCredentialsError"

    # when the rate counters are read raw
    counters = repr(await RateCounterDocument.get_pymongo_collection().find({}).to_list())

    # then they are keyed without the raw email or IP address
    assert email not in counters and normalize_identifier(email) not in counters
    assert gql.ip not in counters


async def test_audit_trail_of_a_customer_records_each_step_without_secrets(gql, mailbox, runtime):
    # given a customer who registers, activates, fails a sign-in, signs in, signs out, and is registered again
    email, password = unique_email("audited"), unique_password()
    link, session = await registered_activated_signed_in(gql, mailbox, runtime, email, password)
    wrong = f"wrong {uuid.uuid4().hex}"
    assert (await sign_in(gql, email, wrong))["__typename"] == "InvalidCredentialsError"
    assert_no_errors(await gql(SIGN_OUT, token=session))
    assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": unique_password()}}))
    await runtime.drain()

    # when their audit events are read
    customer = await CustomerDocument.get_pymongo_collection().find_one({"email_norm": normalize_identifier(email)})
    events = await audit_events(customer["_id"])

    # then each step is there once, from this client's address
    types = sorted(e["type"] for e in events)
    assert types == sorted(["customer.registered", "customer.activated", "customer.login_succeeded",
                            "customer.login_failed", "customer.logout", "customer.register_existing"])
    assert {e["ip_address"] for e in events} == {gql.ip}
    assert {e["application_id"] for e in events} == {runtime.default_application.id}
    (login,) = [e for e in events if e["type"] == "customer.login_succeeded"]
    assert login["actor_kind"] == "customer" and login["actor_id"] == customer["_id"]
    assert login["data"]["session_id"]

    # and none of them carries a secret
    text = repr(events)
    for secret in (password, wrong, session, link, customer["password_hash"]):
        assert secret not in text


async def test_audit_trail_of_an_admin_records_creation_sign_in_failure_and_sign_out(gql, runtime):
    # given an admin who is created, fails a sign-in, signs in and signs out
    from resolvers.admins import create_admin
    from resolvers.context import RequestMeta

    email = f"audited-admin-{uuid.uuid4().hex[:10]}@example.com"
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())
    admin = await create_admin(ctx, email, ADMIN_PASSWORD, "viewer")
    failed = assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": "wrong admin pass"}}))
    assert failed["adminSessionCreate"]["__typename"] == "InvalidCredentialsError"
    signed_in = assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": ADMIN_PASSWORD}}))
    token = signed_in["adminSessionCreate"]["token"]
    assert_no_errors(await gql(SIGN_OUT, token=token))

    # when the admin's audit events are read
    events = await audit_events(admin.id)

    # then creation, failure, success and sign-out are recorded, without secrets
    assert sorted(e["type"] for e in events) == ["admin.created", "admin.login_failed", "admin.login_succeeded",
                                                 "admin.logout"]
    assert [e["data"] for e in events if e["type"] == "admin.created"] == [{"role": "viewer"}]
    text = repr(events)
    assert ADMIN_PASSWORD not in text and "wrong admin pass" not in text and token not in text
