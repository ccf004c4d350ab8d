"""Database outages: typed, quick refusals while the database is away, and recovery without a restart.

A live `identity-gateway serve` on its own embedded database; the test kills the database server
(then, later, freezes it with SIGSTOP) and starts it again on the same port and file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from gateway.embedded import _ping
from tests.faults.live import live_gateway, pid_alive, stop_database, wait_until
from tests.flows import ME, SIGN_IN, active_customer
from tests.support import GraphQLClient, unique_email

pytestmark = pytest.mark.slow

TIMEOUT_MS = 1000  # GATEWAY_MONGODB_TIMEOUT_MS for this gateway
BOUND = TIMEOUT_MS * 2 / 1000 + 1.5  # the longest an answer may take during an outage (one operation: 2x)
RECOVERY_SECONDS = 5.0


def unavailable(response: httpx.Response) -> None:
    """A typed refusal: SERVICE_UNAVAILABLE, never the masked INTERNAL_SERVER_ERROR, never a 500."""
    assert response.status_code in (200, 503), (response.status_code, response.text[:500])
    body = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
    assert codes == ["SERVICE_UNAVAILABLE"], body
    if response.status_code == 503:
        assert response.headers.get("retry-after")


async def timed(coro) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await coro
    return response, time.monotonic() - started


async def during_outage(http: httpx.AsyncClient, gql: GraphQLClient, token: str) -> None:
    # /healthz: the process is alive
    assert (await http.get("/healthz")).status_code == 200
    # /readyz: not ready, and says so quickly
    ready, took = await timed(http.get("/readyz"))
    assert ready.status_code == 503 and took < 2.0, (ready.status_code, took)
    # concurrently: the signed-in customer's `me` (twice), an anonymous sign-in and a hosted page
    sign_in = {"input": {"identifier": "someone@example.com", "password": "whatever it is"}}
    me_1, me_2, anonymous, page = await asyncio.gather(
        timed(gql.post(ME, token=token)), timed(gql.post(ME, token=token)), timed(gql.post(SIGN_IN, sign_in)),
        timed(http.get("/activate", params={"token": "x" * 32})))
    # then each gets a typed refusal within the bound
    for response, took in (me_1, me_2, anonymous):
        unavailable(response)
        assert took < BOUND, took
    assert page[0].status_code == 503 and page[1] < BOUND, (page[0].status_code, page[1])


async def recovers(http: httpx.AsyncClient, gql: GraphQLClient, token: str) -> float:
    """Seconds until `me` works again (and /readyz says ready); fails past RECOVERY_SECONDS."""
    started = time.monotonic()
    while True:
        response = await gql.post(ME, token=token)
        if response.status_code == 200 and "errors" not in response.json():
            assert response.json()["data"]["me"]["id"]
            break
        assert time.monotonic() - started < RECOVERY_SECONDS, response.text[:500]
        await asyncio.sleep(0.2)
    assert (await http.get("/readyz")).status_code == 200
    return time.monotonic() - started


async def test_database_outage_and_recovery(tmp_path, smtp, mailbox):
    # given a live gateway on its own embedded database, and a signed-in customer
    data_dir = tmp_path / "data"
    gateway = live_gateway(data_dir, tmp_path / "gateway.log", "gw_outage", smtp[0].port,
                           mongodb_timeout_ms=TIMEOUT_MS, rate_limit_scale=1000)
    restarted: subprocess.Popen | None = None
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            gql = GraphQLClient(http)
            token = await active_customer(gql, mailbox, unique_email("outage"))
            assert (await gql(ME, token=token))["data"]["me"]["id"]
            database = gateway.database_state()

            # when the database server dies
            os.kill(database["pid"], signal.SIGKILL)
            assert wait_until(lambda: not pid_alive(database["pid"]), 10)

            # then requests get SERVICE_UNAVAILABLE quickly, /readyz 503, /healthz 200
            await during_outage(http, gql, token)

            # when the database comes back on the same port and file
            restarted = subprocess.Popen(
                [sys.executable, "-m", "gateway.nxserver", "--data-dir", str(data_dir.resolve()),
                 "--port", str(database["port"])],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            assert wait_until(lambda: _ping(database["port"], timeout=0.5), 30), "nx-27017 did not restart"

            # then the gateway recovers within 5 s, without a restart, and the customer is still signed in
            await recovers(http, gql, token)

            # when the database freezes instead (SIGSTOP: connections open, nothing answers)
            os.kill(restarted.pid, signal.SIGSTOP)
            try:
                # then the same bounded, typed answers
                await during_outage(http, gql, token)
            finally:
                os.kill(restarted.pid, signal.SIGCONT)

            # and it recovers once the database thaws
            await recovers(http, gql, token)
        assert gateway.proc.poll() is None, "the gateway died during the outage"
        assert "INTERNAL_SERVER_ERROR" not in gateway.log_text()
    finally:
        gateway.stop()
        if restarted is not None:
            if restarted.poll() is None:
                restarted.terminate()
            try:
                restarted.wait(10)
            except subprocess.TimeoutExpired:
                restarted.kill()
                restarted.wait(5)
        stop_database(data_dir)
