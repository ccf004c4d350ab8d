"""The embedded database: an nx-27017 child process on a file in the data directory.

Several processes (gateway instances, the CLI) may use one data directory. The first
one starts the server and records its port in a state file; the others reuse it.
Each user (each ``EmbeddedDatabase`` that acquired it, so one process may hold several)
registers a ``<pid>.<suffix>`` file under ``nx-27017.users/``; the server stops when the
last live user releases it (or, after a crash, when its watchdog finds none left).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

DB_FILE = "nx-27017.db"
LOCK_FILE = "nx-27017.db.lock"
PID_FILE = "nx-27017.pid"
LOG_FILE = "nx-27017.log"
STATE_FILE = "nx-27017.state.json"
COORD_FILE = "nx-27017.coord.lock"
USERS_DIR = "nx-27017.users"

START_TIMEOUT_SECONDS = 30.0

# Servers started by this process, so that whichever user stops one can also reap it.
_children: dict[int, subprocess.Popen] = {}


class EmbeddedDatabaseError(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def live_users(data_dir: Path) -> list[int]:
    users = data_dir / USERS_DIR
    pids = []
    for entry in users.glob("*") if users.exists() else []:
        try:
            pid = int(entry.name.split(".", 1)[0])
        except ValueError:
            continue
        if _alive(pid):
            pids.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return pids


def _is_server_for(pid: int, data_dir: Path) -> bool:
    """True when this pid is an nx-27017 launcher for this data directory (pids get reused, e.g. after a reboot)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask ps
        try:
            out = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True,
                                 timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return "gateway.nxserver" in out and str(data_dir) in out
    return b"gateway.nxserver" in args and str(data_dir).encode() in args


def _ping(port: int, timeout: float = 1.0) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client = MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=int(timeout * 1000),
                         connectTimeoutMS=int(timeout * 1000), directConnection=True)
    try:
        return client.admin.command("ping").get("ok") == 1
    except PyMongoError:
        return False
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedDatabase:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._proc: subprocess.Popen | None = None
        self.port: int | None = None
        self._user_file: Path | None = None

    @property
    def uri(self) -> str:
        assert self.port is not None
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @contextmanager
    def _coordination(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / COORD_FILE, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _read_state(self) -> dict | None:
        try:
            return json.loads((self.data_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> str:
        """Start the server, or join the one already running on this data directory."""
        with self._coordination():
            state = self._read_state()
            if state and _alive(state.get("pid", -1)) and _ping(state["port"]):
                self.port = state["port"]
                logger.info("embedded database: reusing nx-27017 on port %s (pid %s)", self.port, state["pid"])
            else:
                if state:
                    logger.warning("embedded database: clearing stale state from pid %s", state.get("pid"))
                    self._stop_pid(state.get("pid"))
                (self.data_dir / STATE_FILE).unlink(missing_ok=True)
                self._start()
            users = self.data_dir / USERS_DIR
            users.mkdir(exist_ok=True)
            if self._user_file is None:
                self._user_file = users / f"{os.getpid()}.{uuid.uuid4().hex[:12]}"
            self._user_file.touch()
        return self.uri

    def _start(self) -> None:
        last_error = ""
        for _ in range(3):
            port = _free_port()
            log = open(self.data_dir / "nx-27017.launcher.log", "ab")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.nxserver", "--data-dir", str(self.data_dir), "--port", str(port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
            log.close()
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    last_error = f"nx-27017 exited with code {proc.returncode}"
                    break
                if _ping(port, timeout=0.5):
                    self._proc, self.port = proc, port
                    _children[proc.pid] = proc
                    state = {"pid": proc.pid, "port": port}
                    tmp = self.data_dir / (STATE_FILE + ".tmp")
                    tmp.write_text(json.dumps(state))
                    tmp.replace(self.data_dir / STATE_FILE)
                    logger.info("embedded database: started nx-27017 on port %s (pid %s)", port, proc.pid)
                    return
                time.sleep(0.1)
            else:
                proc.kill()
                last_error = "nx-27017 did not answer ping in time"
        raise EmbeddedDatabaseError(f"{last_error}; see {self.data_dir / 'nx-27017.launcher.log'}")

    def _stop_pid(self, pid: int | None, timeout: float = 10.0) -> None:
        child = _children.get(pid) if pid else None
        if child is not None and child.poll() is not None:
            _children.pop(pid, None)
            return
        if not pid or not _alive(pid):
            return
        if child is None and not _is_server_for(pid, self.data_dir):
            logger.warning("embedded database: pid %s is not our server; leaving it alone", pid)
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child is not None:
                if child.poll() is not None:
                    _children.pop(pid, None)
                    return
            elif not _alive(pid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if child is not None:
            child.wait(5)
            _children.pop(pid, None)

    def release(self) -> None:
        """Unregister this process; stop the server when no other user is left."""
        with self._coordination():
            if self._user_file is not None:
                self._user_file.unlink(missing_ok=True)
                self._user_file = None
            if live_users(self.data_dir):
                return
            state = self._read_state()
            if state:
                self._stop_pid(state.get("pid"))
            (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
        if self._proc is not None and self._proc.poll() is None:
            self._stop_pid(self._proc.pid)
