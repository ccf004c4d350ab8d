"""Account recovery: password reset by emailed link, and the forgotten-username reminder.

Requests always get the same answer, and all their work (look-up, rate limits, mail)
runs after the response, so neither the answer nor its timing says whether an
account exists.
"""

from __future__ import annotations

from resolvers import audit, links, mail_requests, notifications, ratelimit
from resolvers.bootstrap import policy_of
from resolvers.context import Context
from resolvers.errors import FeatureDisabled, InvalidToken, PasswordMismatch, Problems
from resolvers.identifiers import validate_email
from resolvers.mail_views import customer_view
from resolvers.passwords import check_password_policy
from resolvers.urls import is_https_url
from stores import config, customers, sessions
from stores.documents import ApplicationDocument, CustomerDocument, CustomerStatus, PolicyDocument, UsernameMode

PASSWORD_RESET = "password_reset"
RESET_MAIL = "password_reset_mail"
REMINDER_MAIL = "username_reminder_mail"
RESET_TTL_MIN_MINUTES = 5
RESET_TTL_MAX_MINUTES = 7 * 24 * 60


def reset_ttl_minutes(configured: int) -> int:
    return min(RESET_TTL_MAX_MINUTES, max(RESET_TTL_MIN_MINUTES, configured))


def _checked_email(email: str) -> str:
    problems = Problems()
    email = validate_email(problems, email)
    problems.raise_if_any()
    return email


async def request_password_reset(ctx: Context, email: str) -> None:
    """Accept a reset request; the link is mailed after the answer (``RESET_MAIL``), if an active
    account has the address. Same answer and work for any address (``resolvers.mail_requests``)."""
    if not ctx.policy.password_reset.enabled:
        raise FeatureDisabled()
    await mail_requests.accept(ctx, RESET_MAIL, "reset", _checked_email(email), ctx.rules.reset_ip)


async def reset_mail_job(ctx: Context, payload: dict, job_id: str) -> None:
    """The job behind an accepted reset request (``RESET_MAIL``)."""
    customer = await mail_requests.recipient(ctx, payload, "reset", ctx.rules.reset_email, {CustomerStatus.ACTIVE})
    if customer is None:
        return
    await audit.record(ctx, "customer.password_reset_requested", subject_id=customer.id, actor_kind="public")
    await send_reset_mail(ctx, customer)


async def send_reset_mail(ctx: Context, customer: CustomerDocument) -> None:
    """Issue a reset link for the customer (revoking the previous one) and store the mail in the outbox.
    No checks: callers decide who gets one (an active account, within the limits)."""
    ttl = reset_ttl_minutes(ctx.policy.password_reset.link_lifetime_minutes)
    url = await links.issue(ctx, PASSWORD_RESET, customer.id, ttl, "/reset-password",
                            credential_version=customer.credential_version,
                            base_url=_own_reset_page(ctx.application))
    await ctx.mailer.send("password_reset", customer.email, {
        "customer": customer_view(customer), "action_url": url, "expires_in_minutes": ttl,
    }, ctx.application, customer.locale, subject_id=customer.id)


def _own_reset_page(application: ApplicationDocument) -> str | None:
    """The application's own reset page, if it has a valid one; a value saved before pages had to be
    https (the link carries a live token) is ignored, and the hosted page is used instead."""
    url = application.password_reset_url
    return url if url and is_https_url(url) else None


async def check_reset_token(ctx: Context, token: str) -> None:
    """InvalidToken unless the reset link is usable. Uses nothing up."""
    await links.peek(ctx, PASSWORD_RESET, token)


async def _issuing(ctx: Context, application_id: str | None) -> tuple[ApplicationDocument, PolicyDocument]:
    """The application that issued a link, and its policy (the request's own when they are the same)."""
    if application_id and application_id != ctx.application.id:
        application = await config.get_application(application_id)
        if application is not None:
            return application, await policy_of(application)
    return ctx.application, ctx.policy


async def reset_password(ctx: Context, token: str, new_password: str, confirm_password: str) -> None:
    """Set a new password from a reset link. Nothing changes unless the token is valid and wins the race.

    The new hash and a bumped credential version are written together, only if the credentials are
    still those the link was issued under; then every session ends (a sign-in racing this one cannot
    keep its session: see ``resolvers.sessions``).
    """
    await ratelimit.hit_ip(ctx, "reset-submit-ip", ctx.rules.reset_ip)
    await ratelimit.hit(ctx, "reset-token", links.token_key(token), ctx.rules.reset_token)
    found = await links.peek(ctx, PASSWORD_RESET, token)
    customer = await customers.get(found.subject_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE:
        raise InvalidToken()
    links.check_version(found, customer.credential_version)
    application, policy = await _issuing(ctx, found.application_id)
    if not policy.password_reset.enabled:
        raise FeatureDisabled()
    if new_password != confirm_password:
        raise PasswordMismatch(field="confirmPassword")
    check_password_policy(new_password or "", policy.password_policy,
                          context=(customer.email, customer.email.split("@")[0], customer.username), field="newPassword")
    password_hash = await ctx.hasher.hash(new_password)
    # Written before the change (a database error fails the request with nothing changed); sent for this change only.
    change_id = await notifications.prepare_credential_notice(ctx, customer.id, "password_changed", application.id)
    used = await links.consume(ctx, PASSWORD_RESET, token)  # of concurrent uses, exactly one gets here
    if used.subject_id != customer.id:
        raise InvalidToken()
    if not await customers.set_password(customer.id, password_hash, used.credential_version, ctx.now_ms(),
                                        change_id):
        raise InvalidToken()  # the credentials changed since the link was issued
    ctx.jobs.start(change_id)
    ended = await sessions.delete_for_subject(customer.id)
    # The real owner is never locked out by throttling: a reset clears the account's sign-in budget for
    # clients without a device token (those with one have their own, see resolvers.sessions).
    await ratelimit.reset(ctx, "customer-login-id", f"account:{customer.id}", ctx.rules.login_identifier)
    await audit.record(ctx, "customer.password_reset", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id, sessions_ended=ended)


async def request_username_reminder(ctx: Context, email: str) -> None:
    """Accept a reminder request; the username is mailed after the answer (``REMINDER_MAIL``)."""
    if ctx.policy.username_mode != UsernameMode.USERNAME or not ctx.policy.username_reminder.enabled:
        raise FeatureDisabled()
    await mail_requests.accept(ctx, REMINDER_MAIL, "reminder", _checked_email(email), ctx.rules.reset_ip)


async def reminder_mail_job(ctx: Context, payload: dict, job_id: str) -> None:
    """The job behind an accepted reminder request. Active accounts only: a pending account's username
    was typed by whoever registered the address, and such text never goes to an inbox that has not been
    verified (resolvers.mail_views)."""
    customer = await mail_requests.recipient(ctx, payload, "reminder", ctx.rules.reset_email,
                                             {CustomerStatus.ACTIVE})
    if customer is None:
        return
    await audit.record(ctx, "customer.username_reminder_sent", subject_id=customer.id, actor_kind="public")
    await ctx.mailer.send("username_reminder", customer.email, {"customer": customer_view(customer)},
                          ctx.application, customer.locale, subject_id=customer.id)
