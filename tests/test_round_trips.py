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
