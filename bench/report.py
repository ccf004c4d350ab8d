"""Targets, the Markdown table, and docs/performance.md."""

from __future__ import annotations

from pathlib import Path

START = "<!-- bench:results:start (written by `python -m bench.run`; edit outside these markers) -->"
END = "<!-- bench:results:end -->"

ME_CPU_RATIO_1RT_MAX = 1.5  # gateway `me` server CPU over the one-read floor's (`/me-1rt`), same run
ME_DB_RATIO_1RT_MAX = 1.0  # database CPU per gateway `me` over the one-read floor's
LOGIN_FRACTION_MIN = 0.85
FLOOD_ME_P99_MS_MAX = 50.0
LISTING_US_PER_OBJECT_MAX = 100.0

NOISY_CORES = 0.2  # other people's processes busier than this: treat the numbers as rough


# -- profile helpers ---------------------------------------------------------------------------------
AREAS = [
    ("/strawberry/", "strawberry"), ("/graphql/", "graphql-core"), ("/pydantic_core/", "pydantic"),
    ("/pydantic/", "pydantic"), ("/beanie/", "beanie"), ("/pymongo/", "pymongo"), ("/bson/", "pymongo"),
    ("/starlette/", "starlette"), ("/uvicorn/", "uvicorn"), ("/httpx/", "httpx"), ("/asyncio/", "asyncio"),
    ("/gateway/", "gateway/"), ("/schema/", "schema/"), ("/resolvers/", "resolvers/"), ("/stores/", "stores/"),
    ("/bench/", "bench/ (harness)"), ("/json/", "json"), ("/typing.py", "typing"), ("/inspect.py", "inspect"),
]


def area(filename: str) -> str:
    if filename == "~" or filename.startswith("<"):
        return "C built-ins (str, dict, json, ssl, socket, ...)"
    for needle, name in AREAS:
        if needle in filename:
            return name
    return "other stdlib"


def short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" and "/" in tail else tail
    return filename


# -- targets ---------------------------------------------------------------------------------------
def _target(name: str, measured: str, met: bool, gap: str) -> dict:
    return {"target": name, "measured": measured, "met": met, "gap": "-" if met else gap}


def targets(r: dict) -> list[dict]:
    """The issue's targets, for the phases this run measured."""
    out = []
    me = r.get("me")
    if me:
        gw, f1 = me["gateway"], me["floor_1rt"]
        ratio = me["cpu_ratio_gateway_over_floor_1rt"]
        need = ME_CPU_RATIO_1RT_MAX * f1["server_cpu_us_per_request"]
        out.append(_target(
            f"`me` server CPU <= {ME_CPU_RATIO_1RT_MAX}x the one-read floor (`/me-1rt`)",
            f"{ratio:.2f}x ({gw['server_cpu_us_per_request']:.0f} vs {f1['server_cpu_us_per_request']:.0f} µs)",
            ratio <= ME_CPU_RATIO_1RT_MAX,
            f"needs <= {need:.0f} µs: -{gw['server_cpu_us_per_request'] - need:.0f} µs"))
        db = gw["database_cpu_us_per_request"] / f1["database_cpu_us_per_request"]
        out.append(_target(
            "database CPU per `me` <= the one-read floor's",
            f"{db:.2f}x ({gw['database_cpu_us_per_request']:.0f} vs {f1['database_cpu_us_per_request']:.0f} µs)",
            db <= ME_DB_RATIO_1RT_MAX,
            f"+{gw['database_cpu_us_per_request'] - f1['database_cpu_us_per_request']:.0f} µs"))
    trips = r.get("round_trips")
    if trips:
        hot = {k: trips[k] for k in ("me", "me_account_fields", "me_sessions") if k in trips}
        one = all(v["total"] <= 1 and v["writes"] == 0 for v in hot.values())
        out.append(_target(
            "at most one round trip and no write: `me`, `me` with account fields, `me { sessions }`",
            "; ".join(f"{k}: {v['total']} ({v['writes']} writes)" for k, v in hot.items()), one,
            "`me { sessions }` needs a second read (docs/performance.md)"))
        if "listing_10" in trips and "listing_100" in trips:
            same = trips["listing_10"]["commands"] == trips["listing_100"]["commands"]
            out.append(_target(
                "admin listing: the same round trips for 10 and 100 customers",
                f"{trips['listing_10']['total']} and {trips['listing_100']['total']}", same, "grows with the page"))
        if "sign_in" in trips:
            out.append({"target": "database commands of a successful sign-in (counted, not a bound)",
                        "measured": f"{trips['sign_in']['total']} ({trips['sign_in']['writes']} writes)",
                        "met": True, "gap": "-", "informational": True})
    logins = r.get("logins")
    if logins:
        fraction = logins["fraction_of_hash_limit"]
        out.append(_target(
            f"logins/s >= {LOGIN_FRACTION_MIN:.0%} of the pure argon2id limit",
            f"{fraction:.0%} (median of rounds {', '.join(f'{x:.0%}' for x in logins.get('fraction_by_round', []))}; "
            f"{logins['logins_per_second']:.1f} vs {r['hash_limit']['verifications_per_second']:.1f}/s overall)",
            fraction >= LOGIN_FRACTION_MIN, f"{(LOGIN_FRACTION_MIN - fraction) * 100:.0f} points short"))
    flood = r.get("flood")
    if flood:
        p99 = flood["me"]["p99_ms"]
        out.append(_target(f"`me` p99 under a login flood < {FLOOD_ME_P99_MS_MAX:.0f} ms", f"{p99:.1f} ms",
                           p99 < FLOOD_ME_P99_MS_MAX, f"+{p99 - FLOOD_ME_P99_MS_MAX:.1f} ms"))
    listing = r.get("listing")
    if listing:
        per = listing["server_cpu_us_per_object"]
        out.append(_target(f"admin listing: gateway CPU <= {LISTING_US_PER_OBJECT_MAX:.0f} µs per returned object",
                           f"{per:.1f} µs", per <= LISTING_US_PER_OBJECT_MAX,
                           f"+{per - LISTING_US_PER_OBJECT_MAX:.1f} µs"))
    return out


# -- Markdown --------------------------------------------------------------------------------------
def _f(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(r: dict, json_path: Path) -> str:
    m = r["machine"]
    me, lg, hl, fd, ls = r.get("me"), r.get("logins"), r.get("hash_limit"), r.get("flood"), r.get("listing")
    gw, fl = (me["gateway"], me["floor"]) if me else (None, None)
    loads = [x["other_load_cores"] for x in (gw, fl, lg, fd, hl, ls) if x]
    other = max(loads) if loads else 0.0
    versions = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    rev = r.get("revision", {})
    dirty = rev.get("uncommitted_changes_outside_bench") or []
    out = [
        f"### Run {r['timestamp']} ([`{json_path}`]({Path('..') / json_path}))",
        "",
        f"- Code: commit `{rev.get('commit', '?')}` ({rev.get('subject', '')})"
        + (f", with uncommitted changes in {', '.join(dirty[:6])}{' ...' if len(dirty) > 6 else ''}" if dirty else "")
        + ".",
        f"- Machine: {m['cpu_model']}, {m['cores']} cores, {m['implementation']} {m['python']}, Linux {m['kernel']}; "
        f"load average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end.",
        f"- Other processes on the machine kept up to {other:.2f} cores busy during a phase "
        f"(machine-wide busy time from /proc/stat minus the benchmark's own processes).",
        f"- Load generator: {r['driver']}. Run took {r['duration_seconds']} s"
        f"{' (--quick)' if r['config']['quick'] else ''}.",
        f"- Versions: {versions}.",
    ]
    if other > NOISY_CORES:
        out += ["", f"> **Noisy machine:** other work used up to {other:.2f} of {m['cores']} cores; "
                    "these numbers are indicative only. Final numbers need a quiet machine."]
    out += ["", "| target | measured | met? | gap |", "|---|---|---|---|"]
    for t in r["targets"]:
        verdict = "(counted)" if t.get("informational") else "**met**" if t["met"] else "**missed**"
        out.append(f"| {t['target']} | {t['measured']} | {verdict} | {t['gap']} |")
    if me:
        _me_section(out, r, me, gw, fl)
    if lg and hl:
        _login_section(out, lg, hl)
    if fd:
        _flood_section(out, fd, gw)
    if ls:
        _listing_section(out, ls)
    _round_trip_section(out, r)
    _profile_section(out, r)
    return "\n".join(out) + "\n"


def _me_section(out: list[str], r: dict, me: dict, gw: dict, fl: dict) -> None:
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"  # noqa: E731
    out += [
        "", f"**Signed-in `me { '{' } id email givenName familyName {'}'}`**, concurrency {me['concurrency']}, "
            f"{me['requests_per_round']:,} requests x {me['rounds']} interleaved rounds per server "
            "(CPU from /proc/<pid>/stat utime+stime; the database is its own process and is not in \"server CPU\"):",
        "",
        "| server | server CPU µs/request | per round | database CPU µs/request | requests/s | p50 ms | p99 ms "
        "| other load (cores) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    f1 = me.get("floor_1rt")
    rows = [("gateway (GraphQL)", gw)]
    if f1:
        rows.append(("floor, one round trip: the session's profile copy (`/me-1rt`)", f1))
    rows.append(("floor, two reads: session + customer (`/me`)", fl))
    for name, s in rows:
        rounds = " / ".join(_f(v, 0) for v in s["server_cpu_us_per_request_by_round"])
        out.append(f"| {name} | {_f(s['server_cpu_us_per_request'], 0)} | {rounds} | "
                   f"{_f(s['database_cpu_us_per_request'], 0)} | {_f(s['requests_per_second'], 0)} | "
                   f"{_f(s['p50_ms'], 2)} | {_f(s['p99_ms'], 2)} | {s['other_load_cores']:.2f} |")
    for label, floor in (("**gateway / one-round-trip floor** (the target)", f1), ("gateway / two-read floor", fl)):
        if floor:
            out.append(f"| {label} | **{ratio(gw['server_cpu_us_per_request'], floor['server_cpu_us_per_request'])}** | | "
                       f"{ratio(gw['database_cpu_us_per_request'], floor['database_cpu_us_per_request'])} | "
                       f"{ratio(gw['requests_per_second'], floor['requests_per_second'])} | "
                       f"{ratio(gw['p50_ms'], floor['p50_ms'])} | {ratio(gw['p99_ms'], floor['p99_ms'])} | |")
    mc = r.get("me_database_commands", {}).get("warm")
    if mc:
        out += ["", f"Database commands per warm `me` (in-process count): {mc['total']} "
                    f"({', '.join(f'{k}: {v}' for k, v in mc['by_command'].items())}); the floor `/me` sends 2, "
                    "`/me-1rt` sends 1."]


def _login_section(out: list[str], lg: dict, hl: dict) -> None:
    a = hl["argon2"]
    out += [
        "", f"**Login** (argon2id {a['memory_kib'] // 1024} MiB, t={a['time_cost']}, p={a['parallelism']}; "
            f"gateway hash concurrency = one per core):",
        "",
        "| measure | value |", "|---|---|",
        f"| pure-hash limit: argon2id verifications/s on {hl['threads']} threads (in the bench process, "
        "alternating with the login rounds) | "
        f"{_f(hl['verifications_per_second'])} (one verify: {_f(hl['single_verify_ms_median'], 1)} ms) |",
        f"| `sessionCreate` logins/s over HTTP at concurrency {lg['concurrency']} | "
        f"{_f(lg['logins_per_second'])} (**{lg['fraction_of_hash_limit']:.0%}** of the limit: median of the "
        f"per-round ratios {', '.join(f'{x:.0%}' for x in lg.get('fraction_by_round', []))}) |",
        "| per round: hash limit/s, logins/s (other load in cores) | " + "; ".join(
            f"{h['verifications_per_second']} ({h['other_load_cores']:.2f}), {x['logins_per_second']} "
            f"({x['other_load_cores']:.2f})" for h, x in zip(hl.get("rounds", []), lg.get("rounds", []), strict=False))
        + " |",
        f"| login latency p50 / p99 | {_f(lg['latency']['p50_ms'])} / {_f(lg['latency']['p99_ms'])} ms |",
        f"| gateway CPU per login (includes the hash) / database CPU per login | "
        f"{_f(lg['server_cpu_ms_per_login'])} / {_f(lg['database_cpu_ms_per_login'])} ms |",
        f"| CPU efficiency: argon2 CPU per verification / (gateway + database CPU per login); less sensitive to "
        f"other load, and on a quiet machine close to the logins/s ratio | {_f(hl.get('cpu_ms_per_verification'), 1)} ms"
        f" / {_f(lg['server_cpu_ms_per_login'] + lg['database_cpu_ms_per_login'], 1)} ms = "
        f"**{lg.get('cpu_efficiency', 0):.0%}** |",
    ]


def _flood_section(out: list[str], fd: dict, gw: dict | None) -> None:
    fm = fd["me"]
    base = fd.get("baseline") or gw
    created = fd["logins"].get("SessionCreated", {})
    limited = fd["logins"].get("RateLimitedError", {})
    others = {k: v["count"] for k, v in fd["logins"].items() if k not in ("SessionCreated", "RateLimitedError")}
    out += [
        "", f"**`me` during a login flood** ({fd['login_concurrency']} concurrent logins from a separate driver "
            f"process, `me` at concurrency {fd['me_concurrency']}, {fd['seconds']} s):",
        "",
        "| measure | value |", "|---|---|",
        f"| `me` p50 / p99 under the flood | {_f(fm['p50_ms'], 2)} / **{_f(fm['p99_ms'], 2)} ms** "
        f"(without the flood: {_f(base['p50_ms'], 2)} / {_f(base['p99_ms'], 2)} ms) |",
        f"| `me` requests/s under the flood | {_f(fm['per_second'], 0)} (without: {_f(base.get('requests_per_second', base.get('per_second')), 0)}) |",
        f"| logins answered `SessionCreated` | {created.get('count', 0):,} ({_f(created.get('per_second'))}/s, "
        f"p50 {_f(created.get('p50_ms'), 0)} ms) |",
        f"| logins shed with `RateLimitedError` | {limited.get('count', 0):,} ({_f(limited.get('per_second'))}/s, "
        f"p50 {_f(limited.get('p50_ms'), 1)} ms) |",
    ]
    if others:
        out.append(f"| other answers | {others} |")
    out.append(f"| cores busy: gateway / database / drivers / other processes | {fd['server_cpu_cores_busy']} / "
               f"{fd['database_cpu_cores_busy']} / {fd['drivers_cpu_cores_busy']} / {fd['other_load_cores']} |")


def _listing_section(out: list[str], ls: dict) -> None:
    warm, cold = ls["database_commands"]["warm"], ls["database_commands"]["cold"]
    out += [
        "", f"**Admin listing** `customers(first:100) {{ edges {{ node {{ id email sessions {{ id }} }} }} }}` "
            f"({ls['returned']['customers']} customers + {ls['returned']['sessions']} sessions = "
            f"{ls['returned']['objects']} objects; {ls['repetitions']} sequential queries over HTTP):",
        "",
        "| measure | value |", "|---|---|",
        f"| database round trips per query (in-process CommandListener) | **{warm['total']}** warm "
        f"({', '.join(f'{k}: {v}' for k, v in warm['by_command'].items())}); {cold['total']} with a cold "
        "application cache |",
        f"| latency p50 / max | {_f(ls['p50_ms'], 1)} / {_f(ls['max_ms'], 1)} ms |",
        f"| gateway CPU per query / database CPU per query | {_f(ls['server_cpu_ms_per_query'], 2)} / "
        f"{_f(ls['database_cpu_ms_per_query'], 2)} ms |",
        f"| µs per returned object: gateway CPU / wall | {_f(ls['server_cpu_us_per_object'])} / "
        f"{_f(ls['wall_us_per_object'])} |",
        f"| other load (cores) | {ls['other_load_cores']:.2f} |",
    ]


def _round_trip_section(out: list[str], r: dict) -> None:
    trips = r.get("round_trips")
    if not trips:
        return
    out += ["", "**Database commands per request** (in-process, pymongo CommandListener, each query asked once "
                "before it is counted):", "", "| request | commands | writes | which |", "|---|---|---|---|"]
    for name, v in trips.items():
        out.append(f"| {name.replace('_', ' ')} | {v['total']} | {v['writes']} | {', '.join(v['commands'])} |")
    graphs = r.get("flamegraphs") or {}
    if graphs and "skipped" not in graphs:
        out += ["", "Flame graphs of the gateway process (py-spy, on-CPU samples, after the measured phases): "
                + ", ".join(f"[{k}]({Path('..') / v})" for k, v in graphs.items()) + "."]


def _profile_section(out: list[str], r: dict) -> None:
    prof = r.get("me_profile")
    if prof:
        out += ["", f"**Where the CPU of one `me` goes** (cProfile, {prof['gateway']['requests']} "
                    "in-process requests through the ASGI app: no HTTP server, so uvicorn/httptools are not in it; "
                    "the shares leave out the wait for the database):", "",
                "| | CPU µs/request in-process (event-loop thread, no profiler) | self time by package (under cProfile) |",
                "|---|---|---|"]
        for name in ("gateway", "floor"):
            p = prof[name]
            areas = ", ".join(f"{k} {v}%" for k, v in list(p["by_area_percent"].items())[:8])
            out.append(f"| `me`: {name} | {_f(p['cpu_us_per_request'], 0)} | {areas} |")
        lp = r.get("login_profile")
        if lp:
            areas = ", ".join(f"{k} {v}%" for k, v in list(lp["by_area_percent"].items())[:8])
            out.append(f"| gateway `sessionCreate`, event-loop thread only (argon2 runs in other threads) | "
                       f"{_f(lp['cpu_us_per_request'], 0)} | {areas} |")
        out += ["", "(\"C built-ins\" are calls such as getattr, isinstance, hash and list.append made from the "
                    "packages above; the full listings are in the -me-profile.txt file next to the JSON.)"]
        out += ["", "Gateway functions with the most self time in `me`:", "",
                "| self µs/request | calls/request | function |", "|---|---|---|"]
        for row in prof["gateway"]["top_functions_by_self_time"][:12]:
            out.append(f"| {row['self_us_per_request']} | {row['calls_per_request']} | `{row['function']}` |")


DOC_HEAD = """# Performance

Measured by `.venv/bin/python -m bench.run` (see bench/run.py). The section between the
markers below is rewritten by each run.

"""


def write_docs(path: Path, table: str) -> None:
    block = f"{START}\n{table}{END}"
    text = path.read_text() if path.exists() else DOC_HEAD + START + "\n" + END + "\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + "\n\n" + START + "\n" + END + "\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(head + block + tail)
    tmp.replace(path)
