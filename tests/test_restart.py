"""Restarts and the embedded database process: data and sessions survive a restart, several users of one
data directory share one server, and the server goes away with its last user."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from gateway.embedded import LOCK_FILE, PID_FILE, STATE_FILE, USERS_DIR, EmbeddedDatabase, _ping
from tests.conftest import REAL_MONGODB_URI, make_settings, running_gateway
from tests.flows import ME, active_customer, sign_in
from tests.support import GraphQLClient, assert_no_errors, free_port, unique_email

REPO = Path(__file__).resolve().parent.parent


def server_processes(data_dir: Path) -> list[int]:
    """Live (non-zombie) processes whose command line names this data directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gateway.nxserver" in args and str(data_dir).encode() in args:
            found.append(int(entry.name))
    return found


def state(data_dir: Path) -> dict | None:
    path = data_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# -- restart of the whole gateway -------------------------------------------------------------------


async def test_account_and_session_survive_a_restart(tmp_path, smtp, mailbox, database_name, runtime):
    # given a gateway on a fresh embedded data directory (or on the configured MongoDB)
    if REAL_MONGODB_URI:
        settings = make_settings(REAL_MONGODB_URI, database_name, smtp[0].port)
    else:
        settings = make_settings(None, database_name, smtp[0].port, data_dir=tmp_path)
    email = unique_email("restart")
    async with running_gateway(settings) as (first_app, http):
        gql = GraphQLClient(http)
        token = await active_customer(gql, mailbox, email)
        first_server = state(tmp_path)
        await first_app.state.runtime.drain()

    # when the gateway stops (and with it the embedded server) and a new one starts on the same data
    if not REAL_MONGODB_URI:
        assert first_server is not None
        assert wait_until(lambda: not server_processes(tmp_path)), "the embedded server outlived the gateway"
        assert state(tmp_path) is None
    async with running_gateway(settings) as (second_app, http):
        gql = GraphQLClient(http)
        if not REAL_MONGODB_URI:
            assert state(tmp_path)["pid"] != first_server["pid"]

        # then the session token still works and the account can sign in again
        me = assert_no_errors(await gql(ME, token=token))["me"]
        assert me["email"] == email and me["emailVerified"] is True
        assert (await sign_in(gql, email))["__typename"] == "SessionCreated"

    # and the session gateway's database is still the one in use afterwards
    assert runtime.client is not None
    assert await runtime.client.admin.command("ping")


# -- the embedded server process --------------------------------------------------------------------


def test_two_users_of_one_data_dir_share_one_server_until_the_last_lets_go(tmp_path):
    # given two users of one data directory in this process
    first, second = EmbeddedDatabase(tmp_path), EmbeddedDatabase(tmp_path)
    try:
        # when both acquire it
        first_uri = first.acquire()
        second_uri = second.acquire()

        # then they share one server on one port
        assert first_uri == second_uri and first.port == second.port
        assert len(server_processes(tmp_path)) == 1

        # when the first lets go, the server stays up for the second
        first.release()
        assert _ping(second.port)
        assert len(server_processes(tmp_path)) == 1
    finally:
        # when the last lets go
        second.release()

    # then no server process is left, nor its state
    assert wait_until(lambda: not server_processes(tmp_path))
    assert not _ping(second.port, timeout=0.5)
    assert state(tmp_path) is None


def test_another_process_joins_the_running_server_and_leaving_does_not_stop_it(tmp_path):
    # given a server started by this process
    mine = EmbeddedDatabase(tmp_path)
    mine.acquire()
    try:
        # when another process acquires the same data directory, writes, and releases it
        script = textwrap.dedent(f"""
            from pymongo import MongoClient
            from gateway.embedded import EmbeddedDatabase
            db = EmbeddedDatabase({str(tmp_path)!r})
            uri = db.acquire()
            print(db.port, flush=True)
            MongoClient(uri)["joined"]["things"].insert_one({{"_id": "from-the-other-process"}})
            db.release()
        """)
        other = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)

        # then it used the same server, which is still up with its write
        assert other.returncode == 0, other.stderr
        assert int(other.stdout.strip()) == mine.port
        from pymongo import MongoClient

        with MongoClient(mine.uri) as client:
            assert client["joined"]["things"].find_one({"_id": "from-the-other-process"})
        assert len(server_processes(tmp_path)) == 1
    finally:
        mine.release()
    assert wait_until(lambda: not server_processes(tmp_path))


def test_a_user_that_crashed_does_not_keep_the_server_alive(tmp_path):
    # given a process that acquired the data directory and was killed without releasing it
    script = textwrap.dedent(f"""
        import time
        from gateway.embedded import EmbeddedDatabase
        EmbeddedDatabase({str(tmp_path)!r}).acquire()
        print("ready", flush=True)
        time.sleep(600)
    """)
    crashed = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert crashed.stdout.readline().strip() == "ready"
    finally:
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(10)
    server_pid = state(tmp_path)["pid"]

    # when this process joins and then releases it
    db = EmbeddedDatabase(tmp_path)
    db.acquire()
    assert state(tmp_path)["pid"] == server_pid
    db.release()

    # then the dead user does not count, and the server stops
    assert wait_until(lambda: not server_processes(tmp_path))
    assert not list((tmp_path / USERS_DIR).iterdir())


def test_a_stale_state_and_pid_file_from_a_dead_server_are_cleared(tmp_path):
    # given state and pid files left by a server that died
    gone = dead_pid()
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": gone, "port": free_port()}))
    (tmp_path / PID_FILE).write_text(str(gone))

    # when the data directory is acquired
    db = EmbeddedDatabase(tmp_path)
    try:
        db.acquire()

        # then a new server answers, and the state names it
        assert _ping(db.port)
        assert state(tmp_path)["pid"] != gone
        assert state(tmp_path)["pid"] in server_processes(tmp_path)
    finally:
        db.release()
    assert wait_until(lambda: not server_processes(tmp_path))


def test_a_stale_state_naming_a_reused_pid_does_not_kill_that_process(tmp_path):
    # given a state file whose pid now belongs to an unrelated process (pids are reused, e.g. after a reboot)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (tmp_path / STATE_FILE).write_text(json.dumps({"pid": bystander.pid, "port": free_port()}))

        # when the data directory is acquired and released
        db = EmbeddedDatabase(tmp_path)
        db.acquire()
        assert _ping(db.port)
        db.release()

        # then the unrelated process was left alone
        assert bystander.poll() is None, "the gateway killed a process that was not its database server"
    finally:
        bystander.kill()
        bystander.wait(10)


def test_a_second_server_on_a_locked_data_dir_refuses_to_start(tmp_path):
    # given a running server on a data directory
    db = EmbeddedDatabase(tmp_path)
    db.acquire()
    try:
        # when a second server is started by hand on the same directory
        second = subprocess.run(
            [sys.executable, "-m", "gateway.nxserver", "--data-dir", str(tmp_path), "--port", str(free_port())],
            cwd=REPO, capture_output=True, text=True, timeout=60)

        # then it exits non-zero, says why, and the first one keeps serving
        assert second.returncode != 0
        assert "already holds" in second.stderr
        assert _ping(db.port)
        assert (tmp_path / LOCK_FILE).exists()
    finally:
        db.release()
    assert wait_until(lambda: not server_processes(tmp_path))
    assert os.listdir(tmp_path / USERS_DIR) == []
