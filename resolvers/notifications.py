"""Notices of security changes ("your password was changed"), which must not be lost.

The notice is written as a durable job *before* the change, and its id is stored with the change
(``credential_change_id``) in the same write. So a database error before the change fails the
request with nothing changed; once the change is made its notice cannot be lost (any instance's
sweep sends it if this process dies); and a notice goes out only for a change that happened: a
request that lost a race, or failed, leaves a job that finds another change id and sends nothing.
"""

from __future__ import annotations

from resolvers.context import Context
from resolvers.mail_views import customer_view
from stores import customers

CREDENTIAL_NOTICE = "credential_notice"


async def prepare_credential_notice(ctx: Context, customer_id: str, mail_kind: str,
                                    application_id: str | None = None) -> str:
    """Write the notice job for a change about to be made; its id is the change id to store with it."""
    return await ctx.jobs.enqueue(CREDENTIAL_NOTICE, {"customer_id": customer_id, "mail": mail_kind},
                                  application_id=application_id)


async def send_credential_notice(ctx: Context, payload: dict, job_id: str) -> None:
    """The job: mail the notice if the customer's last credential change is the one it was written for."""
    customer = await customers.get(payload["customer_id"])
    if customer is None or customer.credential_change_id != job_id:
        return
    await ctx.mailer.send(payload["mail"], customer.email, {"customer": customer_view(customer)},
                          ctx.application, customer.locale)
