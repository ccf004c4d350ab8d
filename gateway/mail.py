"""Mail delivery through the outbox: every message is stored first, then sent; failures retry with backoff.

With no GATEWAY_SMTP_URL (development), messages stay in the outbox with status
``stored`` and their links are logged so that a newcomer can click them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from resolvers.context import Clock, RenderPool, epoch_ms
from resolvers.email_templates import render_for
from resolvers.security import new_id
from stores import outbox
from stores.documents import ApplicationDocument, OutboxDocument

logger = logging.getLogger("gateway.mail")

LEASE_MS = 60_000
MAX_BACKOFF_MS = 3_600_000


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    timeout: float = 10.0

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("GATEWAY_SMTP_URL must look like smtp://user:pass@host:587?starttls=true")
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        use_tls = parts.scheme == "smtps"
        start_tls = None if "starttls" not in query else query["starttls"] in ("1", "true", "yes")
        return cls(host=parts.hostname, port=parts.port or (465 if use_tls else 587),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   use_tls=use_tls, start_tls=start_tls, timeout=float(query.get("timeout", 10)))


class OutboxMailer:
    def __init__(self, *, clock: Clock, sender: str, smtp: SmtpTarget | None, spawn=None,
                 render_pool: RenderPool) -> None:
        self._clock = clock
        self._render_pool = render_pool
        self._sender = sender
        self._smtp = smtp
        self._spawn = spawn  # runs delivery after the caller moves on; None delivers inline

    async def send(self, kind: str, to: str, variables: dict[str, Any], application: ApplicationDocument,
                   locale: str | None = None) -> None:
        try:  # a failing override falls back to the shipped default inside render_for
            rendered = await render_for(self._render_pool, application, kind, variables, locale)
        except Exception:
            logger.exception("mail %s could not be rendered, not even from the shipped default; not sent", kind)
            return
        now = self._clock.now()
        message = OutboxDocument(
            id=new_id(), kind=kind, to=to, subject=rendered.subject, html=rendered.html, text=rendered.text,
            status="pending" if self._smtp else "stored", created_at=now, next_attempt_ms=epoch_ms(now),
        )
        await outbox.insert(message)
        if self._smtp is None:
            # Development outbox only: links are logged so they can be clicked.
            logger.info("development outbox: %s mail to %s stored (id %s); link: %s",
                        kind, to, message.id, variables.get("action_url", "-"))
            return
        if self._spawn is not None:
            self._spawn(self.deliver(message.id))
        else:
            await self.deliver(message.id)

    async def deliver(self, message_id: str) -> bool:
        now_ms = epoch_ms(self._clock.now())
        message = await outbox.claim(message_id, now_ms, LEASE_MS)
        if message is None or self._smtp is None:
            return False
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(domain="identity-gateway")
        email.set_content(message.text or "")
        email.add_alternative(message.html or "", subtype="html")
        target = self._smtp
        try:
            await aiosmtplib.send(email, hostname=target.host, port=target.port, username=target.username,
                                  password=target.password, use_tls=target.use_tls, start_tls=target.start_tls,
                                  timeout=target.timeout)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            attempts = message.attempts + 1
            delay = min(MAX_BACKOFF_MS, 5_000 * 2 ** (attempts - 1))
            await outbox.mark_failed(message.id, attempts, now_ms + delay, f"{type(exc).__name__}: {exc}")
            logger.warning("mail %s to %s failed (attempt %s), retrying in %ss: %s",
                           message.kind, message.to, attempts, delay // 1000, type(exc).__name__)
            return False
        await outbox.mark_sent(message.id, epoch_ms(self._clock.now()))
        logger.info("mail %s sent (id %s)", message.kind, message.id)
        return True

    async def retry_due(self) -> int:
        """Deliver every message whose retry time has come; returns how many were sent."""
        sent = 0
        for message_id in await outbox.due_ids(epoch_ms(self._clock.now())):
            sent += await self.deliver(message_id)
        return sent

    async def run_retries(self, interval: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval)
            if self._smtp is None:
                continue
            try:
                await self.retry_due()
            except Exception:  # keep the loop alive through database hiccups
                logger.exception("outbox retry pass failed")
