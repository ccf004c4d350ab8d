"""The account portal at ``/account``: the signed-in customer manages their own account in four tabs.

=====================  ==========================  ==================================================
Tab                    Path                        Policy switch (``accountManagement``)
=====================  ==========================  ==================================================
Personal information   ``/account/personal``       ``personalInformation``
Account settings       ``/account/settings``       ``accountSettings`` (deletion: ``accountDeletion``)
Security settings      ``/account/security``       ``securitySettings``
Privacy and data       ``/account/privacy``        ``privacyAndData`` (download: ``dataExport``)
=====================  ==========================  ==================================================

``/account`` shows the first tab that is on. A tab that is off is not in the navigation, and its
pages and forms answer 404 (``resolvers.self_service.is_on``, the switches ``me.selfService``
shows). A signed-out visitor is sent to ``/sign-in?next=<the page>`` (``?app=`` kept); a session
works only for the application it was made under, so another application's ``?app=`` signs nobody in.

Every form posts to its own path with the page's CSRF token and calls the use case the GraphQL API
calls (``profile``, ``account``, ``mfa``, ``passkeys``, ``passwords``, ``sessions``, ``consents``,
``export``): no rule is written twice. A successful change redirects (303) back to its tab with
``?done=<what>``, which shows a fixed message (never text from the URL); a refused one shows the tab
again with each error tied to its field.

**Re-authentication.** When a use case answers ReauthenticationRequired, the browser is sent to
``/account/reauthenticate?next=<tab>``: the password, or a code from a factor the account may confirm
with (``mfa.reauthentication_methods``: an authenticator app, an emailed code, a recovery code; an
emailed code for an account without a password). Success rotates the session token (the cookie is
set anew) and returns to the tab, where the customer submits the change again: nothing they typed
(a password least of all) is kept in a cookie, a URL or the page.

**Adding a passkey** needs the browser's WebAuthn API: ``/assets/portal.js`` posts the page's form
(with its CSRF token) to ``/account/security/passkeys/start`` for the creation options, calls
``navigator.credentials.create()``, and posts the credential (JSON, in a form field) to
``.../finish``; both answer JSON. Without the API (or without JavaScript) the button stays hidden.

**TOTP enrolment** shows the secret for typing and a QR code of its ``otpauth://`` URI, drawn here
with ``segno`` as SVG markup inside the page (no image URL carries the secret; the SVG has no
``style`` attribute, so the Content-Security-Policy needs no ``unsafe-inline``).
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import segno
from babel.dates import format_date, format_datetime
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.pages.i18n import N_
from gateway.pages.kit import FORM_MAX_FIELD_BYTES, FORM_MAX_FIELDS, Page, PageKit
from gateway.pages.links import password_advice
from gateway.pages.public import FACTOR_LABELS, page_route
from resolvers import account, attributes, consents, export, mfa, passkeys, profile, sessions
from resolvers.errors import (
    ConsentRequired,
    Denied,
    FeatureDisabled,
    InvalidCredentials,
    InvalidInput,
    LastLoginMethod,
    NotFound,
    PasswordPolicyViolation,
    RateLimited,
    ReauthenticationRequired,
)
from resolvers.passwords import change_password
from resolvers.self_service import Area, is_on
from stores.documents import AttributeType, FactorType, MfaMode

ACCOUNT = "/account"
SIGN_IN = "/sign-in"
PERSONAL = "/account/personal"
EMAIL_CHANGE = "/account/personal/email"
SETTINGS = "/account/settings"
UNLINK = "/account/settings/unlink"
DELETE = "/account/settings/delete"
SECURITY = "/account/security"
TOTP = "/account/security/totp"
TOTP_CONFIRM = "/account/security/totp/confirm"
EMAIL_CODES = "/account/security/email-codes"
RECOVERY_CODES = "/account/security/recovery-codes"
FACTOR_REMOVE = "/account/security/factors/remove"
PASSWORD = "/account/security/password"
SESSION_REVOKE = "/account/security/sessions/revoke"
SESSIONS_REVOKE_OTHERS = "/account/security/sessions/revoke-others"
PASSKEY_START = "/account/security/passkeys/start"
PASSKEY_FINISH = "/account/security/passkeys/finish"
PASSKEY_RENAME = "/account/security/passkeys/rename"
PASSKEY_REMOVE = "/account/security/passkeys/remove"
PRIVACY = "/account/privacy"
CONSENT = "/account/privacy/consent"
EXPORT = "/account/privacy/export"
REAUTHENTICATE = "/account/reauthenticate"
REAUTHENTICATE_SEND = "/account/reauthenticate/send"

MAX_TEXT = 1024
MAX_EMAIL = 320
MAX_ID = 100
MAX_NUMBER_DIGITS = 20
# The profile form: client_id, csrf_token, 11 standard fields and at most one field per custom attribute.
PROFILE_MAX_FIELDS = 16 + attributes.MAX_DEFINITIONS
PASSKEY_FORM_MAX_BYTES = passkeys.MAX_CREDENTIAL_CHARACTERS + 1024
INTEGER = re.compile(r"^[+-]?\d+$")

logger = logging.getLogger("gateway.pages")


@dataclass(frozen=True)
class Tab:
    key: str
    path: str
    area: Area
    title: str
    template: str


TABS = (
    Tab("personal", PERSONAL, Area.PERSONAL_INFORMATION, N_("Personal information"), "account_personal.html"),
    Tab("settings", SETTINGS, Area.ACCOUNT_SETTINGS, N_("Account settings"), "account_settings.html"),
    Tab("security", SECURITY, Area.SECURITY_SETTINGS, N_("Security settings"), "account_security.html"),
    Tab("privacy", PRIVACY, Area.PRIVACY_AND_DATA, N_("Privacy and data"), "account_privacy.html"),
)
TAB = {tab.key: tab for tab in TABS}
RETURNS = {ACCOUNT, DELETE, TOTP, *(tab.path for tab in TABS)}  # where re-authentication may return to
PASSKEY_MISSING = N_("This passkey is not one of yours, or is removed already.")

PATHS = frozenset({ACCOUNT, PERSONAL, EMAIL_CHANGE, SETTINGS, UNLINK, DELETE, SECURITY, TOTP, TOTP_CONFIRM,
                   EMAIL_CODES, RECOVERY_CODES, FACTOR_REMOVE, PASSWORD, SESSION_REVOKE, SESSIONS_REVOKE_OTHERS,
                   PASSKEY_START, PASSKEY_FINISH, PASSKEY_RENAME, PASSKEY_REMOVE, PRIVACY, CONSENT, EXPORT,
                   REAUTHENTICATE, REAUTHENTICATE_SEND})

# What a change did, shown on the tab it returns to (``?done=<key>``).
DONE = {
    "saved": N_("Your changes are saved."),
    "reauthenticated": N_("Thank you. You can make your change now: submit it again."),
    "identity_removed": N_("The account is unlinked."),
    "totp_added": N_("Your authenticator app is set up. Signing in will ask for a code from it."),
    "email_codes_on": N_("Emailed codes are on."),
    "factor_removed": N_("The second factor is removed."),
    "password_changed": N_("Your password is changed. Every other session is signed out."),
    "session_ended": N_("That session is signed out."),
    "others_ended": N_("Every other session is signed out."),
    "passkey_added": N_("Your passkey is added."),
    "passkey_renamed": N_("The passkey is renamed."),
    "passkey_removed": N_("The passkey is removed."),
    "consent_saved": N_("Your answer is saved."),
}

# Messages resolvers give that the portal shows; marked here so that the catalogues translate them.
RESOLVER_MESSAGES = (
    N_("Enter a valid phone number in international format, e.g. +41 44 668 18 00."),
    N_("Use an ISO 3166-1 alpha-2 country code, such as DE or CA."), N_("Use a date as YYYY-MM-DD."),
    N_("This date does not exist."), N_("A birthdate cannot be in the future."),
    N_("Use a language tag such as en, fr-CA or zh-Hant-TW."), N_("Enter a number."), N_("Enter true or false."),
    N_("This value could not be checked; try a shorter one."), N_("This is already your email address."),
    N_("Enter the 6-digit code from your app."), N_("This code is not right. Check the time on your device."),
    N_("Your current password is not right."), N_("Enter a password."), N_("The two new passwords are not the same."),
    N_("Your password was changed meanwhile. Sign in again."), N_("Give the passkey a name."),
    N_("This passkey request has expired or was used already: start again."),
    N_("This passkey could not be verified for this site. Try again, or use another one."),
    N_("This passkey is registered already."),
    N_("This is not a passkey response: send the browser's credential as JSON."),
    N_("This is your last way to sign in: add another before you remove it."),
    N_("This consent is required to use the application and cannot be withdrawn."),
    N_("Give either your password, or a factor and its code."),
)


@dataclass(frozen=True)
class FormField:
    """One input of the profile form: ``kind`` text, tel, date, select or textarea."""

    name: str
    label: str
    kind: str = "text"
    autocomplete: str | None = None
    hint: str = ""
    inputmode: str | None = None
    options: tuple[tuple[str, str], ...] = ()  # a select's (value, label)


STANDARD_FIELDS = (
    FormField("given_name", N_("Given name"), autocomplete="given-name"),
    FormField("middle_name", N_("Middle name"), autocomplete="additional-name"),
    FormField("family_name", N_("Family name"), autocomplete="family-name"),
    FormField("phone_number", N_("Phone number"), "tel", "tel", N_("In international format, such as +41 44 668 18 00.")),
    FormField("birthdate", N_("Date of birth"), "date", "bday"),
    FormField("locale", N_("Language"), autocomplete="language", hint=N_("A language tag, such as en, fr or fr-CA.")),
)
ADDRESS_FIELDS = (
    FormField("address_street_address", N_("Street address"), "textarea", "street-address"),
    FormField("address_locality", N_("Town or city"), autocomplete="address-level2"),
    FormField("address_region", N_("Region or state"), autocomplete="address-level1"),
    FormField("address_postal_code", N_("Postal code"), autocomplete="postal-code"),
    FormField("address_country", N_("Country code"), autocomplete="country",
              hint=N_("Two letters, such as DE, FR or CA.")),
)
STANDARD_NAMES = ("given_name", "middle_name", "family_name", "phone_number", "birthdate", "locale")
# The API's field names (in InvalidInput problems) and the form's.
PROFILE_ERRORS = {attributes.STANDARD_FIELDS[name]: name for name in STANDARD_NAMES} | {
    f"address.{api}": f"address_{name}" for name, api in attributes.ADDRESS_FIELDS.items()}


def _text(form: FormData | None, name: str, limit: int = MAX_TEXT) -> str:
    return str(form.get(name, ""))[:limit + 1] if form is not None else ""


def _attribute_field(view: attributes.AttributeView) -> str:
    return f"attr_{view.key}"


def _shown(value: Any) -> str:
    """A stored value as a form shows it: booleans as yes/no, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _typed(view: attributes.AttributeView, sent: str) -> Any:
    """What the form sent, in the attribute's JSON type where it reads as one; anything else is passed on
    as text, for the use case to refuse with its own message ("Enter a number.")."""
    if not sent:
        return None
    if view.type == AttributeType.NUMBER:
        if INTEGER.match(sent) and len(sent) <= MAX_NUMBER_DIGITS:
            return int(sent)
        try:
            number = float(sent)
        except ValueError:
            return sent
        return number if math.isfinite(number) else sent
    if view.type == AttributeType.BOOLEAN:
        return {"yes": True, "no": False}.get(sent, sent)
    return sent


def qr_code(uri: str, title: str) -> Markup:
    """An SVG QR code of ``uri`` (error correction M), black on white, drawn with presentation attributes
    only (no ``style``), to put inside the page."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", xmldecl=False, svgns=True, scale=5, border=4, dark="#000",
                                    light="#fff", title=title, svgclass="qr-code", omitsize=True, nl=False)
    return Markup(buffer.getvalue().decode())  # noqa: S704 (segno's own markup; the title is ours)


def grouped(secret: str) -> str:
    """A TOTP secret in groups of four, easier to type."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def routes(kit: PageKit) -> list[Route]:
    """The portal's routes, sharing the pages' ``PageKit``."""

    # -- opening a request -----------------------------------------------------------------------
    async def read(request: Request, max_fields: int = FORM_MAX_FIELDS,
                   max_bytes: int = FORM_MAX_FIELD_BYTES) -> FormData:
        return await request.form(max_files=0, max_fields=max_fields, max_part_size=max_bytes)

    def customer_id(page: Page) -> str:
        return page.ctx.principal.subject_id

    def sign_in(page: Page, back: str) -> Response:
        return kit.redirect(page, SIGN_IN, next=back)

    def on_tabs(page: Page) -> list[Tab]:
        return [tab for tab in TABS if is_on(page.ctx, tab.area)]

    def when(page: Page, moment: datetime | int | None) -> str:
        """A date and time in the page's language, in UTC."""
        if moment is None:
            return ""
        if isinstance(moment, int):
            moment = datetime.fromtimestamp(moment / 1000, UTC)
        elif moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return format_datetime(moment, "medium", tzinfo=UTC, locale=page.locale) + " UTC"

    def layout(page: Page, template: str, status: int, heading: str, current: Tab | None, **variables) -> Response:
        profile_copy = (page.ctx.principal.profile or {}) if page.ctx.principal else {}
        return kit.render(
            page, template, status, title=heading, heading=heading, account_email=profile_copy.get("email", ""),
            given_name=profile_copy.get("given_name") or "",
            tabs=[{"url": kit.url(page, tab.path), "title": kit.gettext(page, tab.title), "current": tab is current}
                  for tab in on_tabs(page)], **variables)

    def missing(page: Page) -> Response:
        """404: a page of a tab that is off (or a thing that is not the customer's)."""
        return layout(page, "account.html", 404, kit.gettext(page, "This page is not available"), None,
                      missing=True)

    def too_many(page: Page, exc: RateLimited) -> str:
        return kit.gettext(page, "Too many attempts. Please try again in %(seconds)s seconds.",
                           seconds=exc.retry_after_seconds)

    # -- the tabs --------------------------------------------------------------------------------
    async def profile_state(page: Page) -> tuple[Any, list[attributes.AttributeView], dict[str, str]]:
        """The customer's profile, their custom attributes, and every profile form field's value as shown."""
        current = await profile.profile_of(page.ctx, customer_id(page))
        views = await profile.attributes_of(page.ctx, customer_id(page))
        address = current.address.model_dump() if current.address else {}
        shown = {name: _shown(getattr(current, name)) for name in STANDARD_NAMES}
        shown |= {f"address_{name}": _shown(address.get(name)) for name in attributes.ADDRESS_FIELDS}
        shown |= {_attribute_field(view): _shown(view.value) for view in views}
        return current, views, shown

    async def personal_data(page: Page, values: dict[str, str] | None = None) -> dict[str, Any]:
        current, views, shown = await profile_state(page)
        custom, fixed = [], []
        for view in views:
            if not view.editable:
                fixed.append({"label": view.label, "value": _shown(view.value)})
                continue
            field = {"name": _attribute_field(view), "label": view.label, "kind": "text", "options": (),
                     "hint": kit.gettext(page, "Required.") if view.required else "", "inputmode": None,
                     "autocomplete": None}
            unset = () if view.required else (("", kit.gettext(page, "Not set")),)
            if view.type == AttributeType.NUMBER:
                field["inputmode"] = "decimal"
            elif view.type == AttributeType.DATE:
                field["kind"] = "date"
            elif view.type == AttributeType.BOOLEAN:
                field |= {"kind": "select", "options": (*unset, ("yes", kit.gettext(page, "Yes")),
                                                        ("no", kit.gettext(page, "No")))}
            elif view.type == AttributeType.ENUM:
                field |= {"kind": "select", "options": (*unset, *((v, v) for v in view.enum_values))}
            custom.append(field)

        def translated(fields: tuple[FormField, ...]) -> list[dict[str, Any]]:
            return [{"name": f.name, "label": kit.gettext(page, f.label), "kind": f.kind, "options": f.options,
                     "autocomplete": f.autocomplete, "inputmode": f.inputmode,
                     "hint": kit.gettext(page, f.hint) if f.hint else ""} for f in fields]

        return {"values": {**shown, **(values or {})}, "standard": translated(STANDARD_FIELDS),
                "address": translated(ADDRESS_FIELDS), "custom": custom, "fixed": fixed, "email": current.email,
                "username": current.username if current.username != current.email else ""}

    async def settings_data(page: Page) -> dict[str, Any]:
        methods = await account.login_methods(page.ctx, customer_id(page))
        return {"methods": methods,
                "identities": [{"id": i.id, "provider": i.provider.title(), "email": i.email or "",
                                "linked": when(page, i.linked_at_ms)} for i in methods.linked_identities],
                "can_delete": is_on(page.ctx, Area.ACCOUNT_DELETION),
                "security_url": kit.url(page, SECURITY) if is_on(page.ctx, Area.SECURITY_SETTINGS) else ""}

    async def security_data(page: Page) -> dict[str, Any]:
        ctx, cid = page.ctx, customer_id(page)
        policy = ctx.policy
        all_factors = await mfa.factors_of(ctx, cid)
        factors = [f for f in all_factors if f.type != FactorType.PASSKEY]
        allowed = set(policy.mfa.factors) if policy.mfa.mode != MfaMode.OFF else set()
        by_type = {f.type: f for f in factors}
        try:
            passkeys.relying_party(ctx)
            keys = await passkeys.list_for(cid)
        except FeatureDisabled:
            keys = None
        current = ctx.principal.session_id
        session_rows = []
        for doc in await sessions.own_sessions(ctx):
            agent = sessions.describe_user_agent(doc.user_agent)
            session_rows.append({"id": doc.id, "current": doc.id == current, "device": agent.device or "",
                                 "browser": agent.browser or "", "os": agent.os or "", "ip": doc.ip_address or "",
                                 "last_seen": when(page, doc.last_seen_at_ms), "created": when(page, doc.created_at)})
        session_rows.sort(key=lambda row: not row["current"])
        return {
            "mfa_on": policy.mfa.mode != MfaMode.OFF, "mfa_required": policy.mfa.mode == MfaMode.REQUIRED,
            "asks_second_factor": mfa.enabled(ctx, all_factors),
            "totp": by_type.get(FactorType.TOTP), "can_totp": FactorType.TOTP in allowed,
            "email_codes": by_type.get(FactorType.EMAIL_OTP), "can_email_codes": FactorType.EMAIL_OTP in allowed,
            "recovery": by_type.get(FactorType.RECOVERY_CODE), "can_recovery": FactorType.RECOVERY_CODE in allowed,
            "recovery_left": len(by_type[FactorType.RECOVERY_CODE].recovery_code_hashes)
            if FactorType.RECOVERY_CODE in by_type else 0,
            "totp_added": when(page, by_type[FactorType.TOTP].created_at) if FactorType.TOTP in by_type else "",
            "can_change_password": await mfa.can_change_password(ctx, cid),
            "min_length": policy.password_policy.min_length,
            "sessions": session_rows,
            "passkeys": None if keys is None else [
                {"id": key.id, "name": key.name, "created": when(page, key.created_at),
                 "last_used": when(page, key.last_used_at_ms), "synced": key.backed_up} for key in keys],
        }

    async def privacy_data(page: Page) -> dict[str, Any]:
        ctx, cid = page.ctx, customer_id(page)

        def items(states: list[consents.ConsentState]) -> list[dict[str, Any]]:
            return [{"application_id": s.application_id, "key": s.item.key, "title": s.item.title,
                     "description": s.item.description, "required": s.item.required, "granted": s.granted,
                     "since": when(page, s.granted_at), "version": s.version,
                     "needs_reacceptance": s.needs_reacceptance} for s in states]

        groups = [{"name": ctx.application.name, "items": items(await consents.consents(ctx, cid, None))}]
        for application in await consents.answered_elsewhere(ctx, cid):
            groups.append({"name": application.name,
                           "items": items(await consents.consents(ctx, cid, application.id))})
        return {"groups": [group for group in groups if group["items"]],
                "can_export": is_on(ctx, Area.DATA_EXPORT)}

    TAB_DATA: dict[str, Callable[[Page], Awaitable[dict[str, Any]]]] = {
        "settings": settings_data, "security": security_data, "privacy": privacy_data}

    async def show(page: Page, tab: Tab, status: int = 200, *, notice: str = "", error: str = "",
                   values: dict[str, str] | None = None, **variables) -> Response:
        data = await (personal_data(page, values) if tab.key == "personal" else TAB_DATA[tab.key](page))
        return layout(page, tab.template, status, kit.gettext(page, tab.title), tab, notice=notice, error=error,
                      **data, **variables)

    def done(page: Page, path: str, what: str) -> Response:
        return kit.redirect(page, path, done=what)

    async def tab_page(request: Request, tab: Tab | None) -> Response:
        page = await kit.open(request, with_session=True)
        if page.ctx.principal is None:
            return sign_in(page, tab.path if tab else ACCOUNT)
        if tab is None:  # /account: the first tab that is on
            tabs = on_tabs(page)
            if not tabs:
                return layout(page, "account.html", 200, kit.gettext(page, "Your account"), None, empty=True)
            tab = tabs[0]
        elif not is_on(page.ctx, tab.area):
            return missing(page)
        notice = DONE.get(request.query_params.get("done", ""))
        return await show(page, tab, notice=kit.gettext(page, notice) if notice else "")

    # -- form posts ------------------------------------------------------------------------------
    Handler = Callable[[Page, FormData], Awaitable[Response]]

    def action(path: str, tab: Tab, handler: Handler, *, area: Area | None = None, back: str | None = None,
               max_fields: int = FORM_MAX_FIELDS, not_found: str | None = None) -> Route:
        """A form POST of ``tab``: CSRF, a signed-in customer, the area on; the common refusals answered:
        ``LastLoginMethod`` on the tab (400), and ``NotFound`` (an id that is not the customer's) with the
        ``not_found`` message (404) where the form names one."""
        back = back or tab.path

        async def endpoint(request: Request) -> Response:
            form = await read(request, max_fields)
            page = await kit.open(request, client_id=_text(form, "client_id", MAX_ID), with_session=True)
            refusal = kit.refusal(page, form, path)
            if refusal is not None:
                return kit.refused(page, path, refusal, kit.url(page, back))
            if page.ctx.principal is None:
                return sign_in(page, back)
            if not is_on(page.ctx, area or tab.area):
                return missing(page)
            try:
                return await handler(page, form)
            except ReauthenticationRequired:
                return kit.redirect(page, REAUTHENTICATE, next=back)
            except FeatureDisabled:
                return missing(page)
            except RateLimited as exc:
                return await show(page, tab, 429, error=too_many(page, exc))
            except LastLoginMethod as exc:
                return await show(page, tab, 400, error=kit.gettext(page, exc.message))
            except NotFound:
                if not_found is None:
                    raise
                return await show(page, tab, 404, error=kit.gettext(page, not_found))
            except Denied:  # the session ended meanwhile
                return kit.sessions.end(sign_in(page, back))
        return page_route(kit, path, endpoint, ["POST"])

    def get(path: str, endpoint: Callable[[Request], Awaitable[Response]]) -> Route:
        return page_route(kit, path, endpoint, ["GET"])

    # -- personal information --------------------------------------------------------------------
    async def save_profile(page: Page, form: FormData) -> Response:
        _, views, before = await profile_state(page)
        sent = {name: _text(form, name).strip() for name in before}
        changes: dict[str, Any] = {name: sent[name] or None for name in STANDARD_NAMES if sent[name] != before[name]}
        address = {name: sent[f"address_{name}"] or None for name in attributes.ADDRESS_FIELDS
                   if sent[f"address_{name}"] != before[f"address_{name}"]}
        if address:
            changes["address"] = address
        custom = [(view.key, _typed(view, sent[_attribute_field(view)])) for view in views
                  if view.editable and sent[_attribute_field(view)] != before[_attribute_field(view)]]
        if custom:
            changes["attributes"] = custom
        try:
            await profile.update_own_profile(page.ctx, changes)
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, PROFILE_ERRORS | {
                f"attributes.{view.key}": _attribute_field(view) for view in views})
            return await show(page, TAB["personal"], 400, values=sent)
        return done(page, PERSONAL, "saved")

    async def request_email_change(page: Page, form: FormData) -> Response:
        new_email = _text(form, "new_email", MAX_EMAIL).strip()
        try:
            await profile.request_email_change(page.ctx, new_email)
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"newEmail": "new_email"})
            return await show(page, TAB["personal"], 400, new_email=new_email)
        return await show(page, TAB["personal"], email_sent=new_email)

    # -- account settings ------------------------------------------------------------------------
    async def unlink(page: Page, form: FormData) -> Response:
        await account.remove_linked_identity(page.ctx, _text(form, "identity_id", MAX_ID))
        return done(page, SETTINGS, "identity_removed")

    async def delete_page(page: Page, status: int = 200) -> Response:
        methods = await account.login_methods(page.ctx, customer_id(page))
        return layout(page, "account_delete.html", status, kit.gettext(page, "Delete your account"), TAB["settings"],
                      has_password=methods.password, grace_days=page.ctx.policy.account_deletion.grace_days)

    async def delete_get(request: Request) -> Response:
        page = await kit.open(request, with_session=True)
        if page.ctx.principal is None:
            return sign_in(page, DELETE)
        if not is_on(page.ctx, Area.ACCOUNT_DELETION):
            return missing(page)
        return await delete_page(page)

    async def delete(page: Page, form: FormData) -> Response:
        try:
            deletion = await account.delete_account(page.ctx, _text(form, "current_password") or None)
        except InvalidCredentials as exc:
            page.errors = {"current_password": kit.gettext(page, exc.message)}
            return await delete_page(page, 400)
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"currentPassword": "current_password"})
            return await delete_page(page, 400)
        erase_on = format_date(deletion.erase_at, "long", locale=page.locale) if deletion.erase_at else ""
        answer = kit.render(page, "account_deleted.html", title=kit.gettext(page, "Your account is deleted"),
                            erased=deletion.erased, erase_on=erase_on)
        return kit.sessions.end(answer)

    # -- security settings -----------------------------------------------------------------------
    def totp_page(page: Page, enrollment: mfa.TotpEnrollment, status: int = 200) -> Response:
        return layout(page, "account_totp.html", status, kit.gettext(page, "Set up an authenticator app"),
                      TAB["security"], secret=grouped(enrollment.secret),
                      qr=qr_code(enrollment.otpauth_uri, kit.gettext(page, "QR code for your authenticator app")))

    async def totp_start(page: Page, form: FormData) -> Response:
        return totp_page(page, await mfa.enroll_totp(page.ctx))

    async def totp_get(request: Request) -> Response:
        page = await kit.open(request, with_session=True)
        if page.ctx.principal is None:
            return sign_in(page, TOTP)
        if not is_on(page.ctx, Area.SECURITY_SETTINGS):
            return missing(page)
        try:
            pending = await mfa.pending_totp(page.ctx)
        except ReauthenticationRequired:
            return kit.redirect(page, REAUTHENTICATE, next=TOTP)
        except FeatureDisabled:
            return missing(page)
        return totp_page(page, pending) if pending else kit.redirect(page, SECURITY)

    async def totp_confirm(page: Page, form: FormData) -> Response:
        try:
            await mfa.confirm_totp(page.ctx, _text(form, "code", 100))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"code": "code"})
            pending = await mfa.pending_totp(page.ctx)
            if pending is not None:
                return totp_page(page, pending, 400)
            return await show(page, TAB["security"], 400, error=kit.gettext(page, "Start the set-up again."))
        except NotFound:
            return await show(page, TAB["security"], 400, error=kit.gettext(page, "Start the set-up again."))
        return done(page, SECURITY, "totp_added")

    async def email_codes(page: Page, form: FormData) -> Response:
        await mfa.enroll_email(page.ctx)
        return done(page, SECURITY, "email_codes_on")

    async def recovery_codes(page: Page, form: FormData) -> Response:
        generated = await mfa.regenerate_recovery_codes(page.ctx)
        return layout(page, "account_recovery_codes.html", 200, kit.gettext(page, "Your recovery codes"),
                      TAB["security"], codes=generated.codes)

    async def remove_factor(page: Page, form: FormData) -> Response:
        await mfa.remove_factor(page.ctx, _text(form, "factor_id", MAX_ID))
        return done(page, SECURITY, "factor_removed")

    async def password(page: Page, form: FormData) -> Response:
        try:
            await change_password(page.ctx, _text(form, "current_password"), _text(form, "new_password"),
                                  _text(form, "confirm_password"))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {
                "currentPassword": "current_password", "newPassword": "new_password",
                "confirmPassword": "confirm_password"})
            return await show(page, TAB["security"], 400)
        except PasswordPolicyViolation as exc:
            page.errors = {"new_password": password_advice(kit, page, exc)}
            return await show(page, TAB["security"], 400)
        except InvalidCredentials as exc:
            page.errors = {"current_password": kit.gettext(page, exc.message)}
            return await show(page, TAB["security"], 400)
        return done(page, SECURITY, "password_changed")

    async def revoke(page: Page, form: FormData) -> Response:
        await sessions.revoke(page.ctx, _text(form, "session_id", MAX_ID))
        return done(page, SECURITY, "session_ended")

    async def revoke_others(page: Page, form: FormData) -> Response:
        await sessions.revoke_others(page.ctx)
        return done(page, SECURITY, "others_ended")

    async def rename_passkey(page: Page, form: FormData) -> Response:
        passkey_id = _text(form, "passkey_id", MAX_ID)
        try:
            await passkeys.rename(page.ctx, passkey_id, _text(form, "name", 200))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"name": f"passkey_name_{passkey_id}"})
            return await show(page, TAB["security"], 400)
        return done(page, SECURITY, "passkey_renamed")

    async def remove_passkey(page: Page, form: FormData) -> Response:
        await passkeys.remove(page.ctx, _text(form, "passkey_id", MAX_ID))
        return done(page, SECURITY, "passkey_removed")

    def passkey_json(path: str, use: Callable[[Page, FormData], Awaitable[dict[str, Any]]]) -> Route:
        """A step of adding a passkey, for portal.js: a form body in (with the CSRF token), JSON out:
        ``{"publicKey": …}``, ``{"redirect": url}`` (done, or re-authenticate first) or ``{"error": text}``."""
        async def endpoint(request: Request) -> Response:
            form = await read(request, FORM_MAX_FIELDS, PASSKEY_FORM_MAX_BYTES)
            page = await kit.open(request, client_id=_text(form, "client_id", MAX_ID), with_session=True)
            refusal = kit.refusal(page, form, path)
            if refusal is not None:
                logger.warning("page form refused: %s on POST %s", refusal, path)
                return JSONResponse({"error": kit.gettext(
                    page, "For your safety, nothing was changed. Open the page again and submit it from there.")},
                    status_code=403)
            if page.ctx.principal is None:
                return JSONResponse({"redirect": kit.url(page, SIGN_IN, next=SECURITY)}, status_code=401)
            try:
                return JSONResponse(await use(page, form))
            except ReauthenticationRequired:
                return JSONResponse({"redirect": kit.url(page, REAUTHENTICATE, next=SECURITY)}, status_code=401)
            except FeatureDisabled:
                return JSONResponse({"error": kit.gettext(page, "Passkeys are not available here.")},
                                    status_code=404)
            except RateLimited as exc:
                return JSONResponse({"error": too_many(page, exc)}, status_code=429)
            except InvalidInput as exc:
                return JSONResponse({"error": kit.gettext(page, exc.problems[0].message)}, status_code=400)
            except Denied:
                return JSONResponse({"redirect": kit.url(page, SIGN_IN, next=SECURITY)}, status_code=401)
        return page_route(kit, path, endpoint, ["POST"])

    async def passkey_start(page: Page, form: FormData) -> dict[str, Any]:
        return {"publicKey": (await passkeys.start_registration(page.ctx)).public_key}

    async def passkey_finish(page: Page, form: FormData) -> dict[str, Any]:
        try:
            credential = json.loads(str(form.get("credential", "")))
        except ValueError:
            credential = None  # refused by the use case, with its message
        await passkeys.finish_registration(page.ctx, credential, _text(form, "name", 200).strip() or None)
        return {"redirect": kit.url(page, SECURITY, done="passkey_added")}

    # -- privacy and data ------------------------------------------------------------------------
    async def consent(page: Page, form: FormData) -> Response:
        try:
            await consents.set_consent(page.ctx, _text(form, "application_id", MAX_ID), _text(form, "key", 200),
                                       _text(form, "granted", 10) == "yes")
        except ConsentRequired:
            return await show(page, TAB["privacy"], 400, error=kit.gettext(
                page, "This consent is required to use the application and cannot be withdrawn."))
        except (NotFound, InvalidInput):
            return await show(page, TAB["privacy"], 404, error=kit.gettext(
                page, "This consent is not asked for any more. Reload the page."))
        return done(page, PRIVACY, "consent_saved")

    async def download(page: Page, form: FormData) -> Response:
        try:
            chosen = export.ExportFormat(_text(form, "format", 10))
        except ValueError:
            return await show(page, TAB["privacy"], 400, error=kit.gettext(page, "Choose JSON or HTML."))
        link = await export.request_export(page.ctx, chosen)
        return RedirectResponse(link.url, status_code=303)  # the one-time link: the download starts

    # -- re-authentication -----------------------------------------------------------------------
    async def reauthentication_page(page: Page, back: str, status: int = 200, *, notice: str = "",
                                    error: str = "", chosen: str = "") -> Response:
        has_password, factors = await mfa.reauthentication_methods(page.ctx)
        chosen = chosen or (factors[0].value if factors else "")
        return layout(page, "account_reauthenticate.html", status, kit.gettext(page, "Confirm it is you"), None,
                      next=back, has_password=has_password, factors=[f.value for f in factors],
                      factor_labels={f.value: kit.gettext(page, FACTOR_LABELS[f]) for f in factors if f in FACTOR_LABELS},
                      chosen=chosen, can_send=FactorType.EMAIL_OTP in factors,
                      max_age=page.ctx.policy.reauthentication_max_age_minutes, notice=notice, error=error)

    def returning(value: str | None) -> str:
        return value if value in RETURNS else ACCOUNT

    async def reauthenticate_get(request: Request) -> Response:
        page = await kit.open(request, with_session=True)
        back = returning(request.query_params.get("next"))
        if page.ctx.principal is None:
            return sign_in(page, back)
        return await reauthentication_page(page, back)

    async def reauthenticate(request: Request) -> Response:
        form = await read(request)
        page = await kit.open(request, client_id=_text(form, "client_id", MAX_ID), with_session=True)
        back = returning(_text(form, "next", 200))
        refusal = kit.refusal(page, form, REAUTHENTICATE)
        if refusal is not None:
            return kit.refused(page, REAUTHENTICATE, refusal, kit.url(page, REAUTHENTICATE, next=back))
        if page.ctx.principal is None:
            return sign_in(page, back)
        by_password = "password" in form
        chosen = _text(form, "factor", 20)
        factor = FactorType(chosen) if not by_password and chosen in FactorType.__members__ else None
        try:
            signed_in = await sessions.reauthenticate(
                page.ctx, password=_text(form, "password") if by_password else None, factor=factor,
                code=None if by_password else _text(form, "code", 100))
        except InvalidInput as exc:
            page.errors = kit.field_errors(page, exc.problems, {"password": "password", "code": "code",
                                                                "factor": "code"})
            return await reauthentication_page(page, back, 400, chosen=chosen)
        except InvalidCredentials as exc:
            page.errors = {"password" if by_password else "code": kit.gettext(page, exc.message)}
            return await reauthentication_page(page, back, 400, chosen=chosen)
        except RateLimited as exc:
            return await reauthentication_page(page, back, 429, error=too_many(page, exc), chosen=chosen)
        except Denied:
            return kit.sessions.end(sign_in(page, back))
        return kit.sessions.start(kit.redirect(page, back, done="reauthenticated"), signed_in)

    async def reauthenticate_send(request: Request) -> Response:
        form = await read(request)
        page = await kit.open(request, client_id=_text(form, "client_id", MAX_ID), with_session=True)
        back = returning(_text(form, "next", 200))
        refusal = kit.refusal(page, form, REAUTHENTICATE_SEND)
        if refusal is not None:
            return kit.refused(page, REAUTHENTICATE_SEND, refusal, kit.url(page, REAUTHENTICATE, next=back))
        if page.ctx.principal is None:
            return sign_in(page, back)
        email_otp = FactorType.EMAIL_OTP.value
        try:
            await mfa.send_reauthentication_code(page.ctx)
        except FeatureDisabled:
            return await reauthentication_page(page, back, 400, chosen=email_otp, error=kit.gettext(
                page, "Emailed codes are not one of your ways to confirm it is you."))
        except RateLimited:
            return await reauthentication_page(page, back, 429, chosen=email_otp, error=kit.gettext(
                page, "No more codes can be sent for now. Please try again later."))
        return await reauthentication_page(page, back, chosen=email_otp,
                                           notice=kit.gettext(page, "We emailed you a code."))

    personal, settings, security, privacy = (TAB[key] for key in ("personal", "settings", "security", "privacy"))
    return [
        get(ACCOUNT, lambda request: tab_page(request, None)),
        *(get(tab.path, lambda request, tab=tab: tab_page(request, tab)) for tab in TABS),
        action(PERSONAL, personal, save_profile, max_fields=PROFILE_MAX_FIELDS),
        action(EMAIL_CHANGE, personal, request_email_change),
        action(UNLINK, settings, unlink,
               not_found=N_("This linked account is not one of yours, or is unlinked already.")),
        get(DELETE, delete_get),
        action(DELETE, settings, delete, area=Area.ACCOUNT_DELETION, back=DELETE),
        get(TOTP, totp_get),
        action(TOTP, security, totp_start),
        action(TOTP_CONFIRM, security, totp_confirm, back=TOTP),
        action(EMAIL_CODES, security, email_codes),
        action(RECOVERY_CODES, security, recovery_codes),
        action(FACTOR_REMOVE, security, remove_factor,
               not_found=N_("This second factor is not one of yours, or is removed already.")),
        action(PASSWORD, security, password),
        action(SESSION_REVOKE, security, revoke,
               not_found=N_("This session is not one of yours, or has ended already.")),
        action(SESSIONS_REVOKE_OTHERS, security, revoke_others),
        passkey_json(PASSKEY_START, passkey_start),
        passkey_json(PASSKEY_FINISH, passkey_finish),
        action(PASSKEY_RENAME, security, rename_passkey, not_found=PASSKEY_MISSING),
        action(PASSKEY_REMOVE, security, remove_passkey, not_found=PASSKEY_MISSING),
        action(CONSENT, privacy, consent),
        action(EXPORT, privacy, download, area=Area.DATA_EXPORT),
        get(REAUTHENTICATE, reauthenticate_get),
        page_route(kit, REAUTHENTICATE, reauthenticate, ["POST"]),
        page_route(kit, REAUTHENTICATE_SEND, reauthenticate_send, ["POST"]),
    ]
