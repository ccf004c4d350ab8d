"""Helpers for the hardening tests."""

from __future__ import annotations

import logging

import httpx
from pydantic import SecretStr

from gateway.config import Environment, Settings

PRODUCTION_SECRET = "a-production-secret-that-is-longer-than-32-chars"


def production_settings(settings: Settings, **overrides) -> Settings:
    """The test settings in production mode (an SMTP URL is already set), with an https public URL."""
    return settings.model_copy(update={"env": Environment.production, "secret_key": SecretStr(PRODUCTION_SECRET),
                                       "public_url": "https://gateway.test", **overrides})


def refused_before_execution(response: httpx.Response) -> list[dict]:
    """A request-level refusal: HTTP 200 or 400 (never 500), top-level errors and no data."""
    assert response.status_code in (200, 400), (response.status_code, response.text[:500])
    body = response.json()
    assert body.get("errors"), body
    assert body.get("data") is None, body
    return body["errors"]


def messages(errors: list[dict]) -> str:
    return " | ".join(e["message"] for e in errors)


def log_text(records: list[logging.LogRecord]) -> str:
    """Everything the log holds for these records: messages, tracebacks and stack info."""
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    return "\n".join(handler.format(record) for record in records)


def holds_fragment_of(logged: str, document: str, size: int = 40) -> bool:
    """True when any ``size``-character piece of the document appears in the log text."""
    return any(document[start:start + size] in logged for start in range(0, max(1, len(document) - size), size // 2))


def at_start_of_window(clock, window_seconds: int = 3600) -> None:
    """Move the clock just past the start of a fixed rate-limit window, so a test never straddles two."""
    into = clock.now().timestamp() % window_seconds
    clock.advance(seconds=window_seconds - into + 1)
