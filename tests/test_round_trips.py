"""Hot paths cost a fixed number of database commands: one for `me`, and no N+1 in admin listings."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from pymongo import monitoring

from stores.database import COMMAND_LISTENERS
from tests.conftest import running_gateway
from tests.flows import ME, active_customer, admin_token
from tests.support import GraphQLClient, assert_no_errors, unique_email

HANDSHAKE = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "saslStart", "saslContinue"}

LISTING = """
query List($first: Int!, $search: String) {
  customers(first: $first, search: $search) {
    ... on CustomerConnection { edges { node { id email sessions { id current } } } }
  }
}
"""


class CommandCounter(monitoring.CommandListener):
    """Every command a client sends (handshakes aside): ``names``, and ``commands`` as (name, collection)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.commands: list[tuple[str, str]] = []

    def started(self, event) -> None:
        if event.command_name not in HANDSHAKE:
            self.names.append(event.command_name)
            self.commands.append((event.command_name, str(event.command.get(event.command_name))))

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
