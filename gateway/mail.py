"""Mail delivery through the outbox: every message is stored first, then sent; failures retry with backoff.

Mail is never silently lost: storing a message is part of the request that sends it (a database
error fails that request), and only a template problem is answered by falling back to the default
template. A message whose links have expired is not delivered late: it becomes a dead letter, as
does one whose body can no longer be decrypted (the secret key changed); both are counted in
/metrics. Pending bodies hold live links, so they are encrypted at rest (Fernet: AES-128-CBC with
HMAC-SHA-256, under a key derived from GATEWAY_SECRET_KEY with HKDF-SHA-256) and removed once the
mail is sent or dead. A sender holds a message under a lease, and only the lease holder may
record the outcome, so a sender that outlived its lease cannot overwrite another's result.

With no GATEWAY_SMTP_URL (development), messages stay in the outbox with status
``stored`` and their links are logged so that a newcomer can click them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from resolvers.context import Clock, RenderPool, epoch_ms
from resolvers.email_templates import render_for
from resolvers.mail_templates import RenderedMail
from resolvers.security import new_id
from stores import outbox
from stores.documents import ApplicationDocument, OutboxDocument, OutboxStatus

logger = logging.getLogger("gateway.mail")

LEASE_MS = 60_000
MAX_BACKOFF_MS = 3_600_000
MAX_ATTEMPTS = 24  # 5 s doubling to 1 h between attempts: given up after about 18 hours
BODY_KEY_INFO = b"identity-gateway outbox body v1"


def permanent_rejection(exc: BaseException) -> bool:
    """An SMTP 5yz reply to the recipient or the message (RFC 5321 4.2.1): sending again cannot help.
    Connection errors, time-outs and 4yz replies are transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    return isinstance(exc, (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError)) and exc.code >= 500


def body_cipher(secret_key: bytes) -> Fernet:
    """The outbox body cipher: Fernet under HKDF-SHA-256(secret key, info="identity-gateway outbox body v1")."""
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=BODY_KEY_INFO).derive(secret_key)
    return Fernet(base64.urlsafe_b64encode(key))


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
    def __init__(self, *, clock: Clock, sender: str, smtp: SmtpTarget | None, secret_key: bytes,
                 render_pool: RenderPool, spawn=None) -> None:
        self._clock = clock
        self._render_pool = render_pool
        self._sender = sender
        self._smtp = smtp
        self._cipher = body_cipher(secret_key)
        self._spawn = spawn  # runs delivery after the caller moves on (None when busy); None delivers inline

    def seal(self, rendered: RenderedMail) -> str:
        return self._cipher.encrypt(json.dumps(
            {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}).encode()).decode()

    def unseal(self, body: str) -> RenderedMail:
        """The subject, HTML and text of a stored body; raises InvalidToken when it cannot be read."""
        parts = json.loads(self._cipher.decrypt(body.encode()))
        return RenderedMail(subject=parts["subject"], html=parts["html"], text=parts["text"])

    async def send(self, kind: str, to: str, variables: dict[str, Any], application: ApplicationDocument,
                   locale: str | None = None, *, subject_id: str | None = None, erase_when_done: bool = False) -> None:
        """Store the mail (a database error is raised to the caller), then deliver it after the caller moves on.

        ``variables["expires_in_minutes"]``, when given, is how long the links inside stay valid: the
        mail is not delivered after that. ``subject_id``: whom the mail is about (the erasure of a customer
        finds their mail by it, whatever the address). ``erase_when_done``: no record is kept once it is
        sent or dead (mail to an erased account).
        """
        if self._smtp is None and erase_when_done:
            # The development outbox keeps what it stores; mail that must leave no record is not stored.
            logger.info("development outbox: %s mail not kept (it must leave no record)", kind)
            return
        rendered = await render_for(self._render_pool, application, kind, variables, locale)
        now = self._clock.now()
        now_ms = epoch_ms(now)
        lifetime = variables.get("expires_in_minutes")
        message = OutboxDocument(
            id=new_id(), kind=kind, to=to, subject_id=subject_id, body=self.seal(rendered),
            status=OutboxStatus.PENDING if self._smtp else OutboxStatus.STORED, created_at=now,
            next_attempt_ms=now_ms, expires_at_ms=now_ms + int(lifetime) * 60_000 if lifetime else None,
            erase_when_done=erase_when_done,
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
        """Try to send one waiting message; True when it was delivered now."""
        now_ms = epoch_ms(self._clock.now())
        if self._smtp is None:
            return False
        lease = new_id()
        message = await outbox.claim(message_id, now_ms, LEASE_MS, lease)
        if message is None:
            return False
        if message.expires_at_ms is not None and now_ms >= message.expires_at_ms:
            return await self._dead(message, lease, "expired")
        try:
            content = self.unseal(message.body or "")
        except (InvalidToken, ValueError, KeyError):
            return await self._dead(message, lease, "undecryptable")
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.to
        email["Subject"] = content.subject
        email["Message-ID"] = make_msgid(domain="identity-gateway")
        email.set_content(content.text)
        email.add_alternative(content.html, subtype="html")
        target = self._smtp
        try:
            await aiosmtplib.send(email, hostname=target.host, port=target.port, username=target.username,
                                  password=target.password, use_tls=target.use_tls, start_tls=target.start_tls,
                                  timeout=target.timeout)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            attempts = message.attempts + 1
            if permanent_rejection(exc):
                return await self._dead(message, lease, "rejected")
            if attempts >= MAX_ATTEMPTS:
                return await self._dead(message, lease, "undeliverable")
            delay = min(MAX_BACKOFF_MS, 5_000 * 2 ** (attempts - 1))
            await outbox.mark_failed(message.id, lease, attempts, now_ms + delay, f"{type(exc).__name__}: {exc}")
            logger.warning("mail %s to %s failed (attempt %s), retrying in %ss: %s",
                           message.kind, message.to, attempts, delay // 1000, type(exc).__name__)
            return False
        done = outbox.erase(message.id, lease) if message.erase_when_done else \
            outbox.mark_sent(message.id, lease, epoch_ms(self._clock.now()))
        if not await done:
            logger.warning("mail %s (id %s) sent after its lease ran out; another sender may send it again",
                           message.kind, message.id)
        logger.info("mail %s sent (id %s)", message.kind, message.id)
        return True

    async def _dead(self, message: OutboxDocument, lease: str, reason: str) -> bool:
        await (outbox.erase(message.id, lease) if message.erase_when_done else outbox.mark_dead(message.id, lease, reason))
        logger.warning("mail %s (id %s) will not be sent: %s", message.kind, message.id, reason)
        return False

    async def retry_due(self) -> int:
        """Deliver every message whose retry time has come; returns how many were sent (none without SMTP)."""
        if self._smtp is None:
            return 0
        sent = 0
        for message_id in await outbox.due_ids(epoch_ms(self._clock.now())):
            sent += await self.deliver(message_id)
        return sent
