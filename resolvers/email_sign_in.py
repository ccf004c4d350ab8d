"""Emailed sign-in links and codes: a way in without a password, where the policy allows it
(``emailSignIn.enabled``).

- **Asking** (:func:`request`) answers the same for every address, with the same work before the answer
  (``resolvers.mail_requests``: the instance's capacity, the per-IP budget, a durable job); the job
  counts the per-address budget and mails an active account one message holding a 6-digit code and,
  when the request named one of the application's redirect URLs, a link. Both are valid 10 minutes and
  die together at the first use of either (they are one ``one_time_tokens`` document: the link's SHA-256,
  the code's HMAC under the secret key, bound to the credential version); a new request replaces them.
- **The link** lands on a confirm page (``gateway/pages.py``): opening it changes nothing, so a mail
  scanner signs nobody in. Pressing the button uses the link up and sends the browser to the redirect
  URL with a one-time grant (``?token=``, 2 minutes, single use), which the application's page exchanges
  for the session (:func:`complete`). The session lands in the browser that opened the mail, never on a
  device someone else started the request on.
- **The code** is for the device that asked when the mail is read on another one: typed there with the
  address (:func:`verify_code`), it is counted like a password (the account's sign-in budgets, before it
  is checked) and against its own link: the fifth wrong code ends it.
- **From the hosted pages** (``gateway/pages/sign_in_methods.py``) a request names ``hosted_next`` (a path
  on the gateway) instead of a redirect URL: the mail then holds the link too, and pressing the confirm
  page's button signs *that browser* in at once (:func:`confirm_link` completes the sign-in and leaves the
  outcome in ``ctx.extras[SIGNED_IN]`` for the page to set the session cookie, then go on to the path in
  ``ctx.extras[HOSTED_NEXT]``): no grant travels in a URL, and nothing is redirected to an application.
- Either way the sign-in ends in ``resolvers.sessions.complete_sign_in(method="email_link")``: a second
  factor is still asked for where the policy and the customer's factors call for one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from resolvers import audit, links, mail_requests, ratelimit, sessions
from resolvers.context import Context
from resolvers.errors import DomainError, FeatureDisabled, InvalidCredentials, InvalidToken, Problems
from resolvers.identifiers import normalize_identifier, validate_email
from resolvers.links import LinkState
from resolvers.mail_views import customer_view
from resolvers.urls import MAX_URL, within
from stores import customers
from stores import email_sign_in as store
from stores.documents import CustomerDocument, CustomerStatus

PURPOSE = "email_sign_in"
GRANT = "email_sign_in_grant"
MAIL_JOB = "email_sign_in_mail"
MAIL_KIND = "email_sign_in"
LINK_PATH = "/sign-in/email"
LIFETIME_MINUTES = 10
GRANT_MINUTES = 2
CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5
MAX_CODE_INPUT = 64
METHOD = "email_link"
REDIRECT_TO = "redirect_to"  # ctx.extras: where a confirm page sends the browser (gateway/pages.py)
SIGNED_IN = "email_sign_in_signed_in"  # ctx.extras: a hosted-page link's outcome (SignedIn or MfaRequired)
HOSTED_NEXT = "email_sign_in_hosted_next"  # ctx.extras: the gateway path a hosted-page link goes on to
MAX_HOSTED_NEXT = 512
WRONG_CODE = "The email address or the code is not right."
CODE_INFO = b"identity-gateway email sign-in code v1"


def _enabled(ctx: Context) -> None:
    if not ctx.policy.email_sign_in.enabled:
        raise FeatureDisabled("Emailed sign-in is not available for this application.")


def _code_hash(secret_key: bytes, customer_id: str, code: str) -> str:
    """What is kept of a code: an HMAC under the secret key (a 6-digit code read from a copy of the
    database would otherwise be found by trying all million), bound to its customer."""
    key = hmac.new(secret_key, CODE_INFO, hashlib.sha256).digest()
    return hmac.new(key, f"{customer_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _digits(code: object) -> str | None:
    cleaned = "".join(code.split()) if isinstance(code, str) and len(code) <= MAX_CODE_INPUT else ""
    return cleaned if len(cleaned) == CODE_DIGITS and cleaned.isascii() and cleaned.isdigit() else None


def _hosted_path(value: object) -> bool:
    """A path on the gateway (``/…``, never ``//host`` or ``/\\host``): where a hosted-page link goes on to."""
    return isinstance(value, str) and 0 < len(value) <= MAX_HOSTED_NEXT and value.startswith("/") \
        and not value.startswith(("//", "/\\")) and value.isprintable()


async def request(ctx: Context, email: str, redirect_url: str | None = None, *,
                  hosted_next: str | None = None) -> None:
    """Ask for a sign-in mail. Always the same answer; the mail follows after it, to an active account
    only. ``redirect_url`` (one of the application's redirect URLs) is where the mailed link's confirm
    page sends the browser; without one the mail holds only the code. ``hosted_next`` (the hosted pages
    only, never from a client): the mail holds the link, whose confirm page signs the browser in itself
    and goes on to this gateway path. InvalidInput (address, redirect URL); FeatureDisabled; RateLimited
    when this instance's deferred work is full (whatever the address)."""
    _enabled(ctx)
    problems = Problems()
    email = validate_email(problems, email)
    if redirect_url is not None and (not isinstance(redirect_url, str) or len(redirect_url) > MAX_URL
                                     or not within(ctx.application.redirect_urls, redirect_url)):
        problems.add("redirectUrl", "NOT_ALLOWED", "Use one of the application's redirect URLs.")
    problems.raise_if_any()
    if hosted_next is not None and not _hosted_path(hosted_next):
        hosted_next = "/"  # the page checks it too; never anything but a path here
    await mail_requests.accept(ctx, MAIL_JOB, "email-sign-in", email, ctx.rules.email_sign_in_ip,
                               extra={"redirect_url": redirect_url,
                                      **({"hosted_next": hosted_next} if hosted_next is not None else {})})


async def send_mail(ctx: Context, payload: dict, job_id: str) -> None:
    """The job behind an accepted request: a new link and code for an active account with the address."""
    customer = await mail_requests.recipient(ctx, payload, "email-sign-in", ctx.rules.email_sign_in_email,
                                             {CustomerStatus.ACTIVE})
    if customer is None or not ctx.policy.email_sign_in.enabled:
        return
    redirect_url = payload.get("redirect_url")
    if redirect_url and not within(ctx.application.redirect_urls, redirect_url):
        redirect_url = None  # the allow-list changed since the request
    hosted_next = payload.get("hosted_next") if _hosted_path(payload.get("hosted_next")) else None
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    url = await links.issue(ctx, PURPOSE, customer.id, LIFETIME_MINUTES, LINK_PATH,
                            credential_version=customer.credential_version,
                            fields={"code_hash": _code_hash(ctx.rules.secret_key, customer.id, code),
                                    "redirect_url": redirect_url, "hosted_next": hosted_next})
    await ctx.mailer.send(MAIL_KIND, customer.email, {
        "customer": customer_view(customer), "code": code,
        "action_url": url if redirect_url or hosted_next else None,
        "expires_in_minutes": LIFETIME_MINUTES,
    }, ctx.application, customer.locale, subject_id=customer.id)


async def verify_code(ctx: Context, email: str, code: str, device_token: str | None = None
                      ) -> sessions.SignedIn | sessions.MfaRequired:
    """Sign in with the mailed code, on the device that asked. InvalidCredentials for a wrong, used or
    expired code and for an address without one, alike (the fifth wrong code ends it); InvalidInput;
    RateLimited (the account's sign-in budgets); FeatureDisabled; AccountNotActivated."""
    _enabled(ctx)
    problems = Problems()
    email = validate_email(problems, email)
    digits = _digits(code)
    if digits is None:
        problems.add("code", "INVALID", f"Enter the {CODE_DIGITS}-digit code from the email.")
    problems.raise_if_any()
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    email_norm = normalize_identifier(email)
    customer = await customers.get_by_normalized_email(ctx.application.identity_store_id, email_norm)
    budgets = sessions.sign_in_budgets(ctx, customer, device_token, identifier_norm=email_norm)
    await sessions.count_attempt(ctx, budgets)
    # The same query for an address without an account (no link has this id): the same work either way.
    subject = customer.id if customer is not None else f"unknown:{email_norm}"
    attempt = await store.count_code_attempt(PURPOSE, subject, ctx.now(), MAX_CODE_ATTEMPTS)
    right = attempt is not None and customer is not None and attempt.application_id == ctx.application.id \
        and attempt.credential_version == customer.credential_version \
        and hmac.compare_digest(attempt.code_hash, _code_hash(ctx.rules.secret_key, customer.id, digits))
    if not right or not await store.use_code(PURPOSE, customer.id, attempt.code_hash, ctx.now(), ctx.now_ms()):
        if attempt is not None and attempt.code_attempts >= MAX_CODE_ATTEMPTS:
            await store.end(PURPOSE, subject, ctx.now_ms())
        await audit.record(ctx, "customer.login_failed", subject_id=customer.id if customer else None,
                           actor_kind="public", method="email_code")
        raise InvalidCredentials(WRONG_CODE, field="code")
    return await sessions.complete_sign_in(ctx, customer, method=METHOD, budgets=budgets)


async def complete(ctx: Context, grant: str, device_token: str | None = None) -> sessions.SignedIn | sessions.MfaRequired:
    """Exchange the one-time grant the confirmed link sent the browser back with for the session.
    InvalidToken for an unknown, used, expired or foreign grant, or when the account's credentials
    changed since; FeatureDisabled; AccountNotActivated."""
    _enabled(ctx)
    await ratelimit.hit_ip(ctx, "customer-login-ip", ctx.rules.login_ip)
    found = await links.consume(ctx, GRANT, grant)
    customer = await customers.get(found.subject_id)
    if customer is None or found.application_id != ctx.application.id:
        raise InvalidToken()
    links.check_version(found, customer.credential_version)
    # A 192-bit grant needs no guessing budget; a success still clears the account's.
    return await sessions.complete_sign_in(ctx, customer, method=METHOD,
                                           budgets=sessions.sign_in_budgets(ctx, customer, device_token))


# -- the link's confirm page --------------------------------------------------------------------------

async def _linked_customer(ctx: Context, found) -> CustomerDocument | None:
    """The active account a link signs in, while its credentials are the link's and its destination is
    still one of the application's redirect URLs (or the hosted pages); else None."""
    customer = await customers.get(found.subject_id)
    destination = _hosted_path(found.hosted_next) or (
        bool(found.redirect_url) and within(ctx.application.redirect_urls, found.redirect_url))
    usable = customer is not None and customer.status == CustomerStatus.ACTIVE \
        and customer.credential_version == found.credential_version and destination
    return customer if usable else None


async def peek_link(ctx: Context, token: str) -> LinkState:
    """What confirming this link would do, reading only: USABLE, else INVALID (a used sign-in link is
    spent: the page then offers nothing but asking again)."""
    try:
        found = await links.peek(ctx, PURPOSE, token)
    except InvalidToken:
        return LinkState.INVALID
    return LinkState.USABLE if await _linked_customer(ctx, found) else LinkState.INVALID


async def confirm_link(ctx: Context, token: str) -> LinkState:
    """Use the link up and send the browser on with a grant (``ctx.extras[REDIRECT_TO]``): CONFIRMED;
    INVALID when the link is not usable. A link asked for on the hosted pages signs in here instead
    (``complete_sign_in``): its outcome, ``SignedIn`` or ``MfaRequired``, is left in
    ``ctx.extras[SIGNED_IN]`` and the path to go on to in ``ctx.extras[HOSTED_NEXT]``."""
    try:
        found = await links.consume(ctx, PURPOSE, token)
    except InvalidToken:
        return LinkState.INVALID
    customer = await _linked_customer(ctx, found)
    if customer is None or not ctx.policy.email_sign_in.enabled:
        return LinkState.INVALID
    if _hosted_path(found.hosted_next):
        try:
            outcome = await sessions.complete_sign_in(ctx, customer, method=METHOD,
                                                      budgets=sessions.sign_in_budgets(ctx, customer, None))
        except DomainError:  # the account changed meanwhile, or its second-factor mail is over its limit
            return LinkState.INVALID
        await audit.record(ctx, "customer.email_sign_in_link_confirmed", subject_id=customer.id,
                           actor_kind="public", hosted=True)
        ctx.extras[SIGNED_IN], ctx.extras[HOSTED_NEXT] = outcome, found.hosted_next
        return LinkState.CONFIRMED
    ctx.extras[REDIRECT_TO] = await links.issue(ctx, GRANT, customer.id, GRANT_MINUTES, LINK_PATH,
                                                  credential_version=customer.credential_version,
                                                  base_url=found.redirect_url)
    await audit.record(ctx, "customer.email_sign_in_link_confirmed", subject_id=customer.id, actor_kind="public")
    return LinkState.CONFIRMED
