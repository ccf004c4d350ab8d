"""Fixtures: nx-27017 over the wire (or the MongoDB in GATEWAY_MONGODB_URI), a real SMTP server,
and the gateway's ASGI app with its lifespan, driven over HTTP by httpx."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.config import Settings
from gateway.embedded import EmbeddedDatabase
from tests.support import GraphQLClient, MutableClock, free_port, start_smtp

REAL_MONGODB_URI = os.environ.get("GATEWAY_MONGODB_URI")


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    """A database for the whole run: the real MongoDB if configured, else an nx-27017 child process."""
    if REAL_MONGODB_URI:
        yield REAL_MONGODB_URI
        return
    embedded = EmbeddedDatabase(tmp_path_factory.mktemp("nxdata"))
    uri = embedded.acquire()
    yield uri
    embedded.release()


@pytest.fixture(scope="session")
def database_name(database_uri):
    """A fresh database name per run; on a real MongoDB it is dropped afterwards (nx-27017 data is a temp file)."""
    name = f"gw_test_{uuid.uuid4().hex[:8]}"
    yield name
    if REAL_MONGODB_URI:
        from pymongo import MongoClient

        with MongoClient(REAL_MONGODB_URI) as client:
            client.drop_database(name)


@pytest.fixture(scope="session")
def smtp():
    controller, mailbox = start_smtp()
    yield controller, mailbox
    controller.stop()


@pytest.fixture(scope="session")
def mailbox(smtp):
    return smtp[1]


@pytest.fixture(scope="session")
def clock():
    return MutableClock()


@pytest.fixture(autouse=True)
def _reset_clock(clock):
    clock.reset()
    yield
    clock.reset()


def make_settings(database_uri: str, database_name: str, smtp_port: int, **overrides) -> Settings:
    values = dict(
        mongodb_uri=database_uri, database_name=database_name,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}?starttls=false", public_url="http://gateway.test",
        trusted_proxies="127.0.0.1", rate_limit_scale=1000, argon2_memory_kib=19 * 1024,
    )
    values.update(overrides)
    return Settings(**values)


def with_smtp_down(settings: Settings) -> tuple[Settings, int]:
    """The settings pointed at an SMTP port nobody listens on (yet), with a short timeout; and that port."""
    port = free_port()
    return settings.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}?timeout=2")}), port


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, clock=None):
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield app, http


@pytest.fixture(scope="session")
def settings(database_uri, database_name, smtp):
    return make_settings(database_uri, database_name, smtp[0].port)


@pytest.fixture(scope="session")
async def gateway(settings, clock):
    async with running_gateway(settings, clock) as (app, http):
        yield app, http


@pytest.fixture
def app(gateway):
    return gateway[0]


@pytest.fixture
def http(gateway):
    return gateway[1]


@pytest.fixture
def gql(http):
    """A GraphQL client with its own client IP, so rate limits never leak between tests."""
    return GraphQLClient(http)


@pytest.fixture
def runtime(app):
    return app.state.runtime


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
