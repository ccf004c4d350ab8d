"""Structured logs: JSON lines, a request id on each line written during a request, and no secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid

import httpx

from gateway.observability import JsonFormatter, RequestIdFilter, TextFormatter, configure_logging, redact
from tests.flows import ME, PASSWORD, REGISTER, SIGN_IN, confirm_from_page
from tests.support import GraphQLClient, assert_no_errors, unique_email

REQUEST_RESET = """
mutation Ask($email: String!) { passwordResetRequest(input: {email: $email}) { __typename } }
"""
RESET = """
mutation Reset($input: PasswordResetInput!) { passwordReset(input: $input) { __typename ... on Error { code } } }
"""
NEW_PASSWORD = "a completely new passphrase 31"


class TracedClient(GraphQLClient):
    """Sends its own X-Request-Id with every request and remembers them."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http)
        self.request_ids: list[str] = []

    def next_id(self) -> dict:
        self.request_ids.append(f"test-{uuid.uuid4().hex}")
        return {"x-request-id": self.request_ids[-1], "x-forwarded-for": self.ip}

    async def post(self, query, variables=None, *, token=None, headers=None):
        return await super().post(query, variables, token=token, headers={**self.next_id(), **(headers or {})})

    async def get(self, path: str, **params) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.next_id())


def new_lines(path, offset: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(offset)
        return [line for line in f.read().decode().splitlines() if line.strip()]


async def test_a_whole_journey_logs_json_with_request_ids_and_no_secrets(gateway_pair, mailbox):
    # given a live gateway writing JSON logs
    gateway, _ = gateway_pair
    offset = gateway.log_path.stat().st_size
    email = unique_email("logs")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        gql = TracedClient(http)

        # when a customer registers, activates from the emailed link, signs in, resets the password and signs in again
        assert assert_no_errors(await gql(REGISTER, {"input": {"email": email, "password": PASSWORD}}))
        activation_token = (await mailbox.wait_for(email, "activate")).token("/activate")
        confirmed = await confirm_from_page(http, "/activate", activation_token, headers=gql.next_id())
        assert "Your account is activated" in confirmed.text
        first = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": PASSWORD}}))
        first_session = first["sessionCreate"]["token"]
        assert assert_no_errors(await gql(ME, token=first_session))["me"]["email"] == email
        assert_no_errors(await gql(REQUEST_RESET, {"email": email}))
        reset_token = (await mailbox.wait_for(email, "reset your")).token("/reset-password")
        assert (await gql.get("/reset-password", token=reset_token)).status_code == 200
        done = assert_no_errors(await gql(RESET, {"input": {"token": reset_token, "newPassword": NEW_PASSWORD,
                                                            "confirmPassword": NEW_PASSWORD}}))
        assert done["passwordReset"]["__typename"] == "PasswordResetDone", done
        second = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": NEW_PASSWORD}}))
        second_session = second["sessionCreate"]["token"]
        # a failure path too: a wrong password and a foreign token
        await gql(SIGN_IN, {"input": {"identifier": email, "password": "wrong " + PASSWORD}})
        await gql(ME, token=first_session)
        await asyncio.sleep(0.5)  # deferred work (mail) finishes and logs

    # then every line is JSON with a request id, one of ours
    lines = new_lines(gateway.log_path, offset)
    assert len(lines) >= len(gql.request_ids), lines
    entries = []
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message", "request_id"} <= entry.keys(), entry
        assert entry["request_id"] in gql.request_ids, entry
        entries.append(entry)
    # each request has its access line under its own id
    access = {e["request_id"] for e in entries if e["logger"] == "uvicorn.access"}
    assert access == set(gql.request_ids)
    # and the link pages' access lines show the path without the token
    paths = [e["path"] for e in entries if e["logger"] == "uvicorn.access"]
    assert "/activate?token=[redacted]" in paths and "/reset-password?token=[redacted]" in paths, paths
    # and no password, session token or link token appears anywhere
    text = "\n".join(lines)
    for secret in (PASSWORD, NEW_PASSWORD, first_session, second_session, activation_token, reset_token):
        assert secret not in text, f"a secret is in the log: {secret[:6]}..."


def record(name: str, message: str, *args, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord(name, logging.INFO, __file__, 1, message, args, exc_info)


def test_secrets_are_blanked_in_messages_arguments_and_tracebacks():
    token = "gwc_" + "A" * 43
    try:
        raise ValueError(f"bad token {token} in https://x.test/activate?token=abcdefghijklmnop")
    except ValueError as exc:
        error = exc
    for formatter in (JsonFormatter(), TextFormatter()):
        out = formatter.format(record("gateway", "signed in with %s via %s", token, "/reset-password?token=s3cr3t&x=1",
                                      exc=error))
        assert token not in out and "s3cr3t" not in out and "abcdefghijklmnop" not in out, out
        assert "gwc_[redacted]" in out and "token=[redacted]&x=1" in out
    assert redact("admin gwa_" + "b" * 43) == "admin gwa_[redacted]"


def test_the_development_outbox_link_is_kept_only_outside_production():
    line = ("development outbox: %s mail to %s stored (id %s); link: %s", "activation", "a@example.com", "1",
            "http://127.0.0.1:8000/activate?token=devtoken123456")
    development = JsonFormatter(production=False).format(record("gateway.mail", *line))
    production = JsonFormatter(production=True).format(record("gateway.mail", *line))
    assert "token=devtoken123456" in json.loads(development)["message"]
    assert "devtoken123456" not in production and "token=[redacted]" in json.loads(production)["message"]


def test_configure_logging_stamps_request_ids_and_routes_uvicorn(monkeypatch):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        handler = configure_logging("INFO", "json", stream=stream)
        assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
        logging.getLogger("uvicorn.error").info("started")
        entry = json.loads(stream.getvalue().splitlines()[-1])
        assert entry["logger"] == "uvicorn.error" and entry["request_id"] is None
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
