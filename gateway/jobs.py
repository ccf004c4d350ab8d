"""Durable jobs: work a request must get done after its answer even if this process dies first.

The request writes the job (``stores.jobs``) before it answers, then asks for it to run at once in
this process (:meth:`JobRunner.start`). If that cannot happen (the process died, or its queue of
deferred work is full), any instance's sweep runs it once ``run_after_ms`` (the request time plus a
grace period) has passed. A job is claimed under a lease, so it runs in one place at a time, and is
deleted when its handler returns. A handler that raises (``RetryLater`` or anything else) runs
again later with exponential backoff, at most ``MAX_ATTEMPTS`` times.

Handlers are resolver functions ``async (ctx, payload, job_id) -> None``; the context is built for
the application and the request metadata (IP, user agent, request id, locale) the job was written with.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from resolvers.context import Clock, Context, RequestMeta, epoch_ms
from resolvers.errors import RateLimited, RetryLater
from resolvers.security import new_id
from stores import jobs
from stores.documents import JobDocument

logger = logging.getLogger("gateway.jobs")

LEASE_MS = 20_000  # a handler takes a few database operations; past this, another instance may run it again
SWEEP_GRACE_MS = 10_000  # a job its request is running is not swept before this
FIRST_RETRY_MS = 5_000
MAX_BACKOFF_MS = 3_600_000
MAX_ATTEMPTS = 10
DEFERRED_RETRY_AFTER_SECONDS = 5

Handler = Callable[[Context, dict[str, Any], str], Awaitable[None]]
ContextFor = Callable[[str | None, RequestMeta], Awaitable[Context]]


class JobRunner:
    def __init__(self, *, clock: Clock, spawn: Callable, context_for: ContextFor,
                 handlers: dict[str, Handler], has_room: Callable[[], bool] = lambda: True) -> None:
        self._clock = clock
        self._spawn = spawn
        self.has_room = has_room
        self._context_for = context_for
        self._handlers = handlers

    async def enqueue(self, kind: str, payload: dict[str, Any], *, application_id: str | None,
                      request: RequestMeta, run_after_ms: int | None = None) -> str:
        """Write a job; raises on a database error (the request must then fail, not answer).

        ``run_after_ms`` (epoch ms) schedules it for later: the sweep runs it then, not before (do not
        ``start`` it). By default it is due after the sweep's grace period.
        """
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        now = self._clock.now()
        job = JobDocument(id=new_id(), kind=kind, payload=payload, application_id=application_id,
                          request=dataclasses.asdict(request), created_at=now,
                          run_after_ms=epoch_ms(now) + SWEEP_GRACE_MS if run_after_ms is None else run_after_ms)
        await jobs.insert(job)
        return job.id

    def start(self, job_id: str) -> None:
        """Run the job after the caller moves on; if this process cannot take more work, the sweep will."""
        self._spawn(self.run(job_id, due_only=False))

    async def run(self, job_id: str, *, due_only: bool = True) -> bool:
        """Run one job if nobody holds it; True when it completed now."""
        now_ms = epoch_ms(self._clock.now())
        lease = new_id()
        job = await jobs.claim(job_id, now_ms, LEASE_MS, lease, due_only=due_only)
        if job is None:
            return False
        try:
            handler = self._handlers[job.kind]
            ctx = await self._context_for(job.application_id, RequestMeta(**job.request))
            await handler(ctx, job.payload, job.id)
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then given up on
            await self._retry_later(job, lease, exc)
            return False
        await jobs.finish(job.id, lease)
        return True

    async def _retry_later(self, job: JobDocument, lease: str, exc: Exception) -> None:
        attempts = job.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            logger.error("job %s (%s) given up after %s attempts: %s", job.id, job.kind, attempts, type(exc).__name__)
            await jobs.finish(job.id, lease)
            return
        if not isinstance(exc, RetryLater):
            logger.warning("job %s (%s) failed (attempt %s): %s", job.id, job.kind, attempts, type(exc).__name__,
                           exc_info=exc)
        delay = min(MAX_BACKOFF_MS, FIRST_RETRY_MS * 2 ** (attempts - 1))
        await jobs.postpone(job.id, lease, epoch_ms(self._clock.now()) + delay, attempts, repr(exc))

    async def run_due(self) -> int:
        """Run every job whose time has come; returns how many completed."""
        done = 0
        for job_id in await jobs.due_ids(epoch_ms(self._clock.now())):
            done += await self.run(job_id)
        return done


@dataclasses.dataclass(frozen=True)
class RequestJobs:
    """The jobs of one request: written for its application and with its metadata (``Context.jobs``)."""

    runner: JobRunner
    application_id: str | None
    request: RequestMeta

    async def enqueue(self, kind: str, payload: dict[str, Any], application_id: str | None = None, *,
                      run_after_ms: int | None = None) -> str:
        return await self.runner.enqueue(kind, payload, application_id=application_id or self.application_id,
                                         request=self.request, run_after_ms=run_after_ms)

    def start(self, job_id: str) -> None:
        self.runner.start(job_id)

    def check_capacity(self) -> None:
        if not self.runner.has_room():
            logger.warning("deferred work refused: this instance's queue is full")
            raise RateLimited(DEFERRED_RETRY_AFTER_SECONDS)
