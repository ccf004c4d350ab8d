"""The per-request context every use case takes, and what it needs from the runtime."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from resolvers.passwords import PasswordHasher
from stores.documents import ApplicationDocument, PolicyDocument


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Mailer(Protocol):
    async def send(self, kind: str, to: str, variables: dict[str, Any], application: ApplicationDocument,
                   locale: str | None = None, *, subject_id: str | None = None, erase_when_done: bool = False) -> None:
        """Store an email in the outbox; delivery follows after the caller moves on, with retries.
        ``subject_id``: the customer (or admin) it is about, so erasing them erases it, whatever address it
        went to. ``erase_when_done``: its outbox record is deleted once it is sent or dead (mail to an erased
        account)."""


class Jobs(Protocol):
    """Durable work after the answer (``gateway/jobs.py``): written before the request answers."""

    async def enqueue(self, kind: str, payload: dict[str, Any], application_id: str | None = None, *,
                      run_after_ms: int | None = None) -> str:
        """Write a job for the request's application, or another one (raises on a database error); returns its id.
        ``run_after_ms``: not before then (epoch ms; default: the sweep's grace after now)."""

    def start(self, job_id: str) -> None:
        """Run it after the response, here if possible; otherwise any instance's sweep will."""

    def check_capacity(self) -> None:
        """Raise RateLimited when this instance's queue of deferred work is full (before writing a job
        whose answer must not depend on the account)."""


class RenderPool(Protocol):
    async def render(self, source: str, part: str, variables: dict[str, Any]) -> str:
        """Render one part (``subject``, ``html``, ``text``) of an untrusted template, off the event loop.

        Within the gateway's budget (``GATEWAY_TEMPLATE_RENDER_TIMEOUT_MS``, ``…_MAX_OUTPUT_BYTES``):
        past it raises ``TemplateTooSlow`` / ``TemplateTooLarge`` (``resolvers.template_sandbox``);
        otherwise whatever the template raises.
        """


class ConfigCache(Protocol):
    """This instance's cache of applications and their policies (``gateway/runtime.py``)."""

    def forget(self) -> None:
        """Drop every cached application and policy: this instance's next request reads them afresh.

        Other instances keep theirs until it expires (``APPLICATION_CACHE_SECONDS``)."""


@dataclass(frozen=True)
class Limit:
    attempts: int
    window_seconds: int


@dataclass(frozen=True)
class RelyingParty:
    """Where an application's passkeys work (WebAuthn): the relying party id and the origins of its pages."""

    rp_id: str
    origins: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    """The tunable parts of the rules, built by the gateway from its settings."""

    public_url: str
    secret_key: bytes
    session_absolute_ttl_seconds: int
    session_idle_ttl_seconds: int
    session_touch_interval_seconds: int
    admin_session_absolute_ttl_seconds: int
    admin_session_idle_ttl_seconds: int
    login_identifier: Limit  # per account (or unknown identifier), clients without a device token: softer
    login_identifier_ip: Limit  # per account and client IP: tight
    login_device: Limit  # per device token: a known device's own budget
    login_ip: Limit
    register_ip: Limit
    registration_notice_email: Limit
    activation_resend_email: Limit
    activation_resend_ip: Limit
    reset_email: Limit
    reset_ip: Limit
    reset_token: Limit
    consent_changes: Limit = Limit(60, 3600)  # consentSet answers per customer
    mfa_email_code: Limit = Limit(5, 900)  # emailed second-factor codes per account
    email_change: Limit = Limit(5, 3600)  # email-change requests per customer (answered RateLimited)
    email_change_address: Limit = Limit(3, 3600)  # verification mails per new address (silent)
    max_sessions_per_subject: int = 50  # live sessions a customer or admin keeps; a new one ends the least recently active
    # Passkeys: the relying party of applications without an override (None: passkeys off for them), and
    # the overrides by client id (GATEWAY_WEBAUTHN_*, checked at start-up).
    webauthn_default: RelyingParty | None = None
    webauthn_applications: tuple[tuple[str, RelyingParty], ...] = ()
    email_sign_in_ip: Limit = Limit(30, 3600)  # emailed sign-in requests per client IP (silent)
    email_sign_in_email: Limit = Limit(5, 3600)  # emailed sign-in mails per address (silent)

    def relying_party(self, client_id: str) -> RelyingParty | None:
        """The relying party of the application with this client id; None: passkeys are off for it."""
        return dict(self.webauthn_applications).get(client_id, self.webauthn_default)


@dataclass(frozen=True)
class Principal:
    kind: str  # customer | admin
    subject_id: str
    session_id: str
    permissions: frozenset[str] = frozenset()
    profile: Any = None  # the session's copy of the customer profile (a dict), for the hot path
    authenticated_at_ms: int = 0  # when the subject last proved who they are in this session
    token_hash: str = ""  # of the bearer token that made the request (to rotate it)
    application_id: str | None = None  # a customer session's application (it works only there)
    # A partner API key (``resolvers.api_keys``): its name; ``subject_id`` is then the key's id, and
    # ``kind`` is "admin" with the key's effective permissions. None for a session.
    api_key_name: str | None = None


@dataclass
class RequestMeta:
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    locale: str | None = None


@dataclass
class Context:
    rules: Rules
    clock: Clock
    mailer: Mailer
    render_pool: RenderPool
    hasher: PasswordHasher
    application: ApplicationDocument
    policy: PolicyDocument
    request: RequestMeta
    # Runs a coroutine after the response; raises RateLimited at once (and closes it) when the bounded
    # queue of deferred work is full, so call it before doing anything that depends on the account.
    defer: Callable[[Coroutine[Any, Any, Any]], None]
    jobs: Jobs | None = None
    principal: Principal | None = None
    loaders: Any = None
    config_cache: ConfigCache | None = None  # admin writes to applications and policies drop it at once
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock.now()

    def now_ms(self) -> int:
        return epoch_ms(self.clock.now())


def monotonic() -> float:
    return time.monotonic()
