"""What follows a credential change and must not be lost: ending the sessions that came before it, and
telling the customer ("your password was changed").

The follow-up is written as a durable job *before* the change, and its id is stored with the change
(``credential_change_id``) in the same write. So a database error before the change fails the
request with nothing changed; once the change is made, its follow-up cannot be lost (any instance's
sweep runs it if this process dies, or if the request's own attempt to end the sessions failed);
and it acts only for a change that happened: a request that lost a race, or failed, leaves a job that
finds another change id and does nothing.
"""

from __future__ import annotations

from resolvers.context import Context
from resolvers.mail_views import customer_view
from stores import customers, sessions

CREDENTIAL_NOTICE = "credential_notice"


async def prepare_credential_notice(ctx: Context, customer_id: str, mail_kind: str | None,
                                    application_id: str | None = None, keep_session_id: str | None = None) -> str:
    """Write the follow-up of a credential change about to be made; its id is the change id to store with it.

    The job ends every session of the customer issued under an older credential version (except
    ``keep_session_id``, the session that made the change, if it is to stay) and, with ``mail_kind``,
    mails that notice.
    """
    return await ctx.jobs.enqueue(CREDENTIAL_NOTICE, {"customer_id": customer_id, "mail": mail_kind,
                                                      "keep_session_id": keep_session_id},
                                  application_id=application_id)


async def send_credential_notice(ctx: Context, payload: dict, job_id: str) -> None:
    """The job: if the customer's last credential change is the one it was written for, end the sessions
    older than it and send its notice. Idempotent."""
    customer = await customers.get(payload["customer_id"])
    if customer is None or customer.credential_change_id != job_id:
        return
    await sessions.delete_older_than(customer.id, customer.credential_version, keep=payload.get("keep_session_id"))
    if payload.get("mail"):
        await ctx.mailer.send(payload["mail"], customer.email, {"customer": customer_view(customer)},
                              ctx.application, customer.locale, subject_id=customer.id)
