"""Crash safety: kill -9 a live gateway (and its database) in the middle of registrations; every
registration the client saw accepted is there after a restart on the same data directory."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from tests.faults.live import live_gateway, pid_alive, stop_database, wait_until
from tests.flows import REGISTER
from tests.support import GraphQLClient, unique_email, unique_ip

pytestmark = pytest.mark.slow

WORKERS = 4
JOB_SWEEP_SECONDS = 45  # a job is swept 10 s after its request (20 s if its run was cut off), by a pass every 5 s


async def register_until_stopped(http: httpx.AsyncClient, acknowledged: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        email = unique_email("crash")
        gql = GraphQLClient(http, ip=unique_ip())
        try:
            response = await gql.post(REGISTER, {"input": {"email": email, "password": "correct horse battery staple"}})
        except httpx.HTTPError:
            return  # the gateway is gone: this registration was never acknowledged
        if response.status_code == 200 and (response.json().get("data") or {}).get(
                "accountRegister", {}).get("__typename") == "AccountRegisterAccepted":
            acknowledged.append(email)


async def test_acknowledged_registrations_survive_kill_9(tmp_path, smtp):
    # given a live gateway on its own embedded database, with clients registering concurrently
    data_dir = tmp_path / "data"
    gateway = live_gateway(data_dir, tmp_path / "gateway.log", "gw_crash", smtp[0].port, rate_limit_scale=1000)
    acknowledged: list[str] = []
    try:
        stop = asyncio.Event()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            workers = [asyncio.create_task(register_until_stopped(http, acknowledged, stop)) for _ in range(WORKERS)]
            deadline = time.monotonic() + 20
            while len(acknowledged) < 12 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

            # when the gateway, then its database server, are killed with SIGKILL mid-flight
            database = gateway.database_state()
            gateway.kill()
            os.kill(database["pid"], signal.SIGKILL)
            assert wait_until(lambda: not pid_alive(database["pid"]), 10)
            stop.set()
            await asyncio.gather(*workers)
        assert len(acknowledged) >= 12, f"only {len(acknowledged)} registrations before the deadline"
        seen = list(acknowledged)

        # and a new gateway starts on the same data directory
        gateway = live_gateway(data_dir, tmp_path / "gateway-2.log", "gw_crash", smtp[0].port, rate_limit_scale=1000)

        # then every acknowledged registration is in the database
        client, db = gateway.database()
        try:
            stored = {doc["email"] for doc in db["customers"].find({"email": {"$in": seen}}, {"email": 1})}
            missing = sorted(set(seen) - stored)
            assert not missing, f"{len(missing)} of {len(seen)} acknowledged registrations were lost: {missing[:5]}"

            # and each one's activation mail reaches the outbox: its job was written before the answer, and
            # the new instance's sweep runs the jobs the killed one left
            def mailed() -> set[str]:
                return {doc["to"] for doc in db["outbox"].find({"to": {"$in": seen}, "kind": "activation"}, {"to": 1})}

            wait_until(lambda: set(seen) <= mailed(), JOB_SWEEP_SECONDS, interval=0.5)
            unmailed = sorted(set(seen) - mailed())
        finally:
            client.close()
        assert not unmailed, f"{len(unmailed)} acknowledged registrations lost their activation mail: {unmailed[:5]}"
    finally:
        gateway.stop()
        stop_database(data_dir)
