"""Test helpers: a settable clock, a captured-mail SMTP server, a GraphQL client, assertions."""

from __future__ import annotations

import asyncio
import html
import re
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
from aiosmtpd.controller import Controller


class MutableClock:
    """Real time plus an offset that tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)

    def reset(self) -> None:
        self.offset = timedelta(0)


@dataclass
class CapturedMail:
    to: str
    subject: str
    text: str
    html: str
    raw: EmailMessage

    def link(self, path: str) -> str:
        match = re.search(r"https?://[^\s\"'<>]+" + re.escape(path) + r"\?token=[A-Za-z0-9_\-]+", self.text)
        assert match, f"no {path} link in mail {self.subject!r}:\n{self.text}"
        return match.group(0)

    def token(self, path: str) -> str:
        return self.link(path).split("token=", 1)[1]


@dataclass
class Mailbox:
    messages: list[CapturedMail] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        for rcpt in envelope.rcpt_tos:
            self.messages.append(CapturedMail(
                to=rcpt, subject=str(parsed["subject"]), raw=parsed,
                text=text.get_content() if text else "", html=html.get_content() if html else "",
            ))
        return "250 OK"

    def to(self, address: str) -> list[CapturedMail]:
        return [m for m in self.messages if m.to.lower() == address.lower()]

    async def wait_for(self, address: str, subject_contains: str = "", timeout: float = 15.0, count: int = 1) -> CapturedMail:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [m for m in self.to(address) if subject_contains.lower() in m.subject.lower()]
            if len(found) >= count:
                return found[count - 1]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no mail to {address} with {subject_contains!r}; got {[m.subject for m in self.to(address)]}")
            await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp() -> tuple[Controller, Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, mailbox


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def unique_ip() -> str:
    raw = uuid.uuid4().int
    return f"10.{raw % 250}.{(raw >> 8) % 250}.{(raw >> 16) % 250 + 1}"


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, ip: str | None = None, headers: dict | None = None) -> None:
        self.http = http
        self.ip = ip or unique_ip()
        self.headers = dict(headers or {})  # sent with every request (e.g. the application's X-Application-Id)

    def for_application(self, headers: dict) -> GraphQLClient:
        """The same client (same address) sending these headers too: a frontend of one application."""
        return GraphQLClient(self.http, self.ip, {**self.headers, **headers})

    async def post(self, query: str, variables: dict | None = None, *, token: str | None = None,
                   headers: dict | None = None) -> httpx.Response:
        sent = {"x-forwarded-for": self.ip, **self.headers, **(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=sent)

    async def __call__(self, query: str, variables: dict | None = None, **kwargs) -> dict[str, Any]:
        response = await self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


def assert_no_errors(result: dict) -> dict:
    assert "errors" not in result, result.get("errors")
    return result["data"]


def assert_denied(result: dict, code: str) -> None:
    assert result.get("errors"), f"expected a {code} denial, got {result}"
    assert [e.get("extensions", {}).get("code") for e in result["errors"]] == [code], result["errors"]


HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the page's form that posts to ``action``, as a browser would send them."""
    forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    found = [body for target, body in forms if html.unescape(target) == action]
    assert found, f"no form posting to {action} in:\n{page}"
    return {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(found[0])}
