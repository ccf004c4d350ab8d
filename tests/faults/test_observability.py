"""Health, readiness, request ids and Prometheus metrics, on the in-process gateway."""

from __future__ import annotations

import uuid
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from resolvers.context import epoch_ms
from stores import outbox
from stores.documents import OutboxDocument
from tests.conftest import running_gateway
from tests.flows import PASSWORD, REGISTER, SIGN_IN, active_customer
from tests.support import GraphQLClient, assert_no_errors, unique_email


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent) in a Prometheus text exposition."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def scrape(http) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_healthz_and_readyz(http):
    # when the probes are asked, with the database up
    health, ready = await http.get("/healthz"), await http.get("/readyz")

    # then both say ok
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


async def test_request_id_is_echoed_or_made(http):
    # when a client sends its own id, a hostile one, or none
    own = await http.get("/healthz", headers={"x-request-id": "trace-42.a:b"})
    hostile = await http.get("/healthz", headers={"x-request-id": "bad id\r\n" + "x" * 300})
    none = await http.get("/healthz")

    # then a safe id is echoed, and otherwise a fresh one is made
    assert own.headers["x-request-id"] == "trace-42.a:b"
    for response in (hostile, none):
        made = response.headers["x-request-id"]
        assert len(made) == 32 and int(made, 16) >= 0
    assert hostile.headers["x-request-id"] != none.headers["x-request-id"]


async def test_request_and_latency_metrics_by_root_field(http, gql):
    # given the counters before
    before = await scrape(http)

    # when a named query, an anonymous one and an unknown field are sent, with an operationName chosen by the client
    odd_name = "Op" + uuid.uuid4().hex
    await gql.post("query " + odd_name + " { me { id } }", headers={})
    await gql.post("{ me { id } }")
    await gql.post("{ noSuchField }")
    after = await scrape(http)

    # then counts and latencies are by root field; the client's operation name never becomes a label
    assert sample(after, "gateway_graphql_requests_total", operation="me", type="query", outcome="error") == \
        sample(before, "gateway_graphql_requests_total", operation="me", type="query", outcome="error") + 2
    assert sample(after, "gateway_graphql_request_duration_seconds_count", operation="me") == \
        sample(before, "gateway_graphql_request_duration_seconds_count", operation="me") + 2
    assert sample(after, "gateway_graphql_requests_total", operation="anonymous", type="query", outcome="error") >= 1
    assert odd_name not in after and "noSuchField" not in after


async def test_login_outcomes_are_counted(settings, clock, mailbox):
    # given a gateway with 3 sign-ins per IP, a customer who is active and one who is not
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_ip_attempts": 3})
    async with running_gateway(limited, clock) as (_, http):
        before = await scrape(http)
        active = unique_email("metrics")
        await active_customer(GraphQLClient(http), mailbox, active)
        pending = unique_email("pending")
        assert_no_errors(await GraphQLClient(http)(REGISTER, {"input": {"email": pending, "password": PASSWORD}}))

        # when one of each outcome happens
        async def sign_in(gql, identifier, password=PASSWORD):
            data = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": identifier, "password": password}}))
            return data["sessionCreate"]["__typename"]

        assert await sign_in(GraphQLClient(http), active, "wrong password here") == "InvalidCredentialsError"
        assert await sign_in(GraphQLClient(http), pending) == "AccountNotActivatedError"
        one_ip = GraphQLClient(http)
        for _ in range(3):
            await sign_in(one_ip, unique_email("nobody"))
        assert await sign_in(one_ip, unique_email("nobody")) == "RateLimitedError"
        after = await scrape(http)

    # then each outcome is counted (active_customer signed in once: one success)
    def delta(outcome: str) -> float:
        return (sample(after, "gateway_logins_total", kind="customer", outcome=outcome)
                - sample(before, "gateway_logins_total", kind="customer", outcome=outcome))

    assert delta("success") == 1
    assert delta("invalid_credentials") == 4
    assert delta("not_activated") == 1
    assert delta("rate_limited") == 1


async def test_mail_queue_depth_is_read_at_scrape_time(http, runtime):
    # given a message waiting in the outbox (not due for an hour, so no sender takes it)
    now = runtime.clock.now()
    message = OutboxDocument(id=uuid.uuid4().hex, kind="activation", to="queued@example.com", subject="s", html="h",
                             text="t", status="pending", created_at=now,
                             next_attempt_ms=epoch_ms(now + timedelta(hours=1)))
    await outbox.insert(message)
    try:
        # when Prometheus scrapes
        depth = sample(await scrape(http), "gateway_mail_queue_depth")

        # then the gauge is the outbox's current depth
        assert depth == await outbox.pending_count()
        assert depth >= 1
    finally:
        await OutboxDocument.get_pymongo_collection().delete_one({"_id": message.id})
    assert sample(await scrape(http), "gateway_mail_queue_depth") == depth - 1


async def test_metrics_token_when_configured(settings, clock):
    # given a gateway whose metrics need a bearer token
    guarded = settings.model_copy(update={"metrics_token": SecretStr("scrape-secret-123")})
    async with running_gateway(guarded, clock) as (_, http):
        # then scrapes without it, or with another, are refused, and with it they work
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": "Bearer nope"})).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": "Bearer scrape-secret-123"})).status_code == 200
