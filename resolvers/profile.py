"""Personal information: a customer's profile (standard and custom attributes) and the email change.

Reads come from the session's profile copy when the customer reads their own (``me { profile }`` stays
one round trip), else from the customer document (an admin reading ``customer(id)``). Writes are one
conditional update each, all or nothing, followed by ``stores.sessions.refresh_profile`` so that every
session of the customer shows the change at once.

The email is a login identifier, so it changes only through a verified link:

1. ``emailChangeRequest`` (recent authentication required) writes a durable job and answers; the
   answer and the work before it are the same whether or not the new address is taken. The job (after
   the answer) mails a one-time link to the new address when it is free, or revokes the customer's
   pending link and mails nobody when it is taken (the owner of a taken address hears nothing).
2. ``emailChangeConfirm`` (or the ``/email-change`` page) uses the link up and switches the address
   in one write that the store's unique index checks at that moment; the old address is told by a
   durable notice; an audit event is recorded. Confirming needs no sign-in: the link proves the new
   address, and the request proved the account.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from resolvers import attributes, audit, links, ratelimit
from resolvers.bootstrap import policy_of
from resolvers.context import Context
from resolvers.errors import (
    DomainError,
    FeatureDisabled,
    FieldProblem,
    InvalidInput,
    InvalidToken,
    NotFound,
    Problems,
    RateLimited,
)
from resolvers.identifiers import name_norm, normalize_identifier, validate_email
from resolvers.links import LinkState
from resolvers.mail_views import customer_view
from resolvers.recovery import PASSWORD_RESET
from resolvers.self_service import Area, is_on, own_account
from resolvers.sessions import profile_of as profile_copy
from resolvers.sessions import require_recent_authentication
from stores import config, customers, sessions, tokens
from stores.documents import CustomerDocument, CustomerProfile, CustomerStatus

EMAIL_CHANGE = "email_change"  # the link's purpose
EMAIL_CHANGE_MAIL = "email_change_mail"  # job: mail the link to the new address (or not, when it is taken)
EMAIL_CHANGED_NOTICE = "email_changed_notice"  # job: tell the old address
MAX_ATTRIBUTE_CHANGES = 100

NAME_FIELDS = ("given_name", "middle_name", "family_name")
NORMALISED = {"given_name": "given_name_norm", "family_name": "family_name_norm"}  # for the admin search


# -- reading -----------------------------------------------------------------------------------------


async def profile_of(ctx: Context, customer_id: str) -> CustomerProfile:
    """The profile of the customer ``customer_id`` (the object being resolved, not necessarily the principal).

    A customer reading their own gets their session's copy (no database work); anyone else the
    customer document, through the request's loader (an admin's ``customer(id)`` has loaded it already).
    """
    principal = ctx.principal
    if principal is not None and principal.kind == "customer" and principal.subject_id == customer_id \
            and principal.profile:
        return CustomerProfile.model_validate(principal.profile)
    customer = await ctx.loaders.customer.load(customer_id)
    if customer is None:
        raise NotFound()
    return profile_copy(customer)


async def attributes_of(ctx: Context, customer_id: str) -> list[attributes.AttributeView]:
    """The custom attributes of ``customer_id``: a customer sees the visible ones, an admin every one
    (archived included). Costs one query per request and store for the definitions."""
    profile = await profile_of(ctx, customer_id)
    definitions = await attributes.definitions(ctx, profile.store_id)
    by_admin = ctx.principal is not None and ctx.principal.kind == "admin"
    return attributes.views(definitions, profile.attributes, by_admin=by_admin)


# -- profile updates ---------------------------------------------------------------------------------


async def update_own_profile(ctx: Context, changes: dict[str, Any]) -> CustomerDocument:
    """``profileUpdate``: the signed-in customer changes their own profile (see :func:`update_attributes`)."""
    customer_id = own_account(ctx, Area.PERSONAL_INFORMATION)
    return await update_attributes(ctx, customer_id, changes, by_admin=False)


async def update_attributes(ctx: Context, customer_id: str, changes: dict[str, Any], *,
                            by_admin: bool) -> CustomerDocument:
    """Change only the given fields of a customer's profile, all or nothing; returns the customer after.

    ``changes`` (snake_case): ``given_name``, ``middle_name``, ``family_name``, ``phone_number``,
    ``birthdate``, ``locale`` (a value, or None to clear), ``address`` (a dict of the sub-fields to change,
    or None to clear the whole address), ``attributes`` (a list of ``(key, value)``; value None clears).
    A field left out is not touched. Every value is validated (``resolvers.attributes``); any problem
    raises InvalidInput naming each bad field (``givenName``, ``address.country``, ``attributes.<key>``
    with ``UNKNOWN``, ``NOT_EDITABLE``, ``DUPLICATE``, ``REQUIRED``, ``INVALID`` …) and nothing is saved.
    ``email`` is refused (``NOT_EDITABLE``): it changes through the email-change flow only.

    ``by_admin``: an admin (``customerUpdate``) may also set attributes that are not self-service
    editable or visible, and clear archived ones; the same validation applies. NotFound for a customer
    outside the request's identity store.

    One conditional update (``$set``/``$unset`` of the given fields only, so concurrent edits of other
    fields survive), then every session's profile copy is refreshed and an audit event (field names
    only, never values) is recorded.
    """
    store_id = ctx.application.identity_store_id
    customer = await customers.get(customer_id) if customer_id else None
    if customer is None or customer.store_id != store_id:
        raise NotFound()
    problems = Problems()
    set_fields: dict[str, Any] = {}
    unset_fields: list[str] = []
    changed: list[str] = []

    def put(path: str, value: Any, label: str | None = None) -> None:
        if value is None:
            unset_fields.append(path)
        else:
            set_fields[path] = value
        if label:
            changed.append(label)

    if "email" in changes:
        problems.add("email", "NOT_EDITABLE", "Change your email address with emailChangeRequest.")
    for name in NAME_FIELDS:
        if name in changes:
            value = attributes.validate_name(problems, changes[name], attributes.STANDARD_FIELDS[name])
            put(name, value, attributes.STANDARD_FIELDS[name])
            if name in NORMALISED:
                put(NORMALISED[name], name_norm(value))
    address = customer.address
    if "address" in changes:
        address = attributes.validate_address(problems, changes["address"], customer.address)
        put("address", address.model_dump() if address else None, "address")
    if "phone_number" in changes:
        region = address.country if address else None
        put("phone_number", attributes.validate_phone(problems, changes["phone_number"], region=region), "phoneNumber")
    if "birthdate" in changes:
        put("birthdate", attributes.validate_birthdate(problems, changes["birthdate"], ctx.now()), "birthdate")
    if "locale" in changes:
        put("locale", attributes.validate_locale(problems, changes["locale"]), "locale")
    if changes.get("attributes"):
        await _custom(ctx, problems, store_id, changes["attributes"], by_admin, put)
    problems.raise_if_any()
    if not set_fields and not unset_fields:
        return customer
    updated = await customers.update_profile(customer.id, store_id, set_fields, unset_fields, ctx.now_ms())
    if updated is None:
        raise NotFound()
    await sessions.refresh_profile(updated.id, profile_copy(updated).model_dump())
    await audit.record(ctx, "customer.profile_updated", subject_id=updated.id, fields=sorted(set(changed)))
    return updated


async def _custom(ctx: Context, problems: Problems, store_id: str, given: list[tuple[str, Any]], by_admin: bool,
                  put) -> None:
    if len(given) > MAX_ATTRIBUTE_CHANGES:
        problems.add("attributes", "TOO_MANY", f"Change at most {MAX_ATTRIBUTE_CHANGES} attributes at once.")
        return
    definitions = {d.key: d for d in await attributes.definitions(ctx, store_id)}
    seen: set[str] = set()
    for key, value in given:
        field = f"attributes.{key}"
        definition = definitions.get(key)
        if key in seen:
            problems.add(field, "DUPLICATE", "Give each attribute once.")
        elif definition is None or (not by_admin and not attributes.self_service_visible(definition)):
            problems.add(field, "UNKNOWN", "There is no such attribute.")
        elif not attributes.editable(definition, by_admin=by_admin) and not (by_admin and value is None):
            problems.add(field, "NOT_EDITABLE", f"{definition.label} cannot be changed here.")
        else:
            put(f"attributes.{key}", await attributes.check_value(problems, definition, value, field), field)
        seen.add(key)


# -- email change ------------------------------------------------------------------------------------


async def request_email_change(ctx: Context, new_email: str) -> None:
    """``emailChangeRequest``: start changing the signed-in customer's email to ``new_email``.

    Needs a recent authentication (ReauthenticationRequired). InvalidInput on ``newEmail``: ``REQUIRED``,
    ``INVALID`` (as registration checks addresses), ``UNCHANGED``; RateLimited past
    ``GATEWAY_EMAIL_CHANGE_ATTEMPTS`` requests per customer and window.

    Before the answer, the same work whatever the address: one customer read, one counter, one job,
    one audit event. The job does the rest (:func:`send_email_change_link`).
    """
    customer_id = own_account(ctx, Area.PERSONAL_INFORMATION)
    require_recent_authentication(ctx)
    problems = Problems()
    new_email = validate_email(problems, new_email, "newEmail")
    problems.raise_if_any()
    customer = await customers.get(customer_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE:
        raise NotFound()
    if normalize_identifier(new_email) == customer.email_norm:
        problems.add("newEmail", "UNCHANGED", "This is already your email address.")
        problems.raise_if_any()
    await ratelimit.hit(ctx, "email-change", f"customer:{customer.id}", ctx.rules.email_change)
    job_id = await ctx.jobs.enqueue(EMAIL_CHANGE_MAIL, {
        "customer_id": customer.id, "new_email": new_email, "credential_version": customer.credential_version})
    await audit.record(ctx, "customer.email_change_requested", subject_id=customer.id)
    ctx.jobs.start(job_id)


async def send_email_change_link(ctx: Context, payload: dict, job_id: str) -> None:
    """The job behind every accepted ``emailChangeRequest``, run after the answer.

    Nothing happens when the customer's credentials changed since the request. Otherwise the request
    supersedes the customer's earlier email-change link either way: a free address (within
    ``GATEWAY_EMAIL_CHANGE_ADDRESS_ATTEMPTS`` mails per address and window) gets a new link; a taken
    one, or one over its limit, gets nothing, and the earlier link is revoked all the same (else
    whether an earlier link still worked would tell the requester whether the address is taken).
    """
    customer = await customers.get(payload["customer_id"])
    if customer is None or customer.status != CustomerStatus.ACTIVE \
            or customer.credential_version != payload["credential_version"]:
        return
    new_email = payload["new_email"]
    new_norm = normalize_identifier(new_email)
    owner = await customers.get_by_identifier(customer.store_id, new_norm)
    refusal = "taken" if owner is not None and owner.id != customer.id else None
    try:
        await ratelimit.hit(ctx, "email-change-address", new_norm, ctx.rules.email_change_address)
    except RateLimited:
        refusal = refusal or "rate_limited"
    if refusal is None:
        ttl = ctx.policy.email_change.link_lifetime_minutes
        url = await links.issue(ctx, EMAIL_CHANGE, customer.id, ttl, "/email-change",
                                credential_version=customer.credential_version, new_email=new_email)
        # The new address is not verified yet: the mail carries no text the account holder typed.
        unverified = customer.model_copy(update={"email": new_email, "email_verified": False})
        await ctx.mailer.send("email_change_verify", new_email, {
            "customer": customer_view(unverified), "new_email": new_email, "action_url": url,
            "expires_in_minutes": ttl,
        }, ctx.application, customer.locale, subject_id=customer.id)
        return
    await tokens.revoke(EMAIL_CHANGE, customer.id)
    await audit.record(ctx, "customer.email_change_not_sent", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id, reason=refusal)


async def confirm_email_change(ctx: Context, token: str) -> CustomerDocument:
    """``emailChangeConfirm``: use an email-change link up and switch the address; returns the customer.

    InvalidToken for an unknown, used, expired or superseded link, or when the customer's credentials
    changed since it was issued; FeatureDisabled when the issuing application's policy has personal
    information off; InvalidInput ``newEmail`` ``TAKEN`` when another account took the address in the
    meantime (the store's unique index decides, so of two accounts confirming one address exactly one
    gets it; the link is used up either way).

    The email (and the username, where the username is the email) changes in one conditional write;
    ``email_verified`` stays true; the credential version, sessions and sign-in budgets stay. A password
    reset link still pending (mailed to the old address) is revoked. The old address gets the
    ``email_changed`` notice (a job written before the change, sent only if the change happened).
    """
    found = await links.peek(ctx, EMAIL_CHANGE, token)
    customer = await customers.get(found.subject_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE or not found.new_email:
        raise InvalidToken()
    links.check_version(found, customer.credential_version)
    if not is_on(await _issuing(ctx, found.application_id), Area.PERSONAL_INFORMATION):
        raise FeatureDisabled()
    new_email = found.new_email
    new_norm = normalize_identifier(new_email)
    fields = {"email": new_email, "email_norm": new_norm}
    if customer.username_norm == customer.email_norm:  # the username is the email (EMAIL and PHONE modes)
        fields.update(username=new_email, username_norm=new_norm)
    notice = await ctx.jobs.enqueue(EMAIL_CHANGED_NOTICE, {
        "customer_id": customer.id, "old_email": customer.email, "new_email": new_email},
        application_id=found.application_id)
    used = await links.consume(ctx, EMAIL_CHANGE, token)  # of concurrent uses, exactly one gets here
    if used.subject_id != customer.id or used.new_email != new_email:
        raise InvalidToken()
    try:
        switched = await customers.change_email(customer.id, customer.email_norm, used.credential_version, fields,
                                                ctx.now_ms())
    except customers.DuplicateCustomer:
        await audit.record(ctx, "customer.email_change_failed", subject_id=customer.id, actor_kind="customer",
                           actor_id=customer.id, reason="taken")
        raise InvalidInput([FieldProblem("newEmail", "TAKEN", "Another account uses this address now.")]) from None
    if not switched:
        raise InvalidToken()  # the account changed since the link was checked
    ctx.jobs.start(notice)
    await tokens.revoke(PASSWORD_RESET, customer.id)
    updated = await customers.get(customer.id)
    await sessions.refresh_profile(customer.id, profile_copy(updated).model_dump())
    await audit.record(ctx, "customer.email_changed", subject_id=customer.id, actor_kind="customer",
                       actor_id=customer.id, old_email=customer.email, new_email=new_email)
    return updated


async def _issuing(ctx: Context, application_id: str | None) -> Context:
    """The context as the application that issued the link sees it (its policy): pages and API alike."""
    if not application_id or application_id == ctx.application.id:
        return ctx
    application = await config.get_application(application_id)
    if application is None:
        return ctx
    return dataclasses.replace(ctx, application=application, policy=await policy_of(application))


async def send_email_changed_notice(ctx: Context, payload: dict, job_id: str) -> None:
    """The job: tell the old address that the account's email changed, if it did (a confirmation that
    failed or never finished leaves the email as it was, and nothing is sent)."""
    customer = await customers.get(payload["customer_id"])
    if customer is None or customer.email_norm == normalize_identifier(payload["old_email"]):
        return
    view = {**customer_view(customer), "email": payload["old_email"]}
    await ctx.mailer.send("email_changed", payload["old_email"], {
        "customer": view, "new_email_hint": email_hint(payload["new_email"]),
    }, ctx.application, customer.locale, subject_id=customer.id)


def email_hint(email: str) -> str:
    """An address shown in part: the first character of the local part, then the domain (``n•••@example.com``)."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}"


# -- the /email-change page --------------------------------------------------------------------------


async def peek_email_change(ctx: Context, token: str) -> LinkState:
    """What confirming this link would do, without using it (reads only)."""
    try:
        found = await links.peek(ctx, EMAIL_CHANGE, token)
    except InvalidToken:
        return LinkState.ALREADY_DONE if await _used_and_applied(token) else LinkState.INVALID
    customer = await customers.get(found.subject_id)
    usable = customer is not None and customer.status == CustomerStatus.ACTIVE and bool(found.new_email) \
        and customer.credential_version == found.credential_version
    return LinkState.USABLE if usable else LinkState.INVALID


async def confirm_email_change_link(ctx: Context, token: str) -> LinkState:
    """The page's confirm button: CONFIRMED, ALREADY_DONE (used, and the account has that address), INVALID."""
    try:
        await confirm_email_change(ctx, token)
    except InvalidToken:
        return LinkState.ALREADY_DONE if await _used_and_applied(token) else LinkState.INVALID
    except DomainError:
        return LinkState.INVALID
    return LinkState.CONFIRMED


async def _used_and_applied(token: str) -> bool:
    found = await links.find_any(token)
    if found is None or found.purpose != EMAIL_CHANGE or not found.used or not found.new_email:
        return False
    customer = await customers.get(found.subject_id)
    return customer is not None and customer.email_norm == normalize_identifier(found.new_email)
