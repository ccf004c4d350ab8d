"""Applications, the admin side: list, read, create, change, delete, and their consent policy.

An application has a generated public ``client_id`` (``app_`` + 16 random bytes, url-safe), a
self-service policy, branding, ``redirect_urls`` (the allow-list for every link back to its site,
``resolvers.urls``: the own password-reset page must fall within it) and a consent policy. Updates are
partial (``$set`` of the given fields) and bump ``version``; a caller that passes the version it read
gets ``Conflict`` instead of overwriting a change made since.

Every write drops this instance's cache of applications and policies (``ctx.config_cache``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from resolvers import audit
from resolvers.bootstrap import DEFAULT_APPLICATION_ID, DEFAULT_POLICY_ID, DEFAULT_STORE_ID
from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, Problems
from resolvers.identifiers import validate_email
from resolvers.security import is_text
from resolvers.urls import MAX_URL, is_https_url, target, within
from stores import config, identity_providers, templates
from stores.documents import ApplicationDocument, Branding, ConsentItem

CLIENT_ID_PREFIX = "app_"
MAX_ID = 64
MAX_NAME = 100
MAX_REDIRECT_URLS = 20
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CONSENT_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_CONSENT_ITEMS = 50
MAX_CONSENT_TITLE = 200
MAX_CONSENT_DESCRIPTION = 2000
MAX_CONSENT_VERSION = 1_000_000
UNVERSIONED_ATTEMPTS = 3  # an update without a version re-reads and re-checks this often when raced
# WCAG 2.x contrast (success criterion 1.4.3, level AA): 4.5:1 for normal text. The hosted pages draw the
# primary colour as text and links on their white surface, and put text on both brand colours.
AA_NORMAL_TEXT = 4.5
PAGE_SURFACE = "#ffffff"
BLACK, WHITE = "#000000", "#ffffff"


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance (0 black .. 1 white) of a ``#rrggbb`` colour (sRGB)."""
    def channel(hex_pair: str) -> float:
        value = int(hex_pair, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(color[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio of two ``#rrggbb`` colours: 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def readable_text_color(background: str) -> str:
    """Black or white, whichever contrasts more with ``background`` (``#rrggbb``): at least 4.58:1 for
    any background, so text on a brand colour always meets AA (no white on yellow)."""
    return BLACK if contrast_ratio(background, BLACK) >= contrast_ratio(background, WHITE) else WHITE


def new_client_id() -> str:
    """Public, random, unguessable enough that nobody finds another application's by trying."""
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def _changed(ctx: Context) -> None:
    if ctx.config_cache is not None:
        ctx.config_cache.forget()


def _not_found() -> NotFound:
    return NotFound("No application has this id.", field="id")


async def list_applications(ctx: Context) -> list[ApplicationDocument]:
    return await config.list_applications()


async def get(ctx: Context, application_id: str) -> ApplicationDocument | None:
    if not application_id or len(application_id) > MAX_ID or not is_text(application_id):
        return None
    return await config.get_application(application_id)


async def _existing(ctx: Context, application_id: str) -> ApplicationDocument:
    application = await get(ctx, application_id)
    if application is None:
        raise _not_found()
    return application


def _name(problems: Problems, value: Any) -> str:
    name = (value or "").strip()
    if not name or len(name) > MAX_NAME or not is_text(name):
        problems.add("name", "INVALID" if name else "REQUIRED", f"Use 1 to {MAX_NAME} characters.")
    return name


def _branding(problems: Problems, changes: dict[str, Any]) -> dict[str, Any]:
    """The branding fields to set (dotted paths), each checked.

    The primary colour is drawn as text (links, headings' accents) on the pages' white surface, so it
    must reach AA contrast (4.5:1) against it: ``LOW_CONTRAST`` otherwise. Text drawn *on* either brand
    colour (buttons, the application's band) is black or white as :func:`readable_text_color` picks, which
    always reaches AA, so the accent colour needs no rule of its own.
    """
    fields: dict[str, Any] = {}
    for key, name in (("primary_color", "primaryColor"), ("accent_color", "accentColor")):
        if key in changes:
            if not COLOR_RE.match(changes[key] or ""):
                problems.add(f"branding.{name}", "INVALID", "Use a colour such as #1a2b3c.")
            elif key == "primary_color" and contrast_ratio(changes[key], PAGE_SURFACE) < AA_NORMAL_TEXT:
                ratio = contrast_ratio(changes[key], PAGE_SURFACE)
                problems.add(f"branding.{name}", "LOW_CONTRAST",
                             f"Text in this colour on a white page has a contrast of {ratio:.2f}:1; WCAG AA needs "
                             f"{AA_NORMAL_TEXT}:1. Choose a darker colour.")
            fields[f"branding.{key}"] = changes[key]
    if "logo_url" in changes:
        logo = changes["logo_url"]
        if logo is not None and not is_https_url(logo):
            problems.add("branding.logoUrl", "INVALID", "Use an https:// URL, or null to remove the logo.")
        fields["branding.logo_url"] = logo
    if "support_email" in changes:
        support = changes["support_email"]
        if support is not None:
            support = validate_email(problems, support, "branding.supportEmail")
        fields["branding.support_email"] = support
    return fields


def _redirect_urls(problems: Problems, urls: Any) -> list[str]:
    if urls is None:
        problems.add("redirectUrls", "REQUIRED", "Give a list (empty for none).")
        return []
    if len(urls) > MAX_REDIRECT_URLS:
        problems.add("redirectUrls", "TOO_LONG", f"Use at most {MAX_REDIRECT_URLS} URLs.")
        return []
    kept, seen = [], set()
    for index, url in enumerate(urls):
        url = (url or "").strip()
        parsed = target(url, entry=True)
        if parsed is None:
            problems.add(f"redirectUrls.{index}", "INVALID",
                         f"Use an absolute https:// URL (http only for localhost, 127.0.0.1 or [::1]) of at most "
                         f"{MAX_URL} characters, without user name, query, fragment, or . and .. segments.")
        elif parsed in seen:
            problems.add(f"redirectUrls.{index}", "DUPLICATE", "This URL is already in the list.")
        seen.add(parsed)
        kept.append(url)
    return kept


def _validate(problems: Problems, changes: dict[str, Any], current: ApplicationDocument | None) -> dict[str, Any]:
    """The fields to set (dotted paths) from the given changes, each checked against the result."""
    fields: dict[str, Any] = {}
    if "name" in changes or current is None:
        fields["name"] = _name(problems, changes.get("name"))
    if "branding" in changes:
        fields.update(_branding(problems, changes["branding"] or {}))
    redirect_urls = current.redirect_urls if current is not None else []
    if "redirect_urls" in changes:
        redirect_urls = fields["redirect_urls"] = _redirect_urls(problems, changes["redirect_urls"])
    reset_url = current.password_reset_url if current is not None else None
    if "password_reset_url" in changes:
        reset_url = fields["password_reset_url"] = changes["password_reset_url"]
        if reset_url is not None and not is_https_url(reset_url):
            problems.add("passwordResetUrl", "INVALID",
                         "Use an https:// URL (the link carries a reset token), or null for the hosted page.")
        elif reset_url is not None and not within(redirect_urls, reset_url):
            problems.add("passwordResetUrl", "NOT_ALLOWED",
                         "This URL is not within the application's redirectUrls: add its origin and path there.")
    elif reset_url is not None and "redirect_urls" in changes and not within(redirect_urls, reset_url):
        problems.add("redirectUrls", "NOT_ALLOWED",
                     "The application's passwordResetUrl would fall outside these URLs: change it first, or keep "
                     "a URL that covers it.")
    return fields


async def _check_policy(problems: Problems, changes: dict[str, Any], fields: dict[str, Any]) -> None:
    if "policy_id" not in changes:
        return
    policy_id = changes["policy_id"] or ""
    exists = len(policy_id) <= MAX_ID and is_text(policy_id) and await config.get_policy(policy_id) is not None
    if not exists:
        problems.add("policyId", "NOT_FOUND", "No self-service policy has this id.")
    fields["policy_id"] = policy_id


async def create(ctx: Context, changes: dict[str, Any]) -> ApplicationDocument:
    """A new application in the default identity store: the given fields, defaults for the rest (the
    default self-service policy when no ``policy_id``). InvalidInput when a field is invalid."""
    problems = Problems()
    fields = _validate(problems, changes, None)
    await _check_policy(problems, changes, fields)
    problems.raise_if_any()
    branding = Branding().model_dump()
    branding.update({path.split(".", 1)[1]: value for path, value in fields.items() if path.startswith("branding.")})
    application = ApplicationDocument.model_validate({
        "_id": f"app-{secrets.token_hex(8)}", "client_id": new_client_id(), "name": fields["name"],
        "policy_id": fields.get("policy_id", DEFAULT_POLICY_ID), "identity_store_id": DEFAULT_STORE_ID,
        "branding": branding, "redirect_urls": fields.get("redirect_urls", []),
        "password_reset_url": fields.get("password_reset_url"), "created_at": ctx.now(), "updated_at_ms": ctx.now_ms(),
    })
    await config.insert_application(application)
    _changed(ctx)
    await audit.record(ctx, "application.created", subject_id=application.id, client_id=application.client_id)
    return application


async def _change(ctx: Context, application_id: str, version: int | None,
                  fields_for: Callable[[ApplicationDocument], Awaitable[dict[str, Any]]],
                  ) -> tuple[ApplicationDocument, dict[str, Any]]:
    """Read the application, work out the fields to set from it (``fields_for`` raises InvalidInput), and
    write them only over the version just read, bumping it: the rules checked against what was read hold
    for what is stored. With the caller's ``version`` a stale read is a Conflict; without one, a write
    raced by another re-reads and re-checks (up to UNVERSIONED_ATTEMPTS times). The application afterwards,
    and the fields written (none: nothing was)."""
    for attempt in range(UNVERSIONED_ATTEMPTS):
        application = await _existing(ctx, application_id)
        if version is not None and version != application.version:
            raise Conflict(application.version)
        fields = await fields_for(application)
        if not fields:
            return application, fields
        updated = await config.update_if_version(ApplicationDocument, application.id, application.version,
                                                 {**fields, "updated_at_ms": ctx.now_ms()})
        if updated is not None:
            _changed(ctx)
            return updated, fields
        again = await config.get_application(application.id)
        if again is None:
            raise _not_found()
        if version is not None or attempt == UNVERSIONED_ATTEMPTS - 1:
            raise Conflict(again.version)
    raise AssertionError("unreachable")


async def update(ctx: Context, application_id: str, changes: dict[str, Any],
                 version: int | None = None) -> ApplicationDocument:
    """Change the given fields (name, policy, branding, redirect URLs, own reset page); the application
    afterwards (the same when no field is given). ``version``: the one it was read at (Conflict if it
    changed since); None: any. NotFound for an unknown id; InvalidInput when a field is invalid (nothing
    is written then)."""
    async def fields_for(application: ApplicationDocument) -> dict[str, Any]:
        problems = Problems()
        fields = _validate(problems, changes, application)
        await _check_policy(problems, changes, fields)
        problems.raise_if_any()
        return fields

    updated, written = await _change(ctx, application_id, version, fields_for)
    if written:
        await audit.record(ctx, "application.updated", subject_id=updated.id, fields=sorted(written),
                           version=updated.version)
    return updated


async def delete(ctx: Context, application_id: str) -> None:
    """Delete an application, its email template overrides and identity providers. Its identity store and customers stay
    (the store is not the application). NotFound for an unknown id; InvalidInput (``id`` NOT_ALLOWED)
    for the default application, which serves every request without ``X-Application-Id``."""
    application = await _existing(ctx, application_id)
    if application.is_default or application.id == DEFAULT_APPLICATION_ID:
        problems = Problems()
        problems.add("id", "NOT_ALLOWED", "The default application cannot be deleted.")
        problems.raise_if_any()
    if not await config.delete_application(application.id):
        raise _not_found()
    await templates.delete_for_application(application.id)
    await identity_providers.delete_for_application(application.id)
    _changed(ctx)
    await audit.record(ctx, "application.deleted", subject_id=application.id, client_id=application.client_id)


def _consent_items(problems: Problems, items: list[dict[str, Any]], current: list[ConsentItem]) -> list[ConsentItem]:
    if len(items) > MAX_CONSENT_ITEMS:
        problems.add("items", "TOO_LONG", f"Use at most {MAX_CONSENT_ITEMS} items.")
        return []
    before = {item.key: item.version for item in current}
    kept, seen = [], set()
    for index, item in enumerate(items):
        at = f"items.{index}"
        key = (item.get("key") or "").strip()
        title = (item.get("title") or "").strip()
        description = (item.get("description") or "").strip()
        version = item.get("version") or 1
        if not CONSENT_KEY_RE.match(key):
            problems.add(f"{at}.key", "INVALID",
                         "Use 1 to 64 lower-case letters, digits and underscores, starting with a letter.")
        elif key in seen:
            problems.add(f"{at}.key", "DUPLICATE", "Each key once.")
        seen.add(key)
        if not title:
            problems.add(f"{at}.title", "REQUIRED", "Give the item a title.")
        elif len(title) > MAX_CONSENT_TITLE or not is_text(title):
            problems.add(f"{at}.title", "INVALID", f"Use 1 to {MAX_CONSENT_TITLE} characters of text.")
        if len(description) > MAX_CONSENT_DESCRIPTION or not is_text(description):
            problems.add(f"{at}.description", "INVALID", f"Use at most {MAX_CONSENT_DESCRIPTION} characters of text.")
        if not 1 <= version <= MAX_CONSENT_VERSION:
            problems.add(f"{at}.version", "OUT_OF_RANGE", f"Use a whole number from 1 to {MAX_CONSENT_VERSION}.")
        elif version < before.get(key, 1):
            problems.add(f"{at}.version", "OUT_OF_RANGE",
                         f"Versions only grow: use {before[key]} to keep it, or more to ask for re-acceptance.")
        kept.append(ConsentItem(key=key, title=title, description=description, version=version,
                                required=bool(item.get("required"))))
    return kept


async def update_consent_policy(ctx: Context, application_id: str, items: list[dict[str, Any]],
                                version: int | None = None) -> ApplicationDocument:
    """Replace the application's consent items (``key title description version required``).

    Keys are unique; an item's version never goes down (raising it asks every customer to accept the
    item again). ``version`` as in :func:`update`. NotFound, Conflict, InvalidInput (nothing written).
    """
    async def fields_for(application: ApplicationDocument) -> dict[str, Any]:
        problems = Problems()
        consent = _consent_items(problems, items, application.consent_policy)
        problems.raise_if_any()
        return {"consent_policy": [item.model_dump() for item in consent]}

    updated, _ = await _change(ctx, application_id, version, fields_for)
    await audit.record(ctx, "application.consent_policy_updated", subject_id=updated.id,
                       items={item.key: item.version for item in updated.consent_policy}, version=updated.version)
    return updated
