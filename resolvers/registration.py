"""Self-service registration and account activation."""

from __future__ import annotations

from resolvers import audit, links, mail_requests, ratelimit
from resolvers.attributes import validate_name
from resolvers.context import Context
from resolvers.errors import FeatureDisabled, InvalidToken, Problems, RateLimited, RetryLater
from resolvers.identifiers import name_norm, normalize_identifier, validate_email, validate_username
from resolvers.links import LinkState
from resolvers.mail_views import customer_view, sign_in_hint
from resolvers.passwords import check_password_policy
from resolvers.security import is_text, new_id
from stores import customers
from stores.documents import CustomerDocument, CustomerStatus, UsernameMode

ACTIVATION = "activation"
REGISTRATION_MAIL = "registration_mail"
RESEND_MAIL = "activation_resend_mail"
REGISTRATION_SETTLE_MS = 120_000  # how long a registration's job waits for its account to appear


def _username(problems: Problems, mode: str, username: str | None, email: str) -> str:
    if mode == UsernameMode.USERNAME:
        return validate_username(problems, username)
    if username is not None and normalize_identifier(username) != normalize_identifier(email):
        problems.add("username", "NOT_ALLOWED", "This application uses your email address as your username.")
    return email


async def register(ctx: Context, *, email: str, password: str | None, username: str | None = None,
                   given_name: str | None = None, family_name: str | None = None) -> None:
    """Create a pending account; its activation link is emailed after the answer.

    The answer, and the work done before it (the same database operations, the same hash), are the
    same whether or not the email is registered: an existing owner is told by email, after the
    answer, that someone tried to register with their address.

    Under a passwordless policy the account gets no password (InvalidInput ``password`` NOT_ALLOWED when
    one is given, so a form that still asks for one is noticed): once activated, its customer signs in
    by an emailed link or code (``resolvers.email_sign_in``) and then adds a passkey.
    """
    if not ctx.policy.registration.enabled:
        raise FeatureDisabled()
    await ratelimit.hit_ip(ctx, "register-ip", ctx.rules.register_ip)

    problems = Problems()
    email = validate_email(problems, email)
    username = _username(problems, ctx.policy.username_mode, username, email)
    given_name = validate_name(problems, given_name, "givenName")
    family_name = validate_name(problems, family_name, "familyName")
    passwordless = ctx.policy.passwordless
    if passwordless and password:
        problems.add("password", "NOT_ALLOWED", "This application signs in without passwords: leave it out.")
    elif not passwordless and password is None:
        problems.add("password", "REQUIRED", "Choose a password.")
    elif password and not is_text(password):
        problems.add("password", "INVALID", "Remove characters that are not valid text.")
    problems.raise_if_any()
    if not passwordless:
        check_password_policy(password or "", ctx.policy.password_policy,
                              context=(email, email.split("@")[0], username))

    store_id = ctx.application.identity_store_id
    username_norm = normalize_identifier(username)
    # A taken username is refused whatever the email, so the refusal says nothing about emails.
    if ctx.policy.username_mode == UsernameMode.USERNAME and await customers.get_by_identifier(store_id, username_norm):
        _username_taken()

    password_hash = None if passwordless else await ctx.hasher.hash(password)
    customer = CustomerDocument(
        id=new_id(), store_id=store_id, email=email, email_norm=normalize_identifier(email),
        username=username, username_norm=username_norm, given_name=given_name, family_name=family_name,
        given_name_norm=name_norm(given_name), family_name_norm=name_norm(family_name),
        password_hash=password_hash, password_nfkc=password_hash is not None, status=CustomerStatus.PENDING, created_at=ctx.now(),
        locale=ctx.request.locale,
    )
    # The mail job is written first: once the account exists its mail cannot be lost, and a known
    # address costs exactly the same work before the answer as a new one (the job tells them apart later).
    job_id = await ctx.jobs.enqueue(REGISTRATION_MAIL, {
        "customer_id": customer.id, "email_norm": customer.email_norm, "requested_at_ms": ctx.now_ms()})
    try:
        await customers.insert(customer)
    except customers.DuplicateCustomer as duplicate:
        if ctx.policy.username_mode == UsernameMode.USERNAME and duplicate.field == "username":
            _username_taken()  # lost a race on the username
    ctx.jobs.start(job_id)


def _username_taken() -> None:
    taken = Problems()
    taken.add("username", "TAKEN", "This username is taken; choose another.")
    taken.raise_if_any()


async def send_registration_mail(ctx: Context, payload: dict, job_id: str) -> None:
    """The job behind every accepted registration (``REGISTRATION_MAIL``), run after the answer.

    A new account gets its activation link. When the address was already registered, its owner is
    told that someone tried to register with it (at most ``GATEWAY_REGISTRATION_NOTICE_EMAIL_ATTEMPTS``
    such mails per address and window, so registering cannot mail-bomb an owner). Raises RetryLater
    while neither account can be found yet (the registration's insert may still be on its way).
    """
    customer = await customers.get(payload["customer_id"])
    if customer is not None:
        if customer.status == CustomerStatus.PENDING:
            await audit.record(ctx, "customer.registered", subject_id=customer.id, actor_kind="public")
            await send_activation(ctx, customer)
        return
    existing = await customers.get_by_normalized_email(ctx.application.identity_store_id, payload["email_norm"])
    if existing is None:
        if ctx.now_ms() - payload["requested_at_ms"] < REGISTRATION_SETTLE_MS:
            raise RetryLater()
        return  # the registration was refused or failed: there is nobody to tell
    await audit.record(ctx, "customer.register_existing", subject_id=existing.id, actor_kind="public")
    try:
        await ratelimit.hit(ctx, "register-notice-email", existing.email_norm, ctx.rules.registration_notice_email)
    except RateLimited:
        return
    await ctx.mailer.send("registration_attempt", existing.email, {
        "customer": customer_view(existing), "signin_hint": sign_in_hint(existing),
    }, ctx.application, existing.locale, subject_id=existing.id)


async def send_activation(ctx: Context, customer: CustomerDocument) -> None:
    url = await links.issue(ctx, ACTIVATION, customer.id, ctx.policy.registration.activation_link_lifetime_minutes,
                            "/activate", credential_version=customer.credential_version)
    await ctx.mailer.send("activation", customer.email, {
        "customer": customer_view(customer), "action_url": url,
        "expires_in_minutes": ctx.policy.registration.activation_link_lifetime_minutes,
    }, ctx.application, customer.locale, subject_id=customer.id)


async def activate(ctx: Context, token: str) -> None:
    found = await links.consume(ctx, ACTIVATION, token)
    customer = await customers.get(found.subject_id)
    if customer is None or customer.status == CustomerStatus.DISABLED:
        raise InvalidToken()
    links.check_version(found, customer.credential_version)
    await customers.activate(customer.id, found.credential_version, ctx.now_ms())
    await audit.record(ctx, "customer.activated", subject_id=customer.id, actor_kind="customer", actor_id=customer.id)


async def resend_activation(ctx: Context, email: str) -> None:
    """Always the same answer, and the same work before it (``resolvers.mail_requests``); a pending
    account with the address gets a new link after the answer (``RESEND_MAIL``)."""
    problems = Problems()
    email = validate_email(problems, email)
    problems.raise_if_any()
    await mail_requests.accept(ctx, RESEND_MAIL, "resend", email, ctx.rules.activation_resend_ip)


async def resend_activation_mail(ctx: Context, payload: dict, job_id: str) -> None:
    """The job behind an accepted re-send request."""
    customer = await mail_requests.recipient(ctx, payload, "resend", ctx.rules.activation_resend_email,
                                             {CustomerStatus.PENDING})
    if customer is not None:
        await send_activation(ctx, customer)
        await audit.record(ctx, "customer.activation_resent", subject_id=customer.id, actor_kind="public")


async def peek_activation(ctx: Context, token: str) -> LinkState:
    """What opening this activation link would do, without using it (reads only, never writes).

    USABLE: unused, unexpired, and its account may be activated; ALREADY_DONE: used, and its account
    is active; INVALID: anything else (unknown, expired, superseded, account disabled or gone).
    """
    try:
        found = await links.peek(ctx, ACTIVATION, token)
    except InvalidToken:
        return LinkState.ALREADY_DONE if await _used_for_active_account(token) else LinkState.INVALID
    customer = await customers.get(found.subject_id)
    usable = customer is not None and customer.status != CustomerStatus.DISABLED \
        and customer.credential_version == found.credential_version
    return LinkState.USABLE if usable else LinkState.INVALID


async def confirm_activation(ctx: Context, token: str) -> LinkState:
    """Use the activation link up (``activate``): CONFIRMED, or ALREADY_DONE / INVALID as ``peek_activation``."""
    try:
        await activate(ctx, token)
    except InvalidToken:
        return LinkState.ALREADY_DONE if await _used_for_active_account(token) else LinkState.INVALID
    return LinkState.CONFIRMED


async def _used_for_active_account(token: str) -> bool:
    """True when this activation link was used and its account is active (a mail scanner may have opened it)."""
    found = await links.find_any(token)
    if found is None or found.purpose != ACTIVATION or not found.used:
        return False
    customer = await customers.get(found.subject_id)
    return customer is not None and customer.status == CustomerStatus.ACTIVE
