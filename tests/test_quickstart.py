"""The README's `make serve` works from a fresh clone: it sets itself up, serves, and mails links to the log.

(`make test`, the other README command, is what CI runs on a fresh clone.)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from tests.support import free_port, hidden_fields, unique_email

pytestmark = pytest.mark.slow


def test_make_serve_from_a_fresh_clone(tmp_path, repo_root):
    # given a fresh clone of the committed tree
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    log = open(tmp_path / "serve.log", "w+")

    # when the newcomer runs the README's serve command
    proc = subprocess.Popen(["make", "serve", f"PORT={port}"], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "make serve did not come up"
            time.sleep(0.5)

        # then GraphiQL is there, and a customer can register and activate from the logged link
        assert "graphiql" in httpx.get(f"{base}/graphql", headers={"accept": "text/html"}).text.lower()
        email = unique_email("newcomer")
        answer = httpx.post(f"{base}/graphql", json={"query": "mutation($e: String!) { accountRegister(input: "
                            "{email: $e, password: \"correct horse battery staple\"}) { __typename } }",
                            "variables": {"e": email}}).json()
        assert answer == {"data": {"accountRegister": {"__typename": "AccountRegisterAccepted"}}}
        link = None
        for _ in range(100):
            text = (tmp_path / "serve.log").read_text()
            found = re.search(rf"activation mail to {re.escape(email)} .*link: (\S+)", text)
            if found:
                link = found.group(1)
                break
            time.sleep(0.1)
        assert link and link.startswith(f"{base}/activate?token="), text[-2000:]
        with httpx.Client() as browser:  # keeps the page's CSRF cookie, as a browser does
            page = browser.get(link)
            assert "Activate your account" in page.text
            done = browser.post(f"{base}/activate", data=hidden_fields(page.text, "/activate"))
        assert "Your account is activated" in done.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()

    # and stopping it leaves no database process behind
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-f", f"gateway.nxserver --data-dir {clone}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
    assert (clone / "var" / "nx-27017.db").exists()
