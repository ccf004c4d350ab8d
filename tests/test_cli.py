"""The identity-gateway command line: create-admin (against the test database and on an embedded data
directory) and export-schema (the committed schema.graphql must match the code)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from gateway.embedded import STATE_FILE, EmbeddedDatabase, _ping
from tests.flows import ADMIN_SIGN_IN
from tests.support import assert_no_errors

ADMIN_ME = "query { adminMe { email role permissions } }"
CLI_PASSWORD = "a long command line admin passphrase"


def cli(repo_root: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    """Run the installed identity-gateway script with only the GATEWAY_ variables given here."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    clean.update(env)
    script = Path(sys.executable).parent / "identity-gateway"
    return subprocess.run([str(script), *args], input=stdin, capture_output=True, text=True, env=clean,
                          cwd=repo_root, timeout=120)


def admin_email() -> str:
    return f"cli-admin-{uuid.uuid4().hex[:10]}@example.com"


def on_test_database(database_uri: str, database_name: str) -> dict:
    return {"GATEWAY_MONGODB_URI": database_uri, "GATEWAY_DATABASE_NAME": database_name}


async def test_create_admin_makes_an_admin_who_can_sign_in(repo_root, database_uri, database_name, gql):
    # given an email and a password on standard input
    email = admin_email()

    # when create-admin runs against the gateway's database
    done = cli(repo_root, "create-admin", "--email", email, "--password-stdin", "--role", "admin",
               stdin=CLI_PASSWORD + "\n", **on_test_database(database_uri, database_name))

    # then it says so, and the admin signs in through the API with that role
    assert done.returncode == 0, done.stderr
    assert f"created admin {email} (admin)" in done.stdout
    assert CLI_PASSWORD not in done.stdout + done.stderr
    session = assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": CLI_PASSWORD}}))
    assert session["adminSessionCreate"]["__typename"] == "SessionCreated"
    me = assert_no_errors(await gql(ADMIN_ME, token=session["adminSessionCreate"]["token"]))["adminMe"]
    assert me["email"] == email and me["role"] == "admin" and "customers:write" in me["permissions"]


async def test_create_admin_refuses_a_duplicate_email_in_any_case(repo_root, database_uri, database_name):
    # given an existing admin
    email = admin_email()
    env = on_test_database(database_uri, database_name)
    first = cli(repo_root, "create-admin", "--email", email, "--password-stdin", stdin=CLI_PASSWORD, **env)
    assert first.returncode == 0, first.stderr

    # when the same email is used again, in capitals
    again = cli(repo_root, "create-admin", "--email", email.upper(), "--password-stdin", stdin=CLI_PASSWORD, **env)

    # then it exits 1 with a clear message and no traceback
    assert again.returncode == 1
    assert "identity-gateway: email: An admin with this email already exists." in again.stderr
    assert "Traceback" not in again.stderr


async def test_create_admin_refuses_bad_input_with_clear_messages(repo_root, database_uri, database_name):
    env = on_test_database(database_uri, database_name)

    # when the password is weak, the email invalid, the role unknown, or the password not on stdin
    weak = cli(repo_root, "create-admin", "--email", admin_email(), "--password-stdin", stdin="password", **env)
    bad_email = cli(repo_root, "create-admin", "--email", "not-an-email", "--password-stdin", stdin=CLI_PASSWORD,
                    **env)
    bad_role = cli(repo_root, "create-admin", "--email", admin_email(), "--password-stdin", "--role", "god",
                   stdin=CLI_PASSWORD, **env)
    no_stdin = cli(repo_root, "create-admin", "--email", admin_email(), **env)

    # then each fails with a message naming the problem
    assert weak.returncode == 1 and "password:" in weak.stderr and "TOO_SHORT" in weak.stderr
    assert "COMMON" in weak.stderr
    assert bad_email.returncode == 1 and "email: An email address must have an @-sign." in bad_email.stderr
    assert bad_role.returncode == 1 and "role: Choose one of: admin, owner, support, viewer." in bad_role.stderr
    assert no_stdin.returncode == 2 and "--password-stdin" in no_stdin.stderr
    for run in (weak, bad_email, bad_role, no_stdin):
        assert "Traceback" not in run.stderr


async def test_create_admin_on_an_embedded_data_dir_persists_and_leaves_no_server(repo_root, tmp_path):
    # given an empty data directory and no MongoDB configured
    email = admin_email()
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}

    # when create-admin runs twice with the same email
    first = cli(repo_root, "create-admin", "--email", email, "--password-stdin", stdin=CLI_PASSWORD, **env)
    second = cli(repo_root, "create-admin", "--email", email, "--password-stdin", stdin=CLI_PASSWORD, **env)

    # then the first creates it, the second finds it (it was stored), and no server is left running
    assert first.returncode == 0, first.stderr
    assert second.returncode == 1 and "already exists" in second.stderr
    assert not (tmp_path / STATE_FILE).exists()


async def test_create_admin_joins_a_gateway_already_running_on_the_data_dir(repo_root, tmp_path):
    # given a running embedded server on a data directory (as `make serve` would hold it)
    running = EmbeddedDatabase(tmp_path)
    running.acquire()
    try:
        # when create-admin runs on that data directory
        done = cli(repo_root, "create-admin", "--email", admin_email(), "--password-stdin", stdin=CLI_PASSWORD,
                   GATEWAY_DATA_DIR=str(tmp_path))

        # then it succeeds and the server is still up for the gateway
        assert done.returncode == 0, done.stderr
        assert _ping(running.port)
    finally:
        running.release()


def test_exported_schema_matches_the_committed_schema_graphql(repo_root):
    # given the committed SDL
    committed = (repo_root / "schema.graphql").read_text()

    # when the schema is exported from the code
    exported = cli(repo_root, "export-schema")

    # then they are the same (run `identity-gateway export-schema > schema.graphql` after changing the schema)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == committed, "stale: run `identity-gateway export-schema > schema.graphql`"
    assert "type Query" in committed and "type Mutation" in committed
