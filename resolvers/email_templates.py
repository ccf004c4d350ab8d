"""Per-application email templates: the admin side (branding lives with applications: ``resolvers.applications``).

A template is checked when it is saved: each part must compile in the sandbox and render with the
sample data of its kind, within the render budget. Should a saved override still fail when an email
is sent (real data, or a template saved before the budget existed), the shipped default is sent instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import SecurityError

from resolvers import audit
from resolvers.context import Context, RenderPool
from resolvers.errors import NotFound, Problems
from resolvers.mail_templates import MAX_SUBJECT_CHARACTERS, PARTS, RenderedMail, default_source, kinds, render
from resolvers.template_sandbox import TemplateBudgetExceeded
from stores import config, templates
from stores.documents import ApplicationDocument, EmailTemplateDocument

LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
MAX_SUBJECT = 998
MAX_BODY = 100_000

logger = logging.getLogger("resolvers.email_templates")

SAMPLE_CUSTOMER = {"email": "ada@example.com", "username": "ada", "given_name": "Ada", "family_name": "Lovelace"}
SPARSE_CUSTOMER = {**SAMPLE_CUSTOMER, "given_name": None, "family_name": None}
SAMPLE_VARIABLES: dict[str, dict[str, Any]] = {
    "activation": {"customer": SAMPLE_CUSTOMER, "action_url": "https://example.com/activate?token=SAMPLE",
                   "expires_in_minutes": 1440},
    "registration_attempt": {"customer": SAMPLE_CUSTOMER, "signin_hint": "ada@example.com"},
    "password_reset": {"customer": SAMPLE_CUSTOMER, "action_url": "https://example.com/reset-password?token=SAMPLE",
                       "expires_in_minutes": 60},
    "password_changed": {"customer": SAMPLE_CUSTOMER},
    "username_reminder": {"customer": SAMPLE_CUSTOMER},
    "mfa_code": {"customer": SAMPLE_CUSTOMER, "code": "123456", "expires_in_minutes": 10},
    "mfa_factor_added": {"customer": SAMPLE_CUSTOMER, "factor": "Authenticator app"},
    "mfa_factor_removed": {"customer": SAMPLE_CUSTOMER, "factor": "Authenticator app"},
    "email_change_verify": {"customer": {**SAMPLE_CUSTOMER, "email": "ada@example.org", "username": None,
                                         "given_name": None, "family_name": None},
                            "new_email": "ada@example.org",
                            "action_url": "https://example.com/email-change?token=SAMPLE", "expires_in_minutes": 60},
    "email_changed": {"customer": SAMPLE_CUSTOMER, "new_email_hint": "a•••@example.org"},
    "admin_invitation": {"admin": {"email": "grace@example.com"}, "role": "support",
                         "action_url": "https://example.com/admin/invitation?token=SAMPLE", "expires_in_minutes": 4320},
    "admin_password_reset": {"admin": {"email": "grace@example.com"},
                             "action_url": "https://example.com/admin/reset-password?token=SAMPLE",
                             "expires_in_minutes": 60},
    "account_deletion_scheduled": {"customer": SAMPLE_CUSTOMER, "deletion_date": "2030-01-31",
                                   "action_url": "https://example.com/account/restore?token=SAMPLE",
                                   "expires_in_minutes": 43200},
    "account_deleted": {"customer": SAMPLE_CUSTOMER},
    "passkey_added": {"customer": SAMPLE_CUSTOMER, "passkey_name": "Chrome on Mac OS X"},
    "identity_linked": {"customer": SAMPLE_CUSTOMER, "provider": "google"},
    "identity_unlinked": {"customer": SAMPLE_CUSTOMER, "provider": "google"},
    "passkey_removed": {"customer": SAMPLE_CUSTOMER, "passkey_name": "Chrome on Mac OS X"},
    "email_sign_in": {"customer": SAMPLE_CUSTOMER, "code": "123456", "expires_in_minutes": 10,
                      "action_url": "https://example.com/sign-in/email?token=SAMPLE"},
}


def branding_variables(application: ApplicationDocument) -> dict[str, Any]:
    b = application.branding
    return {"name": application.name, "logo_url": b.logo_url, "primary_color": b.primary_color,
            "accent_color": b.accent_color, "support_email": b.support_email}


@dataclass
class TemplateView:
    application_id: str
    kind: str
    locale: str | None
    subject: str
    html: str
    text: str
    is_default: bool


async def _application(application_id: str) -> ApplicationDocument:
    application = await config.get_application(application_id) if application_id and len(application_id) <= 64 else None
    if application is None:
        raise NotFound("No application has this id.", field="applicationId")
    return application


def _check_kind_locale(problems: Problems, kind: str, locale: str | None) -> None:
    if kind not in kinds():
        problems.add("kind", "INVALID", f"Choose one of: {', '.join(kinds())}.")
    if locale is not None and not LOCALE_RE.match(locale):
        problems.add("locale", "INVALID", "Use a language tag such as en or fr-CA.")


def _default_view(application_id: str, kind: str) -> TemplateView:
    return TemplateView(application_id, kind, None, *(default_source(kind, p) for p in PARTS), is_default=True)


async def list_templates(ctx: Context, application_id: str) -> list[TemplateView]:
    application = await _application(application_id)
    overrides = {(t.kind, t.locale): t for t in await templates.for_application(application.id)}
    views = []
    for kind in kinds():
        if (kind, None) not in overrides:
            views.append(_default_view(application.id, kind))
    for (kind, locale), t in sorted(overrides.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        views.append(TemplateView(application.id, kind, locale, t.subject, t.html, t.text, is_default=False))
    return sorted(views, key=lambda v: (v.kind, v.locale or ""))


def _samples(kind: str, application: ApplicationDocument) -> list[dict[str, Any]]:
    full = {**SAMPLE_VARIABLES[kind], "application": branding_variables(application)}
    sparse = {**full, "application": {**full["application"], "logo_url": None, "support_email": None}}
    if "customer" in full:
        sparse["customer"] = SPARSE_CUSTOMER
    return [full, sparse]


async def validate_sources(pool: RenderPool, kind: str, sources: dict[str, str],
                           application: ApplicationDocument) -> None:
    """InvalidInput naming each part (``subject``/``html``/``text``) that fails; see docs/recovery.md for the codes."""
    problems = Problems()
    for part in PARTS:
        source = sources.get(part) or ""
        limit = MAX_SUBJECT if part == "subject" else MAX_BODY
        if not source.strip():
            problems.add(part, "REQUIRED", f"The {part} cannot be empty.")
            continue
        if len(source) > limit:
            problems.add(part, "TOO_LONG", f"Use at most {limit} characters.")
            continue
        try:
            for sample in _samples(kind, application):  # filled in, and with every optional value missing
                rendered = await pool.render(source, part, sample)
        except TemplateBudgetExceeded as exc:
            problems.add(part, exc.code, str(exc))
            continue
        except TemplateSyntaxError as exc:
            problems.add(part, "TEMPLATE_SYNTAX", f"Line {exc.lineno}: {exc.message}")
            continue
        except SecurityError as exc:
            problems.add(part, "TEMPLATE_UNSAFE", f"Not allowed in templates: {exc}")
            continue
        except TemplateError as exc:
            problems.add(part, "TEMPLATE_RENDER", f"Does not render with sample data: {exc.message or exc}")
            continue
        except Exception as exc:  # anything a template can raise at render time is a template problem
            problems.add(part, "TEMPLATE_RENDER", f"Does not render with sample data: {type(exc).__name__}")
            continue
        if part == "subject" and len(" ".join(rendered.split())) > MAX_SUBJECT_CHARACTERS:
            problems.add(part, "TEMPLATE_TOO_LARGE",
                         f"The subject must render to at most {MAX_SUBJECT_CHARACTERS} characters.")
            continue
        if part != "subject" and "action_url" in SAMPLE_VARIABLES[kind] \
                and SAMPLE_VARIABLES[kind]["action_url"] not in rendered:
            problems.add(part, "MISSING_LINK", "This email must contain {{ action_url }}.")
    problems.raise_if_any()


async def update(ctx: Context, *, application_id: str, kind: str, locale: str | None,
                 subject: str, html: str, text: str) -> TemplateView:
    problems = Problems()
    _check_kind_locale(problems, kind, locale)
    problems.raise_if_any()
    application = await _application(application_id)
    await validate_sources(ctx.render_pool, kind, {"subject": subject, "html": html, "text": text}, application)
    await templates.upsert(EmailTemplateDocument(
        id=templates.template_id(application.id, kind, locale), application_id=application.id, kind=kind,
        locale=locale, subject=subject, html=html, text=text, created_at=ctx.now(), updated_at_ms=ctx.now_ms(),
    ))
    await audit.record(ctx, "template.updated", subject_id=application.id, kind=kind, locale=locale)
    return TemplateView(application.id, kind, locale, subject, html, text, is_default=False)


async def reset(ctx: Context, *, application_id: str, kind: str, locale: str | None) -> TemplateView:
    """Remove an override; what applies afterwards is returned (a less specific override, or the default)."""
    problems = Problems()
    _check_kind_locale(problems, kind, locale)
    problems.raise_if_any()
    application = await _application(application_id)
    await templates.delete(application.id, kind, locale)
    await audit.record(ctx, "template.reset", subject_id=application.id, kind=kind, locale=locale)
    fallback = await templates.best_match(application.id, kind, locale)
    if fallback is None:
        return _default_view(application.id, kind)
    return TemplateView(application.id, kind, fallback.locale, fallback.subject, fallback.html, fallback.text, False)


async def render_for(pool: RenderPool, application: ApplicationDocument, kind: str, variables: dict[str, Any],
                     locale: str | None) -> RenderedMail:
    """What a customer receives: the best override (application+locale, application), else the default
    (in the locale's language where the default is translated).

    An override that fails to render (over the budget, an error with real data, anything) gives way to
    the shipped default of its kind, with a warning naming the application, kind and locale; never
    the variables, which hold live links.
    """
    variables = {**variables, "application": branding_variables(application)}
    override = await templates.best_match(application.id, kind, locale)
    if override is not None:
        try:
            return await render(pool, kind, variables, {p: getattr(override, p) for p in PARTS})
        except Exception as exc:
            logger.warning("email template override failed to render (%s); sent the default instead: "
                           "application=%s kind=%s locale=%s", type(exc).__name__, application.id, kind,
                           override.locale or "-")
    return await render(pool, kind, variables, locale=locale)


async def preview(ctx: Context, *, application_id: str, kind: str, locale: str | None) -> RenderedMail:
    problems = Problems()
    _check_kind_locale(problems, kind, locale)
    problems.raise_if_any()
    application = await _application(application_id)
    return await render_for(ctx.render_pool, application, kind, SAMPLE_VARIABLES[kind], locale)
