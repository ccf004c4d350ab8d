"""Anonymous "mail me" requests (password reset, username reminder, activation re-send): one answer
path for all of them, the same work whoever the address belongs to.

Before the answer: the instance's deferred-work capacity (``RateLimitedError`` when it is full,
whatever the address), the per-IP budget (over it the request is silently dropped), and a durable
job naming the address. After the answer, the job (:func:`recipient`) counts the per-address budget,
looks the account up and mails it, so neither the answer nor its timing says whether the address has
an account, and an accepted request's mail survives a crash of this process.
"""

from __future__ import annotations

from resolvers import ratelimit
from resolvers.context import Context, Limit
from resolvers.errors import RateLimited
from resolvers.identifiers import normalize_identifier
from stores import customers
from stores.documents import CustomerDocument, CustomerStatus


async def accept(ctx: Context, job_kind: str, bucket: str, email: str, per_ip: Limit,
                 extra: dict | None = None) -> None:
    """Answer a mail request for ``email`` (already validated): write its job unless over a limit.
    ``extra``: more of the job's payload, checked already and the same whoever the address belongs to."""
    ctx.jobs.check_capacity()
    try:
        await ratelimit.hit_ip(ctx, f"{bucket}-ip", per_ip)
    except RateLimited:
        return  # silent: the answer is the same
    job_id = await ctx.jobs.enqueue(job_kind, {**(extra or {}), "email_norm": normalize_identifier(email)})
    ctx.jobs.start(job_id)


async def recipient(ctx: Context, payload: dict, bucket: str, per_email: Limit,
                    statuses: set[CustomerStatus]) -> CustomerDocument | None:
    """In the job: the account to mail, or None when over the address's budget, unknown, or not in
    one of ``statuses``."""
    email_norm = payload["email_norm"]
    try:
        await ratelimit.hit(ctx, f"{bucket}-email", email_norm, per_email)
    except RateLimited:
        return None
    customer = await customers.get_by_normalized_email(ctx.application.identity_store_id, email_norm)
    return customer if customer is not None and customer.status in statuses else None
