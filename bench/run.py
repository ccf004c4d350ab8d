"""The "measured speed" benchmark: `me`, login throughput, `me` under a login flood, the admin listing.

    .venv/bin/python -m bench.run            # full run, about 2 minutes (2 cores)
    .venv/bin/python -m bench.run --quick    # smoke run, well under a minute

It starts `identity-gateway serve` (uvicorn, embedded nx-27017 in a temporary data
directory) and the floor app (bench/floor.py) as separate processes, drives them over
HTTP, and reads each process's CPU time from /proc/<pid>/stat. Results go to
bench/results/<timestamp>.json and, as a Markdown table, into docs/performance.md
(between the bench:results markers; --no-docs leaves the file alone).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import httpx

from bench import asgi, report
from bench.load import DRIVER, SIGN_IN, LoadResult, client, login_sender, percentile, run_load
from bench.procs import Child, CpuMeter, free_port

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
DATABASE = "identity_gateway"
RATE_LIMIT_SCALE = "1000000"
LOGIN_ACCOUNTS = 64  # the login phases' customers, each below the per-subject session cap (see customer())
SECRET_KEY = "bench-secret-key-" + os.urandom(16).hex()  # the gateway's, so the bench can read the outbox

ME = "query Me { me { id email givenName familyName } }"
REGISTER = """mutation Register($input: AccountRegisterInput!) {
  accountRegister(input: $input) { __typename ... on Error { code message } } }"""
ACTIVATE = """mutation Activate($token: String!) {
  accountActivate(token: $token) { __typename ... on Error { code message } } }"""
ADMIN_SIGN_IN = """mutation AdminSignIn($input: AdminSessionCreateInput!) {
  adminSessionCreate(input: $input) { __typename ... on SessionCreated { token } ... on Error { code message } } }"""
LISTING = """query Customers { customers(first: 100) { __typename
  ... on CustomerConnection { edges { node { id email sessions { id } } } } } }"""
LISTING_10 = LISTING.replace("first: 100", "first: 10")
ME_ACCOUNT_FIELDS = """query MeAccount { me { id email givenName familyName emailVerified createdAt
  profile { givenName familyName email phoneNumber birthdate locale }
  selfService { personalInformation accountSettings securitySettings privacyAndData accountDeletion dataExport } } }"""
ME_SESSIONS = "query MeSessions { me { id sessions { id createdAt lastSeenAt current } } }"
WRITES = {"insert", "update", "delete", "findAndModify"}

PACKAGES = ["strawberry-graphql", "graphql-core", "starlette", "uvicorn", "uvloop", "httptools", "pymongo", "beanie",
            "pydantic", "pydantic-core", "argon2-cffi", "argon2-cffi-bindings", "nx-27017", "httpx"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def us(seconds: float, count: int) -> float | None:
    return round(seconds / count * 1e6, 1) if count else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# -- the machine -------------------------------------------------------------------------------------
def revision() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        except OSError:
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()
             if line[3:] and not line[3:].startswith(("bench/", "docs/performance.md"))]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "subject": git("log", "-1", "--format=%s").strip(),
            "uncommitted_changes_outside_bench": dirty}


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu_model": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "kernel": platform.release(),
            "loadavg_start": os.getloadavg(), "packages": versions}


# -- helpers over HTTP -----------------------------------------------------------------------------
async def gql(http: httpx.AsyncClient, query: str, variables: dict | None = None, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    response.raise_for_status()
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def activation_token(db_uri: str, email: str, timeout: float = 20.0) -> str:
    """The token in the activation link, read from the development outbox (no SMTP URL is set); bodies
    are encrypted at rest under a key derived from the gateway's secret key (``gateway.mail.body_cipher``)."""
    from pymongo import MongoClient

    from gateway.mail import body_cipher

    cipher = body_cipher(SECRET_KEY.encode())
    with MongoClient(db_uri) as mongo:
        outbox = mongo[DATABASE]["outbox"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mail = outbox.find_one({"to": email, "kind": "activation", "body": {"$type": "string"}})
            if mail:
                text = json.loads(cipher.decrypt(mail["body"].encode()))["text"]
                found = re.search(r"/activate\?token=([A-Za-z0-9_\-]+)", text)
                if not found:
                    raise RuntimeError(f"no activation link in the outbox mail: {text[:300]!r}")
                return found.group(1)
            time.sleep(0.05)
    raise RuntimeError(f"no activation mail for {email} in the outbox after {timeout}s")


async def customer_token(base: str, db_uri: str, email: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        data = await gql(http, REGISTER, {"input": {"email": email, "password": password,
                                                    "givenName": "Bench", "familyName": "Marker"}})
        assert data["accountRegister"]["__typename"] == "AccountRegisterAccepted", data
        token = await asyncio.to_thread(activation_token, db_uri, email)
        data = await gql(http, ACTIVATE, {"token": token})
        assert data["accountActivate"]["__typename"] == "AccountActivated", data
        data = await gql(http, SIGN_IN, {"input": {"identifier": email, "password": password}})
        created = data["sessionCreate"]
        assert created["__typename"] == "SessionCreated", created
        return created["token"]


def me_sender(http: httpx.AsyncClient, path: str, token: str):
    body = json.dumps({"query": ME}).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}

    async def send() -> str:
        response = await http.post(path, content=body, headers=headers)
        content = response.content
        if response.status_code != 200 or b'"errors"' in content or b'"me":{"id"' not in content:
            return "bad"
        return "ok"

    return send


def merge(results: list[LoadResult]) -> LoadResult:
    merged = LoadResult()
    for result in results:
        merged.wall += result.wall
        merged.outcomes.update(result.outcomes)
        for outcome, values in result.latencies.items():
            merged.latencies[outcome].extend(values)
    return merged


# -- the benchmark ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
        self.data_dir = self.tmp / "data"
        self.children: list[Child] = []
        self.results: dict = {"revision": revision(), "machine": machine(), "driver": DRIVER, "config": {}}
        self.password = "bench password " + os.urandom(6).hex()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    # -- processes ---------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(GATEWAY_DATA_DIR=str(self.data_dir), GATEWAY_RATE_LIMIT_SCALE=RATE_LIMIT_SCALE,
                   GATEWAY_SECRET_KEY=SECRET_KEY,
                   GATEWAY_LOG_LEVEL="WARNING", GATEWAY_DATABASE_NAME=DATABASE,
                   GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{self.gateway_port}", PYTHONPATH=str(REPO))
        env.update(extra)
        return env

    def start(self) -> None:
        self.gateway_port, self.floor_port = free_port(), free_port()
        self.gateway = Child("gateway", [str(BIN / "identity-gateway"), "serve", "--host", "127.0.0.1",
                                         "--port", str(self.gateway_port)], self.env(), self.tmp, self.tmp)
        self.children.append(self.gateway)
        self.gateway.wait_http(f"http://127.0.0.1:{self.gateway_port}/readyz")
        state = json.loads((self.data_dir / "nx-27017.state.json").read_text())
        self.db_pid = state["pid"]
        self.db_uri = f"mongodb://127.0.0.1:{state['port']}/?directConnection=true"
        self.floor = Child("floor", [sys.executable, "-m", "bench.floor", "--port", str(self.floor_port)],
                           self.env(BENCH_MONGODB_URI=self.db_uri, BENCH_DATABASE_NAME=DATABASE), REPO, self.tmp)
        self.children.append(self.floor)
        self.floor.wait_http(f"http://127.0.0.1:{self.floor_port}/healthz")
        log(f"gateway pid {self.gateway.pid} on :{self.gateway_port}, floor pid {self.floor.pid} on "
            f":{self.floor_port}, nx-27017 pid {self.db_pid} on :{state['port']}; tmp {self.tmp}")

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        deadline = time.monotonic() + 15
        while getattr(self, "db_pid", None) and time.monotonic() < deadline:
            if not Path(f"/proc/{self.db_pid}").exists():
                break
            time.sleep(0.1)
        if self.args.keep_tmp:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def floor_url(self) -> str:
        return f"http://127.0.0.1:{self.floor_port}"

    def pids(self, server_pid: int) -> dict[str, int]:
        return {"server": server_pid, "database": self.db_pid, "driver": os.getpid()}

    # -- 1. me vs floor ----------------------------------------------------------------------------
    async def customer(self) -> None:
        """The customers (registered, activated from the outbox, signed in): the one whose `me` every phase
        reads; LOGIN_ACCOUNTS that the login phases sign in as in turn; one each for the flood and the
        in-process profile. The login phases make thousands of sessions: on one account they would pass
        GATEWAY_MAX_SESSIONS_PER_SUBJECT (50), where every sign-in also ends the least recently active
        session (a delete and an audit event more, see docs/performance.md), and would end the `me`
        probe's own session. Spread over many accounts, each stays below the cap, as customers do."""
        self.email = "bench-me@example.com"
        self.token = await customer_token(self.gateway_url, self.db_uri, self.email, self.password)
        self.login_emails = [f"bench-login-{i:02d}@example.com" for i in range(LOGIN_ACCOUNTS)]
        self.flood_email = "bench-flood@example.com"
        self.profile_email = "bench-profile@example.com"  # the in-process profile's sign-ins
        others = [*self.login_emails, self.flood_email, self.profile_email]
        for first in range(0, len(others), 8):
            batch = others[first:first + 8]
            await asyncio.gather(*(customer_token(self.gateway_url, self.db_uri, email, self.password)
                                   for email in batch))

    async def me(self) -> None:
        a = self.args
        targets = {"gateway": (self.gateway_url, "/graphql", self.gateway.pid),
                   "floor": (self.floor_url, "/me", self.floor.pid),
                   "floor_1rt": (self.floor_url, "/me-1rt", self.floor.pid)}
        answers = {}
        for name, (base, path, _) in targets.items():
            async with httpx.AsyncClient(base_url=base) as http:
                response = await http.post(path, json={"query": ME}, headers={"authorization": f"Bearer {self.token}"})
                answers[name] = response.json()
        if not answers["gateway"] == answers["floor"] == answers["floor_1rt"]:
            raise RuntimeError(f"gateway and floor disagree: {answers}")
        log(f"me answer (gateway == floor): {answers['gateway']}")

        runs: dict[str, list[LoadResult]] = defaultdict(list)
        cpu: dict[str, Counter] = defaultdict(Counter)
        round_cpu: dict[str, list[float | None]] = defaultdict(list)
        other: dict[str, list[float]] = defaultdict(list)
        clients = {name: client(base, a.concurrency) for name, (base, _, _) in targets.items()}  # one pool each
        try:
            for name, (_, path, _) in targets.items():  # warm-up: connections, caches, code paths
                await run_load(me_sender(clients[name], path, self.token), a.concurrency, total=a.warmup)
            for round_no in range(a.rounds):  # interleaved, so that drift on a shared machine hits both
                for name, (_, path, pid) in targets.items():
                    with CpuMeter(self.pids(pid)) as meter:
                        result = await run_load(me_sender(clients[name], path, self.token), a.concurrency,
                                                total=a.requests)
                    if result.count("bad"):
                        raise RuntimeError(f"{name}: {result.count('bad')} bad answers to me")
                    runs[name].append(result)
                    cpu[name].update(meter.cpu)
                    round_cpu[name].append(us(meter.cpu["server"], result.count()))
                    other[name].append(meter.other_cores)
                    log(f"me round {round_no + 1}/{a.rounds} {name}: {result.count() / result.wall:.0f} req/s, "
                        f"server CPU {us(meter.cpu['server'], result.count())} us/req, "
                        f"p99 {ms(percentile(result.latencies['ok'], 99))} ms, other load {meter.other_cores:.2f} cores")
        finally:
            for http in clients.values():
                await http.aclose()

        out = {"concurrency": a.concurrency, "requests_per_round": a.requests, "rounds": a.rounds}
        for name in targets:
            merged = merge(runs[name])
            n = merged.count()
            summary = merged.summary("ok")
            out[name] = {
                "requests": n, "requests_per_second": round(n / merged.wall, 1),
                "p50_ms": summary["p50_ms"], "p90_ms": summary["p90_ms"], "p99_ms": summary["p99_ms"],
                "server_cpu_us_per_request": us(cpu[name]["server"], n),
                "server_cpu_us_per_request_by_round": round_cpu[name],
                "database_cpu_us_per_request": us(cpu[name]["database"], n),
                "driver_cpu_us_per_request": us(cpu[name]["driver"], n),
                "other_load_cores": round(statistics.mean(other[name]), 2),
            }
        out["cpu_ratio_gateway_over_floor"] = round(
            out["gateway"]["server_cpu_us_per_request"] / out["floor"]["server_cpu_us_per_request"], 2)
        out["cpu_ratio_gateway_over_floor_1rt"] = round(
            out["gateway"]["server_cpu_us_per_request"] / out["floor_1rt"]["server_cpu_us_per_request"], 2)
        self.results["me"] = out

    # -- 3. the admin listing (before the login phases, which pile sessions on the bench customer) --
    async def listing(self) -> None:
        from pydantic import SecretStr
        from pymongo import monitoring

        from gateway.app import create_app
        from gateway.config import Settings
        from resolvers.context import RequestMeta, epoch_ms
        from resolvers.identifiers import normalize_identifier
        from resolvers.security import new_id
        from resolvers.sessions import create_session

        try:
            from resolvers.sessions import profile_of
        except ImportError:
            profile_of = None
        from stores import customers
        from stores.documents import CustomerDocument

        class Commands(monitoring.CommandListener):
            def __init__(self) -> None:
                self.active = False
                self.seen: list[tuple[str, str]] = []

            def started(self, event) -> None:
                if self.active:
                    collection = event.command.get(event.command_name)
                    self.seen.append((event.command_name, collection if isinstance(collection, str) else ""))

            def succeeded(self, event) -> None:
                pass

            def failed(self, event) -> None:
                pass

        commands = Commands()
        monitoring.register(commands)  # before the in-process client exists, so that it is monitored
        settings = Settings(mongodb_uri=SecretStr(self.db_uri), database_name=DATABASE, data_dir=self.data_dir,
                            secret_key=SecretStr(SECRET_KEY),
                            rate_limit_scale=float(RATE_LIMIT_SCALE), log_level="WARNING",
                            public_url=self.gateway_url)
        app = create_app(settings)
        runtime = app.state.runtime
        await runtime.start()
        try:
            # given: 100 active customers with one session each (created through the stores and the
            # sessions use case; one shared password hash, since hashing is not what is measured here)
            ctx = await runtime.context(client_id=None, principal=None,
                                        request=RequestMeta(ip_address="127.0.0.1", user_agent="bench"))
            password_hash = await runtime.hasher.hash(self.password)
            now = runtime.clock.now()
            for i in range(self.args.listing_customers):
                email = f"listed-{i:03d}@example.com"
                doc = CustomerDocument(
                    id=new_id(), store_id=runtime.default_application.identity_store_id, email=email,
                    email_norm=normalize_identifier(email), username=email, username_norm=normalize_identifier(email),
                    given_name="Listed", family_name=f"{i:03d}", password_hash=password_hash, status="active",
                    email_verified=True, created_at=now, activated_at_ms=epoch_ms(now), updated_at_ms=epoch_ms(now))
                await customers.insert(doc)
                if profile_of is not None:  # sessions carry a profile copy since the one-round-trip change
                    await create_session(ctx, "customer", doc.id, profile_of(doc))
                else:
                    await create_session(ctx, "customer", doc.id)
            # and an admin, created by the CLI against the same data directory
            admin_email, admin_password = "bench-admin@example.com", "bench admin passphrase " + os.urandom(6).hex()
            created = subprocess.run([str(BIN / "identity-gateway"), "create-admin", "--email", admin_email,
                                      "--password-stdin"], input=admin_password + "\n", env=self.env(), cwd=self.tmp,
                                     capture_output=True, text=True, timeout=120)
            if created.returncode != 0:
                raise RuntimeError(f"create-admin failed: {created.stdout}{created.stderr}")
            async with httpx.AsyncClient(base_url=self.gateway_url, timeout=60) as http:
                data = await gql(http, ADMIN_SIGN_IN, {"input": {"email": admin_email, "password": admin_password}})
                admin_token = data["adminSessionCreate"]["token"]

                # when: the listing, over HTTP against the gateway process, one at a time
                body = {"query": LISTING}
                headers = {"authorization": f"Bearer {admin_token}"}
                for _ in range(3):
                    (await http.post("/graphql", json=body, headers=headers)).raise_for_status()
                latencies, sizes = [], []
                with CpuMeter(self.pids(self.gateway.pid)) as meter:
                    for _ in range(self.args.listing_reps):
                        t0 = time.perf_counter()
                        response = await http.post("/graphql", json=body, headers=headers)
                        latencies.append(time.perf_counter() - t0)
                        payload = response.json()
                        if payload.get("errors"):
                            raise RuntimeError(f"listing errors: {payload['errors']}")
                        edges = payload["data"]["customers"]["edges"]
                        sizes.append((len(edges), sum(len(e["node"]["sessions"]) for e in edges)))

            # and in-process, with a CommandListener, to count round trips to the database
            counts = {}
            for label in ("cold", "warm"):
                if label == "cold":
                    runtime.forget_applications()
                commands.seen.clear()
                commands.active = True
                payload = await asgi.graphql(app, LISTING, admin_token)
                commands.active = False
                assert not payload.get("errors"), payload
                counts[label] = list(commands.seen)
            me_counts = {}
            for label in ("cold", "warm"):
                if label == "cold":
                    runtime.forget_applications()
                commands.seen.clear()
                commands.active = True
                payload = await asgi.graphql(app, ME, self.token)
                commands.active = False
                assert payload["data"]["me"]["email"] == self.email, payload
                me_counts[label] = list(commands.seen)

            # the hot queries (warm: each asked once before it is counted), the listing at two page sizes,
            # and a successful sign-in (the bench customer's)
            round_trips = {}
            sign_in = {"input": {"identifier": self.email, "password": self.password}}
            for name, query, token, variables in (
                    ("me", ME, self.token, None), ("me_account_fields", ME_ACCOUNT_FIELDS, self.token, None),
                    ("me_sessions", ME_SESSIONS, self.token, None), ("listing_10", LISTING_10, admin_token, None),
                    ("listing_100", LISTING, admin_token, None), ("sign_in", SIGN_IN, None, sign_in)):
                await asgi.graphql(app, query, token, variables)
                commands.seen.clear()
                commands.active = True
                payload = await asgi.graphql(app, query, token, variables)
                commands.active = False
                assert not payload.get("errors"), payload
                if name == "sign_in":
                    assert payload["data"]["sessionCreate"]["__typename"] == "SessionCreated", payload
                round_trips[name] = {"total": len(commands.seen),
                                     "writes": sum(1 for c, _ in commands.seen if c in WRITES),
                                     "commands": [f"{c} {col}".strip() for c, col in commands.seen]}
            self.results["round_trips"] = round_trips

            if self.args.profile:
                await self.profiles(app)
        finally:
            await runtime.stop()

        nodes, session_objects = sizes[-1]
        objects = nodes + session_objects
        n = len(latencies)
        server_cpu = meter.cpu["server"] / n
        self.results["listing"] = {
            "customers_seeded": self.args.listing_customers, "repetitions": n,
            "returned": {"customers": nodes, "sessions": session_objects, "objects": objects},
            "p50_ms": ms(statistics.median(latencies)), "max_ms": ms(max(latencies)),
            "server_cpu_ms_per_query": round(server_cpu * 1000, 2),
            "database_cpu_ms_per_query": round(meter.cpu["database"] / n * 1000, 2),
            "server_cpu_us_per_object": round(server_cpu * 1e6 / objects, 1),
            "wall_us_per_object": round(statistics.median(latencies) * 1e6 / objects, 1),
            "other_load_cores": round(meter.other_cores, 2),
            "database_commands": {label: {"total": len(seen), "by_command": dict(Counter(f"{c} {col}".strip()
                                                                                     for c, col in seen))}
                                  for label, seen in counts.items()},
        }
        self.results["me_database_commands"] = {
            label: {"total": len(seen), "by_command": dict(Counter(f"{c} {col}".strip() for c, col in seen))}
            for label, seen in me_counts.items()}
        log(f"listing: {nodes} customers + {session_objects} sessions, p50 {self.results['listing']['p50_ms']} ms, "
            f"server CPU {self.results['listing']['server_cpu_ms_per_query']} ms/query, "
            f"{len(counts['warm'])} database commands (warm)")

    async def profile(self, app, path: str, body: bytes | None = None, headers: dict | None = None,
                      expect: bytes = b'"me":{"id"', n: int | None = None, warmup: int = 50) -> tuple[dict, str]:
        """cProfile of requests (by default a signed-in `me`) through an ASGI app in this process.

        Only this thread is profiled: for logins, the argon2 work in the hasher's threads is not in it.
        """
        body = body or json.dumps({"query": ME}).encode()
        headers = headers or {"content-type": "application/json", "authorization": f"Bearer {self.token}"}
        for _ in range(warmup):
            status, answer = await asgi.call(app, "POST", path, headers=headers, body=body)
            assert status == 200 and expect in answer, answer
        n = n or self.args.profile_requests
        t0 = time.thread_time()  # first without the profiler: this thread's CPU per request
        for _ in range(n):
            await asgi.call(app, "POST", path, headers=headers, body=body)
        plain_cpu = time.thread_time() - t0
        # The default (wall) clock is cheap, so cProfile distorts less; the one entry that is not CPU,
        # the event loop blocking in epoll while the database answers, is left out of the shares.
        profiler = cProfile.Profile()
        t0 = time.thread_time()
        profiler.enable()
        for _ in range(n):
            await asgi.call(app, "POST", path, headers=headers, body=body)
        profiler.disable()
        cpu = time.thread_time() - t0
        stats = pstats.Stats(profiler)
        by_area: Counter = Counter()
        rows = []
        waiting = 0.0
        for (filename, line, func), (_, ncalls, tottime, _, _) in stats.stats.items():
            if "select.epoll" in func or "select.select" in func:
                waiting += tottime
                continue
            by_area[report.area(filename)] += tottime
            rows.append((tottime, ncalls, f"{report.short(filename)}:{line}({func})"))
        rows.sort(reverse=True)
        total = sum(by_area.values())
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
        return {
            "requests": n, "cpu_us_per_request": us(plain_cpu, n), "cpu_us_per_request_under_cprofile": us(cpu, n),
            "waiting_for_database_us_per_request": us(waiting, n),
            "by_area_percent": {k: round(v / total * 100, 1) for k, v in by_area.most_common()},
            "top_functions_by_self_time": [
                {"self_us_per_request": round(t / n * 1e6, 1), "calls_per_request": round(c / n, 1),
                 "function": name} for t, c, name in rows[:25]],
        }, text.getvalue()

    async def profiles(self, gateway_app) -> None:
        from bench import floor

        gateway_profile, gateway_text = await self.profile(gateway_app, "/graphql")
        floor_app = floor.create_app(self.db_uri, DATABASE)
        async with floor_app.router.lifespan_context(floor_app):
            floor_profile, floor_text = await self.profile(floor_app, "/me")
        login = json.dumps({"query": SIGN_IN, "variables": {"input": {"identifier": self.profile_email,
                                                                      "password": self.password}}}).encode()
        login_profile, login_text = await self.profile(
            gateway_app, "/graphql", body=login, headers={"content-type": "application/json"},
            expect=b'"SessionCreated"', n=self.args.profile_logins, warmup=3)
        self.results["me_profile"] = {
            "note": "in-process through the ASGI app (no HTTP server, asyncio loop rather than uvloop); "
                    "shares of cProfile self time excluding the epoll wait; cProfile inflates absolute numbers",
            "gateway": gateway_profile, "floor": floor_profile}
        self.results["login_profile"] = {
            "note": "event-loop thread only: everything a login costs except the argon2 hash itself",
            **login_profile}
        self.profile_text = (f"=== gateway /graphql me ===\n{gateway_text}\n=== floor /me ===\n{floor_text}\n"
                             f"=== gateway sessionCreate (event-loop thread only, no argon2) ===\n{login_text}")

    # -- 2. logins ---------------------------------------------------------------------------------
    def hash_limit(self, duration: float) -> dict:
        """argon2id verifications/s on os.cpu_count() threads, production parameters, servers idle."""
        from argon2 import PasswordHasher, Type

        from gateway.config import Settings

        fields = Settings.model_fields
        params = {"time_cost": fields["argon2_time_cost"].default, "memory_kib": fields["argon2_memory_kib"].default,
                  "parallelism": fields["argon2_parallelism"].default}
        # The production parameters, exactly as resolvers.passwords.PasswordHasher builds them.
        hasher = PasswordHasher(time_cost=params["time_cost"], memory_cost=params["memory_kib"],
                                parallelism=params["parallelism"], hash_len=32, salt_len=16, type=Type.ID)
        encoded = hasher.hash(self.password)
        single = []
        for _ in range(3):
            t0 = time.perf_counter()
            hasher.verify(encoded, self.password)
            single.append(time.perf_counter() - t0)
        threads = os.cpu_count() or 1

        def worker(deadline: float) -> int:
            done = 0
            while time.perf_counter() < deadline:
                hasher.verify(encoded, self.password)
                done += 1
            return done

        with CpuMeter({"bench": os.getpid()}) as meter:
            deadline = time.perf_counter() + duration
            with ThreadPoolExecutor(threads) as pool:
                total = sum(pool.map(worker, [deadline] * threads))
        return {"argon2": {**params, "variant": "argon2id", "argon2_cffi": metadata.version("argon2-cffi")},
                "threads": threads, "verifications": total, "seconds": round(meter.wall, 2),
                "verifications_per_second": round(total / meter.wall, 1),
                "cpu_ms_per_verification": round(meter.cpu["bench"] / max(total, 1) * 1000, 2),
                "single_verify_ms_median": ms(statistics.median(single)),
                "other_load_cores": round(meter.other_cores, 2)}

    async def login_round(self, duration: float) -> dict:
        a = self.args
        async with client(self.gateway_url, a.login_concurrency) as http:
            send = login_sender(http, "/graphql", self.login_emails, self.password)
            await run_load(send, a.login_concurrency, total=a.login_concurrency)  # warm-up
            with CpuMeter(self.pids(self.gateway.pid)) as meter:
                result = await run_load(send, a.login_concurrency, duration=duration)
        ok = result.count("SessionCreated")
        return {"seconds": round(result.wall, 2), "outcomes": dict(result.outcomes),
                "logins_per_second": round(ok / result.wall, 1), "latency": result.summary("SessionCreated"),
                "server_cpu_ms_per_login": round(meter.cpu["server"] / max(ok, 1) * 1000, 2),
                "database_cpu_ms_per_login": round(meter.cpu["database"] / max(ok, 1) * 1000, 2),
                "other_load_cores": round(meter.other_cores, 2), "_result": result, "_cpu": meter.cpu}

    async def logins(self) -> None:
        """Pure-hash limit and logins/s in alternating rounds, so that both see the same machine."""
        a = self.args
        hashes, logins, ratios = [], [], []
        for round_no in range(a.login_rounds):
            h = self.hash_limit(a.hash_seconds)
            lg = await self.login_round(a.login_seconds)
            hashes.append(h)
            logins.append(lg)
            ratios.append(lg["logins_per_second"] / h["verifications_per_second"])
            log(f"login round {round_no + 1}/{a.login_rounds}: hash limit {h['verifications_per_second']}/s "
                f"(other load {h['other_load_cores']:.2f} cores), logins {lg['logins_per_second']}/s "
                f"(other load {lg['other_load_cores']:.2f}), ratio {ratios[-1]:.0%}")
        merged = merge([lg.pop("_result") for lg in logins])
        cpu: Counter = Counter()
        for lg in logins:
            cpu.update(lg.pop("_cpu"))
        ok = merged.count("SessionCreated")
        total_hashes = sum(h["verifications"] for h in hashes)
        hash_rate = total_hashes / sum(h["seconds"] for h in hashes)
        self.results["hash_limit"] = {**{k: v for k, v in hashes[0].items() if k not in ("verifications", "seconds")},
                                      "verifications": total_hashes, "verifications_per_second": round(hash_rate, 1),
                                      "cpu_ms_per_verification": round(sum(
                                          h["cpu_ms_per_verification"] * h["verifications"] for h in hashes)
                                          / total_hashes, 2),
                                      "other_load_cores": max(h["other_load_cores"] for h in hashes),
                                      "rounds": hashes}
        self.results["logins"] = {
            "concurrency": a.login_concurrency, "seconds": round(merged.wall, 2), "outcomes": dict(merged.outcomes),
            "logins_per_second": round(ok / merged.wall, 1),
            # The median of the per-round ratios: each pairs a hash measurement with the logins right after it.
            "fraction_of_hash_limit": round(statistics.median(ratios), 3),
            "fraction_by_round": [round(r, 3) for r in ratios],
            "latency": merged.summary("SessionCreated"),
            "server_cpu_ms_per_login": round(cpu["server"] / max(ok, 1) * 1000, 2),
            "database_cpu_ms_per_login": round(cpu["database"] / max(ok, 1) * 1000, 2),
            # Less sensitive to other load than the throughput ratio: the share of a login's CPU that is the hash.
            "cpu_efficiency": round(
                (sum(h["cpu_ms_per_verification"] * h["verifications"] for h in hashes) / total_hashes)
                / ((cpu["server"] + cpu["database"]) / max(ok, 1) * 1000), 3),
            "other_load_cores": max(lg["other_load_cores"] for lg in logins), "rounds": logins,
        }

    async def flood(self) -> None:
        """`me` latency while logins flood the hasher. The `me` probe runs at a low concurrency of its own
        (--flood-me-concurrency), so that its p99 shows the event loop's responsiveness, not the queueing
        of a saturating closed loop; the same probe without the flood is measured first for comparison."""
        a = self.args
        ramp = 1.5
        async with client(self.gateway_url, a.flood_me_concurrency) as http:
            baseline = await run_load(me_sender(http, "/graphql", self.token), a.flood_me_concurrency,
                                      duration=min(5.0, a.flood_seconds))
        flood = subprocess.Popen(
            [sys.executable, "-m", "bench.load", "flood", "--url", self.gateway_url,
             "--identifier", self.flood_email, "--password-stdin", "--concurrency", str(a.flood_concurrency),
             "--duration", str(a.flood_seconds + 2 * ramp)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=self.env())
        try:
            flood.stdin.write(self.password + "\n")
            flood.stdin.close()
            flood.stdin = None  # so that communicate() below does not flush it again
            await asyncio.sleep(ramp)
            async with client(self.gateway_url, a.flood_me_concurrency) as http:
                with CpuMeter(self.pids(self.gateway.pid) | {"flood_driver": flood.pid}) as meter:
                    result = await run_load(me_sender(http, "/graphql", self.token), a.flood_me_concurrency,
                                            duration=a.flood_seconds)
            stdout, stderr = await asyncio.to_thread(flood.communicate, timeout=a.flood_seconds + 60)
        finally:
            if flood.poll() is None:
                flood.kill()
        if flood.returncode != 0:
            raise RuntimeError(f"flood driver failed: {stderr[-2000:]}")
        flood_result = json.loads(stdout)
        me_summary = result.summary("ok")
        answers = flood_result["outcomes"]
        self.results["flood"] = {
            "login_concurrency": a.flood_concurrency, "me_concurrency": a.flood_me_concurrency,
            "baseline": baseline.summary("ok"),
            "seconds": round(result.wall, 2),
            "me": {**me_summary, "bad": result.count("bad")},
            "logins": answers,
            "rate_limited_answers": answers.get("RateLimitedError", {}).get("count", 0),
            "sessions_created": answers.get("SessionCreated", {}).get("count", 0),
            "server_cpu_cores_busy": round(meter.cpu["server"] / meter.wall, 2),
            "database_cpu_cores_busy": round(meter.cpu["database"] / meter.wall, 2),
            "drivers_cpu_cores_busy": round((meter.cpu["driver"] + meter.cpu["flood_driver"]) / meter.wall, 2),
            "other_load_cores": round(meter.other_cores, 2),
        }
        counts = ", ".join(f"{k}: {v['count']}" for k, v in answers.items())
        log(f"flood: me p99 {me_summary['p99_ms']} ms (p50 {me_summary['p50_ms']} ms, {me_summary['per_second']} req/s); "
            f"logins {{{counts}}}")

    # -- 6. flame graphs -------------------------------------------------------------------------------
    async def flamegraphs(self) -> None:
        """py-spy flame graphs (SVG) of the gateway process under `me` load and under login load, sampled
        after the measured phases (sampling slows the process down a little, so it measures nothing else).
        Idle time is left out: the graphs show where the CPU goes."""
        a = self.args
        spy = shutil.which("py-spy") or (str(BIN / "py-spy") if (BIN / "py-spy").exists() else None)
        if spy is None:
            log("flame graphs skipped: py-spy is not installed (pip install py-spy)")
            self.results["flamegraphs"] = {"skipped": "py-spy not installed"}
            return
        RESULTS.mkdir(exist_ok=True)
        graphs = {}
        loads = {
            "me": (a.concurrency, lambda http: me_sender(http, "/graphql", self.token)),
            "login": (a.login_concurrency,
                      lambda http: login_sender(http, "/graphql", self.login_emails, self.password)),
        }
        for name, (concurrency, sender) in loads.items():
            path = RESULTS / f"{self.stamp}-{name}-flamegraph.svg"
            seconds = a.flamegraph_seconds
            recorder = subprocess.Popen(
                [spy, "record", "--pid", str(self.gateway.pid), "--rate", "250", "--format", "flamegraph",
                 "--output", str(path), "--duration", str(int(seconds)), "--nonblocking"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            async with client(self.gateway_url, concurrency) as http:
                await run_load(sender(http), concurrency, duration=seconds + 1)
            output, _ = await asyncio.to_thread(recorder.communicate, timeout=seconds + 60)
            if recorder.returncode != 0 or not path.exists():
                log(f"py-spy failed for {name}: {output[-500:]}")
                continue
            graphs[name] = str(path.relative_to(REPO))
            log(f"flame graph of the gateway under {name} load: {graphs[name]}")
        self.results["flamegraphs"] = graphs

    # -- everything --------------------------------------------------------------------------------
    async def run(self) -> None:
        a = self.args
        self.results["config"] = {
            "quick": a.quick, "me_concurrency": a.concurrency, "me_requests_per_round": a.requests,
            "me_rounds": a.rounds, "warmup": a.warmup, "login_concurrency": a.login_concurrency,
            "login_rounds": a.login_rounds, "login_seconds": a.login_seconds, "hash_seconds": a.hash_seconds,
            "flood_concurrency": a.flood_concurrency, "flood_seconds": a.flood_seconds,
            "listing_customers": a.listing_customers, "listing_reps": a.listing_reps,
            "gateway": {"command": "identity-gateway serve", "GATEWAY_LOG_LEVEL": "WARNING",
                        "GATEWAY_RATE_LIMIT_SCALE": RATE_LIMIT_SCALE, "GATEWAY_ENV": "development (default)",
                        "database": "embedded nx-27017", "hash_concurrency": "0 = one per core",
                        "hash_queue_limit": "16 (default)"},
        }
        started = time.perf_counter()
        self.start()
        await self.customer()
        phases = a.phases
        self.results["config"]["phases"] = sorted(phases)
        if "me" in phases:
            await self.me()
        if "listing" in phases:
            await self.listing()
        if "logins" in phases:
            await self.logins()
        if "flood" in phases:
            await self.flood()
        if a.flamegraphs:
            await self.flamegraphs()
        self.results["machine"]["loadavg_end"] = os.getloadavg()
        self.results["duration_seconds"] = round(time.perf_counter() - started, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (smoke test; numbers are rough)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent `me` requests (default 8)")
    parser.add_argument("--requests", type=int, help="`me` requests per round and server (default 2000, quick 400)")
    parser.add_argument("--rounds", type=int, help="interleaved gateway/floor rounds (default 2, quick 1)")
    parser.add_argument("--login-concurrency", type=int, help="concurrent logins (default 2 x cores)")
    parser.add_argument("--login-rounds", type=int, help="alternating hash-limit/login rounds (default 3, quick 1)")
    parser.add_argument("--login-seconds", type=float, help="logins per round (default 5, quick 3)")
    parser.add_argument("--hash-seconds", type=float, help="pure argon2 per round (default 4, quick 3)")
    parser.add_argument("--flood-concurrency", type=int, default=100,
                        help="concurrent logins in the flood (default 100: above cores + the queue limit of 16)")
    parser.add_argument("--flood-me-concurrency", type=int, default=2,
                        help="concurrent `me` requests probing latency during the flood (default 2)")
    parser.add_argument("--flood-seconds", type=float, help="flood phase (default 10, quick 4)")
    parser.add_argument("--listing-customers", type=int, default=100)
    parser.add_argument("--listing-reps", type=int, help="timed admin listings (default 30, quick 8)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the cProfile of `me`")
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--profile-logins", type=int, default=30)
    parser.add_argument("--phases", default="me,listing,logins,flood",
                        help="comma-separated phases to run (default: me,listing,logins,flood); a partial run "
                             "reports only its targets and never rewrites docs/performance.md")
    parser.add_argument("--no-flamegraphs", dest="flamegraphs", action="store_false",
                        help="skip the py-spy flame graphs of the gateway (skipped anyway without py-spy)")
    parser.add_argument("--flamegraph-seconds", type=float, default=8.0)
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not rewrite docs/performance.md")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary data directory and logs")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"requests": (2000, 400), "rounds": (2, 1), "login_rounds": (3, 1), "login_seconds": (5.0, 3.0),
                "hash_seconds": (4.0, 3.0),
                "flood_seconds": (10.0, 4.0), "listing_reps": (30, 8)}
    for name, (full, short) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.login_concurrency is None:
        args.login_concurrency = 2 * (os.cpu_count() or 1)
    args.warmup = 100 if quick else 300
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = args.phases - {"me", "listing", "logins", "flood"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.phases != {"me", "listing", "logins", "flood"}:
        args.docs = False
    if quick:
        args.flamegraph_seconds = min(args.flamegraph_seconds, 4.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    stamp = bench.stamp
    try:
        asyncio.run(bench.run())
    except BaseException:
        for child in bench.children:
            tail = child.log_tail()
            if tail:
                print(f"--- {child.name} log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        bench.stop()
    results = bench.results
    results["timestamp"] = stamp
    results["targets"] = report.targets(results)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)
    if getattr(bench, "profile_text", None):
        (RESULTS / f"{stamp}-me-profile.txt").write_text(bench.profile_text)
    markdown = report.markdown(results, path.relative_to(REPO))
    print("\n" + markdown)
    if args.docs:
        report.write_docs(REPO / "docs" / "performance.md", markdown)
        log("updated docs/performance.md")
    log(f"results in {path.relative_to(REPO)} ({results['duration_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
