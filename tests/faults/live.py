"""Live gateways for the fault tests: `identity-gateway serve` subprocesses on an embedded data directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pymongo import MongoClient

from gateway.embedded import STATE_FILE
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]


def serve_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("identity-gateway")
    if script.exists():
        return [str(script), "serve", "--port", str(port)]
    return [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class LiveGateway:
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_name(self) -> str:
        return self.env["GATEWAY_DATABASE_NAME"]

    def start(self, timeout: float = 60.0) -> LiveGateway:
        self.port = free_port()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(serve_command(self.port), cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"gateway exited early:\n{self.log_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"gateway did not become ready:\n{self.log_text()[-3000:]}"
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def database_state(self) -> dict:
        """The embedded nx-27017 server's pid and port."""
        return json.loads((self.data_dir / STATE_FILE).read_text())

    def database(self):
        state = self.database_state()
        client = MongoClient(f"mongodb://127.0.0.1:{state['port']}/?directConnection=true",
                             serverSelectionTimeoutMS=5000)
        return client, client[self.database_name]

    def kill(self) -> None:
        """kill -9, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def gateway_env(data_dir: Path, database_name: str, smtp_port: int | None, **settings: object) -> dict[str, str]:
    """The parent environment without GATEWAY_ variables, plus these settings (GATEWAY_ + upper-case name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    values: dict[str, object] = {
        "data_dir": data_dir, "database_name": database_name, "public_url": "http://gateway.test",
        "trusted_proxies": "127.0.0.1", "log_level": "INFO",
    }
    if smtp_port is not None:
        values["smtp_url"] = f"smtp://127.0.0.1:{smtp_port}?starttls=false"
    values.update(settings)
    env.update({f"GATEWAY_{name.upper()}": str(value) for name, value in values.items()})
    return env


def live_gateway(data_dir: Path, log_path: Path, database_name: str, smtp_port: int | None,
                 **settings: object) -> LiveGateway:
    return LiveGateway(data_dir=data_dir, log_path=log_path,
                       env=gateway_env(data_dir, database_name, smtp_port, **settings)).start()


def stop_database(data_dir: Path) -> None:
    """Stop the embedded server a killed gateway left behind (it would stop itself, but later)."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return
    pid = state.get("pid")
    ours = f"--data-dir\0{data_dir.resolve()}".encode()
    try:
        if not (pid and pid_alive(pid) and ours in Path(f"/proc/{pid}/cmdline").read_bytes()):
            return
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not pid_alive(pid), 10):
            os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass  # it went away by itself


def create_admin(env: dict[str, str], role: str = "owner") -> str:
    """An admin made by ``identity-gateway create-admin`` on a live gateway's database; returns its email
    (the password is ``tests.flows.ADMIN_PASSWORD``)."""
    from tests.flows import ADMIN_PASSWORD
    from tests.support import unique_email

    email = unique_email("live-admin")
    subprocess.run([sys.executable, "-m", "gateway.cli", "create-admin", "--email", email, "--password-stdin",
                    "--role", role], input=ADMIN_PASSWORD + "\n", cwd=REPO, env=env, check=True,
                   capture_output=True, text=True, timeout=60)
    return email
