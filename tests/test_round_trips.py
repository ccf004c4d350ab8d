"""Hot paths cost a fixed number of database commands: one for `me`, and no N+1 in admin listings."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from pydantic import SecretStr
from pymongo import monitoring

from stores.database import COMMAND_LISTENERS
from tests.conftest import running_gateway
from tests.flows import ME, PASSWORD, active_customer, admin_token
from tests.support import GraphQLClient, assert_denied, assert_no_errors, unique_email

HANDSHAKE = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "saslStart", "saslContinue"}

LISTING = """
query List($first: Int!, $search: String) {
  customers(first: $first, search: $search) {
    ... on CustomerConnection { edges { node { id email sessions { id current } } } }
  }
}
"""


class CommandCounter(monitoring.CommandListener):
    """Every command a client sends (handshakes aside): ``names``, ``commands`` as (name, collection), and
    ``documents``, the commands themselves."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.commands: list[tuple[str, str]] = []
        self.documents: list[dict] = []

    def clear(self) -> None:
        self.names.clear()
        self.commands.clear()
        self.documents.clear()

    def started(self, event) -> None:
        if event.command_name not in HANDSHAKE:
            self.names.append(event.command_name)
            self.commands.append((event.command_name, str(event.command.get(event.command_name))))
            self.documents.append(dict(event.command))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


@pytest.fixture
async def counted(settings, clock):
    """A gateway on its own client that reports every command it sends."""
    counter = CommandCounter()
    COMMAND_LISTENERS.append(counter)
    uri = settings.mongodb_uri.get_secret_value()
    uri += ("&" if "?" in uri else "/?") + f"appname=counted-{uuid.uuid4().hex[:8]}"
    try:
        async with running_gateway(settings.model_copy(update={"mongodb_uri": SecretStr(uri)}), clock) as (app, http):
            yield app, GraphQLClient(http), counter
    finally:
        COMMAND_LISTENERS.remove(counter)


async def test_signed_in_me_is_one_database_round_trip(counted, mailbox):
    app, gql, counter = counted
    email = unique_email("hot")
    token = await active_customer(gql, mailbox, email, givenName="Grace")
    await app.state.runtime.drain()

    counter.names.clear()
    me = assert_no_errors(await gql("query { me { id email givenName familyName } }", token=token))["me"]

    assert me["email"] == email and me["givenName"] == "Grace"
    assert counter.names == ["find"]


async def test_me_with_sessions_adds_exactly_one_query(counted, mailbox):
    app, gql, counter = counted
    token = await active_customer(gql, mailbox, unique_email("hot2"))
    await app.state.runtime.drain()

    counter.names.clear()
    me = assert_no_errors(await gql(ME, token=token))["me"]

    assert len(me["sessions"]) == 1
    assert counter.names == ["find", "find"]


async def test_admin_listing_with_sessions_has_no_n_plus_one(counted, mailbox):
    app, gql, counter = counted
    admin = await admin_token(app.state.runtime, gql)
    prefix = unique_email("nplus").split("@")[0]
    for i in range(6):
        await active_customer(gql, mailbox, f"{prefix}-{i}@example.com")
    await app.state.runtime.drain()

    costs = {}
    for first in (2, 6):
        counter.names.clear()
        listed = assert_no_errors(await gql(LISTING, {"first": first, "search": prefix}, token=admin))
        edges = listed["customers"]["edges"]
        assert len(edges) == first and all(len(e["node"]["sessions"]) == 1 for e in edges)
        costs[first] = list(counter.names)

    assert costs[2] == costs[6]
    assert costs[6].count("find") == 4  # admin's session, admin, the page, every listed customer's sessions


LISTING_WITH_STATE = """
query List($first: Int!) {
  customers(first: $first) { edges { node { id email sessionCount mfaEnabled } } }
}
"""


async def test_listing_100_customers_with_session_counts_and_mfa_state_costs_what_listing_5_does(counted):
    from datetime import timedelta

    from resolvers.security import new_id
    from stores import customers as customer_store
    from stores import sessions as session_store
    from stores.documents import FactorType, MfaFactorDocument, SessionDocument
    from tests.flows import isolated_application, stored_customer

    # given 100 customers of one identity store, each with sessions, every third with a confirmed factor
    app, gql, counter = counted
    runtime = app.state.runtime
    _, client_id, store_id = await isolated_application(runtime)
    headers = {"x-application-id": client_id}
    now = runtime.clock.now()
    customers = [stored_customer(store_id, now) for _ in range(100)]
    in_an_hour = now + timedelta(hours=1)
    for i, doc in enumerate(customers):
        await customer_store.insert(doc)
        for _ in range(1 + i % 2):
            await session_store.insert(SessionDocument(
                id=new_id(), token_hash=new_id(), kind="customer", subject_id=doc.id, created_at=now,
                expires_at=in_an_hour, idle_expires_at_ms=int(in_an_hour.timestamp() * 1000),
                last_seen_at_ms=int(now.timestamp() * 1000)))
        if i % 3 == 0:
            await MfaFactorDocument.get_pymongo_collection().insert_one(MfaFactorDocument(
                id=new_id(), customer_id=doc.id, type=FactorType.TOTP, confirmed=True, created_at=now,
            ).model_dump(by_alias=True))
    admin = await admin_token(runtime, gql)

    # when an admin lists 5 of them, then all 100, with their session counts and MFA state
    costs, pages = {}, {}
    for first in (5, 100):
        await gql(LISTING_WITH_STATE, {"first": 1}, token=admin, headers=headers)  # the application is cached
        counter.names.clear()
        listed = assert_no_errors(await gql(LISTING_WITH_STATE, {"first": first}, token=admin, headers=headers))
        costs[first], pages[first] = list(counter.names), listed["customers"]["edges"]

    # then both cost the same commands: the admin's session and role, the page, then one count of every
    # listed customer's sessions and one look at every listed customer's factors
    expected = {doc.id: (1 + i % 2, i % 3 == 0) for i, doc in enumerate(customers)}
    assert len(pages[100]) == 100
    assert all((n["node"]["sessionCount"], n["node"]["mfaEnabled"]) == expected[n["node"]["id"]] for n in pages[100])
    assert costs[5] == costs[100] == ["find", "find", "find", "aggregate", "aggregate"]


ME_WITH_ACCOUNT_FIELDS = """
query {
  me { id email givenName familyName emailVerified createdAt
       profile { givenName familyName email phoneNumber birthdate locale }
       selfService { personalInformation accountSettings securitySettings privacyAndData accountDeletion dataExport } }
}
"""


def datetimes_in(value) -> list:
    if isinstance(value, dict):
        return [d for v in value.values() for d in datetimes_in(v)]
    if isinstance(value, list):
        return [d for v in value for d in datetimes_in(v)]
    return [value] if isinstance(value, datetime) else []


async def test_signed_in_me_with_its_account_fields_is_one_indexed_read_and_no_write(counted, mailbox):
    # given a signed-in customer (last seen just now: within the touch interval)
    app, gql, counter = counted
    email = unique_email("hot3")
    token = await active_customer(gql, mailbox, email, givenName="Ada")
    await app.state.runtime.drain()

    # when they ask for themselves with the profile and self-service fields the account pages show
    counter.clear()
    me = assert_no_errors(await gql(ME_WITH_ACCOUNT_FIELDS, token=token))["me"]

    # then one read answers it, and nothing is written
    assert me["email"] == email and me["profile"]["givenName"] == "Ada" and me["selfService"]["personalInformation"]
    assert counter.commands == [("find", "sessions")]
    # and the read is one the token-hash index answers: no datetime in the filter (on nx-27017 a datetime
    # condition turns the look-up into a scan of every session); the absolute expiry is checked on the
    # document read
    lookup = counter.documents[0]["filter"]
    assert "token_hash" in lookup and datetimes_in(lookup) == [], lookup


async def test_a_session_past_its_absolute_lifetime_is_refused_even_if_used_recently(counted, mailbox, clock):
    # given a signed-in customer whose session is used every few hours (never idle for long)
    app, gql, counter = counted
    token = await active_customer(gql, mailbox, unique_email("absolute"))
    lifetime = app.state.runtime.settings.session_absolute_ttl_seconds
    idle = app.state.runtime.settings.session_idle_ttl_seconds
    step = max(60, idle // 2)
    used = 0
    while used + step < lifetime:
        clock.advance(seconds=step)
        used += step
        assert_no_errors(await gql("query { me { id } }", token=token))

    # when the absolute lifetime has passed (the idle expiry has not)
    clock.advance(seconds=lifetime - used + 1)
    result = await gql("query { me { id } }", token=token)

    # then the session no longer works
    assert_denied(result, "UNAUTHENTICATED")


async def test_me_with_sessions_reads_the_customers_sessions_through_the_subject_index(counted, mailbox):
    # given a signed-in customer
    app, gql, counter = counted
    token = await active_customer(gql, mailbox, unique_email("hot4"))
    await app.state.runtime.drain()

    # when they list their sessions
    counter.clear()
    me = assert_no_errors(await gql(ME, token=token))["me"]

    # then two reads: the session, then their sessions by an equality on the subject (nx-27017 answers an
    # equality from the index and scans for an $in), with no datetime in either filter
    assert len(me["sessions"]) == 1 and me["sessions"][0]["current"]
    assert counter.commands == [("find", "sessions"), ("find", "sessions")]
    listing = counter.documents[1]["filter"]
    assert isinstance(listing["subject_id"], str) and datetimes_in(listing) == [], listing


SIGN_IN_ONLY = """
mutation SignIn($input: SessionCreateInput!) { sessionCreate(input: $input) { __typename } }
"""


async def test_a_successful_sign_in_costs_ten_database_commands(counted, mailbox):
    # given an active customer (default policy: MFA optional, no factor enrolled)
    app, gql, counter = counted
    email = unique_email("signin-cost")
    await active_customer(gql, mailbox, email)
    await app.state.runtime.drain()

    # when they sign in
    counter.clear()
    result = assert_no_errors(await gql(SIGN_IN_ONLY, {"input": {"identifier": email, "password": PASSWORD}}))

    # then: the per-IP counter, the account (one index look-up), the two account budgets, the factors (asked
    # under every policy), the session, the subject's sessions (ids and times, for the per-subject cap), the
    # conditional confirmation, one delete clearing both budgets, the audit event (the instance's own sweeps
    # of due jobs and mail may run meanwhile: they are not the sign-in's)
    assert result["sessionCreate"]["__typename"] == "SessionCreated"
    sweeps = {"jobs", "outbox"}
    documents = [d for d, (_, collection) in zip(counter.documents, counter.commands) if collection not in sweeps]
    assert [c for c in counter.commands if c[1] not in sweeps] == [
        ("findAndModify", "rate_counters"), ("find", "customers"), ("findAndModify", "rate_counters"),
        ("findAndModify", "rate_counters"), ("find", "mfa_factors"), ("insert", "sessions"), ("find", "sessions"),
        ("update", "customers"), ("delete", "rate_counters"), ("insert", "audit_events")]
    account_lookup = documents[1]["filter"]
    assert "$or" not in account_lookup and "$and" not in account_lookup, account_lookup
    assert datetimes_in(documents[6]["filter"]) == [] and isinstance(documents[6]["filter"]["subject_id"], str)
    assert documents[8]["deletes"][0]["limit"] == 0  # both budgets at once


def test_no_schema_extension_hooks_every_field(app):
    # given the schema the gateway serves
    schema = next(route.endpoint for route in app.routes if getattr(route, "path", None) == "/graphql").schema

    # then no extension implements resolve, which would add a call to every field of every query
    assert not [factory for factory in schema.extensions if factory()._implements_resolve()]
