"""The long-lived parts of one gateway process, and the per-request context built from them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pymongo import AsyncMongoClient

from gateway.config import Settings, WebAuthnRelyingParty
from gateway.embedded import EmbeddedDatabase
from gateway.jobs import JobRunner, RequestJobs
from gateway.loaders import Loaders
from gateway.mail import OutboxMailer, SmtpTarget
from gateway.render_pool import ThreadRenderPool
from resolvers import account, email_sign_in, mfa, notifications, passkeys, profile, recovery, registration
from resolvers.bootstrap import DEFAULT_APPLICATION_ID, ensure_defaults, policy_of
from resolvers.context import (
    Clock,
    Context,
    Limit,
    Principal,
    RelyingParty,
    RequestMeta,
    Rules,
    SystemClock,
    epoch_ms,
)
from resolvers.errors import RateLimited
from resolvers.passwords import PasswordHasher
from resolvers.template_sandbox import RenderBudget
from stores import config as config_store
from stores import database, ratelimits
from stores.database import connect, disconnect
from stores.documents import ApplicationDocument, PolicyDocument

logger = logging.getLogger("gateway")

# How long an instance keeps an application and its policy. Below 5 s so that a change made on one
# instance is seen by every other within 5 s, the time of the request that sees it included.
APPLICATION_CACHE_SECONDS = 4.0
JOB_HANDLERS = {registration.REGISTRATION_MAIL: registration.send_registration_mail,
                registration.RESEND_MAIL: registration.resend_activation_mail,
                recovery.RESET_MAIL: recovery.reset_mail_job,
                recovery.REMINDER_MAIL: recovery.reminder_mail_job,
                notifications.CREDENTIAL_NOTICE: notifications.send_credential_notice,
                mfa.MFA_NOTICE: mfa.send_notice,
                profile.EMAIL_CHANGE_MAIL: profile.send_email_change_link,
                profile.EMAIL_CHANGED_NOTICE: profile.send_email_changed_notice,
                account.ERASURE_JOB: account.run_erasure,
                account.ERASURE_FOLLOW_UP_JOB: account.run_erasure_follow_up,
                account.DELETION_NOTICE_JOB: account.send_deletion_notice,
                account.IDENTITY_NOTICE_JOB: account.send_identity_notice,
                passkeys.PASSKEY_NOTICE: passkeys.send_notice,
                email_sign_in.MAIL_JOB: email_sign_in.send_mail}
DEFERRED_RETRY_AFTER_SECONDS = 5
HOUSEKEEPING_INTERVAL_SECONDS = 600.0
SWEEP_INTERVAL_SECONDS = 5.0  # how often every instance retries due mail and runs due jobs


async def every(seconds: float, work: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run ``work`` every ``seconds`` until cancelled; a failed pass (the database away) is logged, not fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            logger.exception("%s failed", what)


def build_rules(settings: Settings) -> Rules:
    scale = settings.rate_limit_scale

    def limit(attempts: int, window: int) -> Limit:
        return Limit(attempts=max(1, int(attempts * scale)), window_seconds=window)

    return Rules(
        public_url=settings.public_url,
        secret_key=settings.secret_key.get_secret_value().encode(),
        session_absolute_ttl_seconds=settings.session_absolute_ttl_seconds,
        session_idle_ttl_seconds=settings.session_idle_ttl_seconds,
        session_touch_interval_seconds=settings.session_touch_interval_seconds,
        admin_session_absolute_ttl_seconds=settings.admin_session_absolute_ttl_seconds,
        admin_session_idle_ttl_seconds=settings.admin_session_idle_ttl_seconds,
        login_identifier=limit(settings.login_identifier_failures, settings.login_identifier_window_seconds),
        login_identifier_ip=limit(settings.login_identifier_ip_failures, settings.login_identifier_ip_window_seconds),
        login_device=limit(settings.login_device_failures, settings.login_device_window_seconds),
        login_ip=limit(settings.login_ip_attempts, settings.login_ip_window_seconds),
        register_ip=limit(settings.register_ip_attempts, settings.register_ip_window_seconds),
        registration_notice_email=limit(settings.registration_notice_email_attempts,
                                        settings.registration_notice_window_seconds),
        consent_changes=limit(settings.consent_change_attempts, settings.consent_change_window_seconds),
        activation_resend_email=limit(settings.activation_resend_email_attempts,
                                      settings.activation_resend_window_seconds),
        activation_resend_ip=limit(settings.activation_resend_ip_attempts, settings.activation_resend_window_seconds),
        reset_email=limit(settings.password_reset_email_attempts, settings.password_reset_window_seconds),
        reset_ip=limit(settings.password_reset_ip_attempts, settings.password_reset_window_seconds),
        reset_token=limit(settings.password_reset_token_attempts, settings.password_reset_window_seconds),
        mfa_email_code=limit(settings.mfa_email_code_attempts, settings.mfa_email_code_window_seconds),
        email_change=limit(settings.email_change_attempts, settings.email_change_window_seconds),
        email_change_address=limit(settings.email_change_address_attempts, settings.email_change_window_seconds),
        webauthn_default=relying_party(settings.webauthn_default()),
        webauthn_applications=tuple((client_id, relying_party(party))
                                    for client_id, party in settings.webauthn_applications.items()),
        email_sign_in_ip=limit(settings.email_sign_in_ip_attempts, settings.email_sign_in_window_seconds),
        email_sign_in_email=limit(settings.email_sign_in_email_attempts, settings.email_sign_in_window_seconds),
        max_sessions_per_subject=settings.max_sessions_per_subject,
    )


def relying_party(party: WebAuthnRelyingParty | None) -> RelyingParty | None:
    """A checked relying party setting, its origins as browsers write them (lower case, no slash)."""
    if party is None:
        return None
    return RelyingParty(rp_id=party.rp_id, origins=tuple(o.strip().rstrip("/").lower() for o in party.origins))


class UnknownApplication(Exception):
    pass


class ApplicationCache:
    """Applications and their policies by client id, each kept ``ttl`` seconds (``resolvers.context.ConfigCache``).

    :meth:`forget` drops everything and starts a new generation; a look-up that began before it (and may
    have read the documents as they were before the write) does not store what it read. So an admin
    change is seen by the very next request on the instance that made it, and by every other instance
    once its entry expires.
    """

    def __init__(self, ttl: float = APPLICATION_CACHE_SECONDS, max_entries: int = 1000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[str, tuple[float, ApplicationDocument, PolicyDocument]] = {}

    def get(self, key: str) -> tuple[ApplicationDocument, PolicyDocument] | None:
        cached = self._entries.get(key)
        if cached is None or time.monotonic() - cached[0] >= self.ttl:
            return None
        return cached[1], cached[2]

    def put(self, key: str, generation: int, application: ApplicationDocument, policy: PolicyDocument) -> None:
        """Keep what a look-up read, unless :meth:`forget` ran since it began (``generation`` is then old)."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), application, policy)

    def forget(self) -> None:
        self.generation += 1
        self._entries.clear()


class Runtime:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.rules = build_rules(settings)
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism, concurrency=settings.hash_concurrency,
            queue_limit=settings.hash_queue_limit,
        )
        self.render_pool = ThreadRenderPool(
            budget=RenderBudget(timeout_ms=settings.template_render_timeout_ms,
                                max_output_bytes=settings.template_max_output_bytes),
            threads=settings.template_render_threads,
        )
        smtp = SmtpTarget.parse(settings.smtp_url.get_secret_value()) if settings.smtp_url else None
        self.mailer = OutboxMailer(clock=self.clock, sender=settings.mail_from, smtp=smtp, spawn=self.spawn,
                                   secret_key=self.rules.secret_key, render_pool=self.render_pool)
        self.jobs = JobRunner(clock=self.clock, spawn=self.spawn, context_for=self.context_for_application,
                              handlers=JOB_HANDLERS, has_room=self.has_room)
        self.embedded: EmbeddedDatabase | None = None
        self.client: AsyncMongoClient | None = None
        self.default_application: ApplicationDocument | None = None
        self.config_cache = ApplicationCache()
        self._tasks: set[asyncio.Task] = set()
        self._background: list[asyncio.Task] = []

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.settings.mongodb_uri is not None:
            uri = self.settings.mongodb_uri.get_secret_value()
        else:
            self.embedded = EmbeddedDatabase(self.settings.data_dir)
            uri = await asyncio.to_thread(self.embedded.acquire)
        self._uri = uri
        self.client = await connect(uri, self.settings.database_name, timeout_ms=self.settings.mongodb_timeout_ms)
        self.default_application = await ensure_defaults(self.clock.now())
        self._background = [
            asyncio.create_task(every(SWEEP_INTERVAL_SECONDS, self.mailer.retry_due, "outbox retry pass")),
            asyncio.create_task(every(SWEEP_INTERVAL_SECONDS, self.jobs.run_due, "job sweep")),
            asyncio.create_task(every(HOUSEKEEPING_INTERVAL_SECONDS, self.housekeeping, "housekeeping pass")),
        ]

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        self._background = []
        await self.drain()
        self.hasher.close()
        self.render_pool.close()
        if self.client is not None:
            await disconnect(self._uri, self.settings.database_name)
            self.client = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.release)
            self.embedded = None

    # -- background work -------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task | None:
        """Run work after the response; errors are logged, never raised to a client.

        At most ``GATEWAY_DEFERRED_WORK_LIMIT`` pieces of work wait at once. Past that the work is not
        started (None): callers that can wait for a retry pass (mail delivery) rely on it; requests
        use :meth:`defer`, which refuses instead.
        """
        if not self.has_room():
            coro.close()
            return None
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def has_room(self) -> bool:
        """Whether one more piece of deferred work may start now (``GATEWAY_DEFERRED_WORK_LIMIT``)."""
        return len(self._tasks) < self.settings.deferred_work_limit

    def defer(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a request's work after its response, or raise RateLimited (before anything ran) when the
        bounded queue is full: the answer is the same whoever the request was about."""
        if self.spawn(coro) is None:
            logger.warning("deferred work refused: %s pieces already waiting", len(self._tasks))
            raise RateLimited(DEFERRED_RETRY_AFTER_SECONDS)

    async def housekeeping(self) -> None:
        """Delete what has expired and nothing reads any more: rate-limit counters, and what the TTL
        indexes would delete (sessions, links, challenges, social flows; on nx-27017 the indexes are
        dropped, see ``stores.database.delete_expired``). Idempotent."""
        deleted = await ratelimits.delete_expired(epoch_ms(self.clock.now()))
        if deleted:
            logger.info("housekeeping: %s expired rate-limit counters deleted", deleted)
        for collection, count in (await database.delete_expired(self.clock.now())).items():
            logger.info("housekeeping: %s expired documents deleted from %s", count, collection)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for deferred work, including the work it starts in turn (used by tests and at shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(list(self._tasks), timeout=left)

    # -- per request -----------------------------------------------------------------------------
    async def application(self, client_id: str | None) -> tuple[ApplicationDocument, PolicyDocument]:
        key = client_id or ""
        cached = self.config_cache.get(key)
        if cached is not None:
            return cached
        generation = self.config_cache.generation
        if client_id:
            application = await config_store.get_application_by_client_id(client_id)
            if application is None:
                raise UnknownApplication(client_id)
        else:
            application = await config_store.get_application(self.default_application.id)
        policy = await policy_of(application)  # the default one, with a warning, if its own is gone
        self.config_cache.put(key, generation, application, policy)
        return application, policy

    async def application_by_id(self, application_id: str) -> ApplicationDocument | None:
        return await config_store.get_application(application_id)

    def forget_applications(self) -> None:
        self.config_cache.forget()

    async def context(self, *, client_id: str | None, principal: Principal | None,
                      request: RequestMeta) -> Context:
        """The context of one request for the application ``client_id`` names (the default one if None).

        A customer's session works only for the application it was created under: used with another
        application it is no principal at all (that application's policy did not decide its sign-in).
        """
        application, policy = await self.application(client_id)
        if principal is not None and principal.kind == "customer" \
                and (principal.application_id or DEFAULT_APPLICATION_ID) != application.id:
            principal = None
        return Context(
            rules=self.rules, clock=self.clock, mailer=self.mailer, render_pool=self.render_pool, hasher=self.hasher,
            application=application, policy=policy, request=request, defer=self.defer,
            jobs=RequestJobs(self.jobs, application.id, request), principal=principal, loaders=Loaders(self.clock),
            config_cache=self.config_cache,
        )

    async def context_for_application(self, application_id: str | None, request: RequestMeta) -> Context:
        """A context for work done on behalf of an application outside a request (jobs); its default if None."""
        client_id = None
        if application_id:
            application = await self.application_by_id(application_id)
            if application is None:
                raise UnknownApplication(application_id)
            client_id = application.client_id
        return await self.context(client_id=client_id, principal=None, request=request)
