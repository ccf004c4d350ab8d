"""Fuzzing the GraphQL endpoint with schemathesis (GraphQL mode) against a live gateway.

Schemathesis builds queries and mutations from the introspected schema, with valid and invalid
arguments, as a signed-in customer and as an owner admin. Every response must be a well-formed answer: never
a 5xx, and no top-level error other than a denial (UNAUTHENTICATED, FORBIDDEN), a connection's
BAD_USER_INPUT, or a request-level validation error (no path). An INTERNAL_SERVER_ERROR (a masked crash) is a finding.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.faults.live import create_admin, live_gateway, stop_database
from tests.flows import ADMIN_PASSWORD, ADMIN_SIGN_IN, active_customer
from tests.support import GraphQLClient, assert_no_errors, unique_email

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
SEED = os.environ.get("FUZZ_SEED", "20261123")
# Denials, and a connection's bad arguments (first, after, filters): an expected top-level refusal.
ALLOWED_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT"}
# Mutations that would end the fuzzer's own session.
EXCLUDED = r"sessionEnd|SessionEnd"


def schemathesis() -> list[str]:
    script = Path(sys.executable).with_name("schemathesis")
    return [str(script)] if script.exists() else [sys.executable, "-m", "schemathesis.cli"]


def run_schemathesis(url: str, report_dir: Path, headers: dict[str, str]) -> subprocess.CompletedProcess:
    command = [*schemathesis(), "run", f"{url}/graphql", "--max-examples", str(MAX_EXAMPLES), "--seed", SEED,
               "--checks", "not_a_server_error", "--exclude-name-regex", EXCLUDED, "--workers", "2",
               "--request-timeout", "20", "--no-color", "--report", "har", "--report-dir", str(report_dir)]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    return subprocess.run(command, cwd=report_dir, capture_output=True, text=True, timeout=150)


def findings(report_dir: Path) -> tuple[int, list[str]]:
    """(responses seen, problems): 5xx answers, non-JSON answers, and errors other than denials and validation."""
    problems, seen = [], 0
    for har in report_dir.glob("*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            seen += 1
            sent = entry["request"].get("postData", {}).get("text", "")[:300]
            status = entry["response"]["status"]
            text = entry["response"]["content"].get("text", "")
            if status >= 500:
                problems.append(f"HTTP {status} for {sent}: {text[:300]}")
                continue
            try:
                body = json.loads(text)
            except ValueError:
                problems.append(f"not JSON (HTTP {status}) for {sent}: {text[:300]}")
                continue
            for error in body.get("errors") or []:
                code = (error.get("extensions") or {}).get("code")
                if "path" in error and code not in ALLOWED_CODES:
                    problems.append(f"{code or 'uncoded'} error for {sent}: {error.get('message')}")
    return seen, problems


async def test_fuzzing_finds_no_server_errors(tmp_path, smtp, mailbox):
    # given a live gateway on its own database, a signed-in customer and a signed-in owner admin
    data_dir = tmp_path / "data"
    gateway = live_gateway(data_dir, tmp_path / "gateway.log", "gw_fuzz", smtp[0].port, rate_limit_scale=1000)
    try:
        email = await asyncio.to_thread(create_admin, gateway.env)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            customer = await active_customer(GraphQLClient(http), mailbox, unique_email("fuzz"))
            admin = assert_no_errors(await GraphQLClient(http)(ADMIN_SIGN_IN, {
                "input": {"email": email, "password": ADMIN_PASSWORD}}))["adminSessionCreate"]["token"]

        # when schemathesis fuzzes every operation, as each of them
        results = {}
        for who, token in (("customer", customer), ("admin", admin)):
            report_dir = tmp_path / who
            report_dir.mkdir()
            results[who] = await asyncio.to_thread(run_schemathesis, gateway.url, report_dir,
                                                   {"Authorization": f"Bearer {token}"})

            # then no response is a server error or an unexpected top-level error
            seen, problems = findings(report_dir)
            output = results[who].stdout[-3000:] + results[who].stderr[-2000:]
            assert seen >= 30, f"schemathesis ({who}) made only {seen} requests:\n{output}"
            assert not problems, f"{len(problems)} findings ({who}):\n" + "\n".join(problems[:20])
        assert gateway.proc.poll() is None
        assert "INTERNAL_SERVER_ERROR" not in gateway.log_text() and "unexpected error" not in gateway.log_text()
    finally:
        gateway.stop()
        stop_database(data_dir)
