"""Launcher for the embedded nx-27017 database server (run as a child process).

It holds an exclusive lock on the database file for as long as it lives, so two
servers can never open one file, and it stops itself once no process that uses it
is left alive (a crashed gateway therefore leaves nothing behind for long).

    python -m gateway.nxserver --data-dir DIR --port PORT
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path

from gateway.embedded import DB_FILE, LOCK_FILE, LOG_FILE, PID_FILE, live_users

IDLE_GRACE_SECONDS = 5.0


def _watch_users(data_dir: Path, started: float) -> None:
    idle_since: float | None = None
    while True:
        time.sleep(0.5)
        if live_users(data_dir):
            idle_since = None
            continue
        now = time.monotonic()
        if now - started < 30:  # the process that started us registers itself right after ping
            continue
        idle_since = idle_since or now
        if now - idle_since >= IDLE_GRACE_SECONDS:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()

    lock = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another nx-27017 server already holds this database file", file=sys.stderr)
        return 75
    # We hold the lock, so any pid file left here belongs to a dead server.
    (data_dir / PID_FILE).unlink(missing_ok=True)

    threading.Thread(target=_watch_users, args=(data_dir, time.monotonic()), daemon=True).start()

    from nx_27017.nx_27017 import main as nx_main

    sys.argv = [
        "nx-27017",
        "--db", str(data_dir / DB_FILE),
        "--host", "127.0.0.1",
        "--port", str(args.port),
        "--pid-file", str(data_dir / PID_FILE),
        "--log-file", str(data_dir / LOG_FILE),
    ]
    nx_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
