"""The load generator: a closed-loop httpx.AsyncClient driver at a fixed concurrency.

Each of ``concurrency`` workers sends one request, waits for the answer, records the
latency and sends the next, over keep-alive HTTP/1.1 connections. Run as a module it
is the login flood (a separate process, so that its bookkeeping does not delay the
`me` driver that measures latency in the main process):

    python -m bench.load flood --url http://127.0.0.1:PORT --identifier a@b.c \
        --password ... --concurrency 100 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

DRIVER = f"httpx {httpx.__version__} AsyncClient, HTTP/1.1 keep-alive, closed loop"

SIGN_IN = """mutation SignIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { __typename ... on SessionCreated { token } ... on RateLimitedError { retryAfterSeconds } }
}"""


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    wall: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def count(self, outcome: str | None = None) -> int:
        return sum(self.outcomes.values()) if outcome is None else self.outcomes[outcome]

    def summary(self, outcome: str) -> dict:
        lat = self.latencies.get(outcome, [])
        ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
        return {"count": len(lat), "per_second": round(len(lat) / self.wall, 1) if self.wall else None,
                "p50_ms": ms(percentile(lat, 50)), "p90_ms": ms(percentile(lat, 90)),
                "p99_ms": ms(percentile(lat, 99)), "max_ms": ms(max(lat) if lat else None)}


def client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=60.0,
                             limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))


async def run_load(send: Callable[[], Awaitable[str]], concurrency: int, *, total: int | None = None,
                   duration: float | None = None) -> LoadResult:
    """``send`` returns an outcome label (e.g. "ok"); latencies are kept per label."""
    assert (total is None) != (duration is None)
    result = LoadResult()
    issued = 0
    start = time.perf_counter()
    stop_at = start + (duration or 0.0)

    async def worker() -> None:
        nonlocal issued
        while True:
            if total is not None:
                if issued >= total:
                    return
                issued += 1
            elif time.perf_counter() >= stop_at:
                return
            t0 = time.perf_counter()
            outcome = await send()
            result.latencies[outcome].append(time.perf_counter() - t0)
            result.outcomes[outcome] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall = time.perf_counter() - start
    return result


def login_sender(http: httpx.AsyncClient, path: str, identifiers: str | Sequence[str],
                 password: str) -> Callable[[], Awaitable[str]]:
    """Sign-ins as ``identifiers`` in turn (one identifier: always the same account)."""
    names = [identifiers] if isinstance(identifiers, str) else list(identifiers)
    bodies = itertools.cycle([json.dumps({"query": SIGN_IN, "variables": {"input": {
        "identifier": name, "password": password}}}) for name in names])
    headers = {"content-type": "application/json"}

    async def send() -> str:
        try:
            response = await http.post(path, content=next(bodies), headers=headers)
        except httpx.TransportError as exc:  # counted, not fatal: a dropped connection is an outcome too
            return f"transport_{type(exc).__name__}"
        if response.status_code != 200:
            return f"http_{response.status_code}"
        payload = response.json()
        if payload.get("errors"):
            return "graphql_error"
        return payload["data"]["sessionCreate"]["__typename"]

    return send


async def flood(url: str, identifier: str, password: str, concurrency: int, duration: float) -> dict:
    async with client(url, concurrency) as http:
        result = await run_load(login_sender(http, "/graphql", identifier, password), concurrency,
                                duration=duration)
    return {"wall_s": round(result.wall, 3), "concurrency": concurrency,
            "outcomes": {k: result.summary(k) for k in sorted(result.outcomes)}}


def main() -> int:
    parser = argparse.ArgumentParser(description="login flood driver")
    parser.add_argument("mode", choices=["flood"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--identifier", required=True)
    parser.add_argument("--password-stdin", action="store_true", required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    password = sys.stdin.readline().rstrip("\n")
    print(json.dumps(asyncio.run(flood(args.url, args.identifier, password, args.concurrency, args.duration))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
