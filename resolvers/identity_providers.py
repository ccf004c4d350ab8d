"""Identity providers for social sign-in, the admin side (``applications:read`` / ``applications:write``).

Each application has its own providers, named by a short slug (``google``, ``acme-sso``) that is also the
last segment of its callback URL (``{GATEWAY_PUBLIC_URL}/oauth/callback/<name>``, to register at the
provider). A provider is either

- a generic OpenID Connect provider (``OIDC``), found through its discovery URL (OpenID Connect Discovery
  1.0: ``<issuer>/.well-known/openid-configuration``), or
- a preset (:data:`PRESETS`) that fills the discovery URL, or the endpoints, and the scopes: Google,
  Microsoft (the ``common`` endpoint: work, school and personal accounts), Apple, and GitHub, which is
  OAuth 2 only (the identity comes from its user API, ``/user`` and ``/user/emails``).

The client secret is encrypted at rest (Fernet under HKDF-SHA-256 of ``GATEWAY_SECRET_KEY``, info
:data:`SECRET_KEY_INFO`) and never readable through the API (``clientSecretSet`` says whether one is
set). URLs must be ``https://``; ``http://`` only on a loopback host (a provider on the same machine).
Changes carry an optional ``version`` (``Conflict`` when it changed since it was read).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as InvalidFernetToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from resolvers import applications, audit
from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, Problems
from resolvers.security import is_text, new_id
from resolvers.urls import target
from stores import identity_providers as store
from stores.documents import IdentityProviderDocument, IdentityProviderType

SECRET_KEY_INFO = b"identity-gateway identity provider client secret v1"
CALLBACK_PATH = "/oauth/callback"
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
# RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,100}$")
MAX_SCOPES = 20
MAX_DISPLAY_NAME = 100
MAX_CLIENT_ID = 500
MAX_CLIENT_SECRET = 4096  # Apple's client secret is a signed JWT
MAX_ID = 64
UNVERSIONED_ATTEMPTS = 3


@dataclass(frozen=True)
class Preset:
    """What a provider type fills in: OpenID Connect providers a discovery URL, OAuth 2 ones their endpoints."""

    display_name: str
    scopes: tuple[str, ...]
    discovery_url: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    emails_endpoint: str | None = None
    issuer: str | None = None  # OAuth 2 providers: the issuer recorded with their identities
    authorize_params: tuple[tuple[str, str], ...] = ()  # added to the authorization request
    openid: bool = True  # OpenID Connect (an ID token); False: OAuth 2 and a user API


PRESETS: dict[IdentityProviderType, Preset] = {
    IdentityProviderType.OIDC: Preset("OpenID Connect", ("openid", "email", "profile")),
    IdentityProviderType.GOOGLE: Preset(
        "Google", ("openid", "email", "profile"),
        discovery_url="https://accounts.google.com/.well-known/openid-configuration"),
    IdentityProviderType.MICROSOFT: Preset(
        "Microsoft", ("openid", "email", "profile"),
        discovery_url="https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"),
    # Apple sends name and email only with response_mode=form_post: the callback also accepts a POST.
    IdentityProviderType.APPLE: Preset(
        "Apple", ("openid", "email", "name"), discovery_url="https://appleid.apple.com/.well-known/openid-configuration",
        authorize_params=(("response_mode", "form_post"),)),
    IdentityProviderType.GITHUB: Preset(
        "GitHub", ("read:user", "user:email"),
        authorization_endpoint="https://github.com/login/oauth/authorize",
        token_endpoint="https://github.com/login/oauth/access_token",
        userinfo_endpoint="https://api.github.com/user", emails_endpoint="https://api.github.com/user/emails",
        issuer="https://github.com", openid=False),
}


def _cipher(secret_key: bytes) -> Fernet:
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=SECRET_KEY_INFO).derive(secret_key)
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret_key: bytes, client_secret: str) -> str:
    return _cipher(secret_key).encrypt(client_secret.encode()).decode()


def client_secret(ctx: Context, provider: IdentityProviderDocument) -> str | None:
    """The provider's client secret in clear, to authenticate at its token endpoint; None when none is set,
    or when it was sealed under another ``GATEWAY_SECRET_KEY`` (set it again)."""
    if provider.client_secret is None:
        return None
    try:
        return _cipher(ctx.rules.secret_key).decrypt(provider.client_secret.encode()).decode()
    except InvalidFernetToken:
        return None


def callback_url(ctx: Context, provider: IdentityProviderDocument) -> str:
    """The redirect URI to register at the provider: ``{GATEWAY_PUBLIC_URL}/oauth/callback/<name>``."""
    return f"{ctx.rules.public_url}{CALLBACK_PATH}/{provider.name}"


def discovery_document_url(url: str) -> str:
    """An issuer URL or a discovery URL, as the discovery URL (the issuer + ``/.well-known/openid-configuration``)."""
    url = url.strip()
    return url if url.endswith(DISCOVERY_SUFFIX) else url.rstrip("/") + DISCOVERY_SUFFIX


def provider_url_allowed(url: str) -> bool:
    """``https://``, or ``http://`` on a loopback host; no user name, dot segments or encoded path tricks."""
    return target(url) is not None


# -- reading ----------------------------------------------------------------------------------------

async def list_for_application(ctx: Context, application_id: str) -> list[IdentityProviderDocument]:
    """The application's providers by name; empty for an unknown application."""
    if not application_id or len(application_id) > MAX_ID or not is_text(application_id):
        return []
    return await store.list_for_application(application_id)


async def _existing(provider_id: str) -> IdentityProviderDocument:
    provider = await store.get_provider(provider_id) if provider_id and len(provider_id) <= MAX_ID \
        and is_text(provider_id) else None
    if provider is None:
        raise NotFound("No identity provider has this id.", field="id")
    return provider


# -- validation -------------------------------------------------------------------------------------

def _text(problems: Problems, value: Any, field: str, limit: int, *, required: bool = True) -> str | None:
    text = (value or "").strip() if isinstance(value, str) or value is None else ""
    if not text:
        if required:
            problems.add(field, "REQUIRED", "This field is required.")
        return None
    if len(text) > limit or not is_text(text) or any(not c.isprintable() for c in text):
        problems.add(field, "INVALID", f"Use 1 to {limit} printable characters.")
    return text


def _scopes(problems: Problems, scopes: Any, preset: Preset) -> list[str]:
    if scopes is None:
        return list(preset.scopes)
    kept: list[str] = []
    if len(scopes) > MAX_SCOPES:
        problems.add("scopes", "TOO_LONG", f"Use at most {MAX_SCOPES} scopes.")
        return kept
    for index, scope in enumerate(scopes):
        if not isinstance(scope, str) or not SCOPE_RE.match(scope):
            problems.add(f"scopes.{index}", "INVALID", "A scope is 1 to 100 visible ASCII characters, without spaces, "
                                                       "quotes or backslashes (RFC 6749 3.3).")
        elif scope not in kept:
            kept.append(scope)
    if preset.openid and "openid" not in kept:
        kept.insert(0, "openid")  # an OpenID Connect request must ask for it
    return kept


def _validate(ctx: Context, problems: Problems, changes: dict[str, Any],
              current: IdentityProviderDocument | None) -> dict[str, Any]:
    """The fields to write from the given changes, each checked (``current``: the provider being changed)."""
    fields: dict[str, Any] = {}
    if current is not None:
        for fixed, name in (("application_id", "applicationId"), ("type", "type")):
            if fixed in changes:
                problems.add(name, "NOT_ALLOWED", "This cannot change: create another provider instead.")
    kind = IdentityProviderType(changes.get("type") or IdentityProviderType.OIDC) if current is None else current.type
    preset = PRESETS[kind]
    if "name" in changes or current is None:
        name = (changes.get("name") or "").strip()
        if not NAME_RE.match(name):
            problems.add("name", "INVALID" if name else "REQUIRED",
                         "Use 1 to 32 lower-case letters, digits and hyphens (it is part of the callback URL).")
        fields["name"] = name
    if "display_name" in changes or current is None:
        fields["display_name"] = _text(problems, changes.get("display_name"), "displayName", MAX_DISPLAY_NAME,
                                       required=False) or preset.display_name
    if "client_id" in changes or current is None:
        fields["client_id"] = _text(problems, changes.get("client_id"), "clientId", MAX_CLIENT_ID)
    if "client_secret" in changes:
        secret = changes["client_secret"]
        # RFC 6749 A.2: client_secret = *VSCHAR (printable ASCII, space included)
        if secret is not None and (not secret or len(secret) > MAX_CLIENT_SECRET
                                   or any(not " " <= c <= "~" for c in secret)):
            problems.add("clientSecret", "INVALID", f"Use 1 to {MAX_CLIENT_SECRET} printable ASCII characters, or "
                                                    "null to remove it.")
        else:
            fields["client_secret"] = seal_secret(ctx.rules.secret_key, secret) if secret is not None else None
    if "scopes" in changes or current is None:
        fields["scopes"] = _scopes(problems, changes.get("scopes"), preset)
    if "enabled" in changes or current is None:
        enabled = changes.get("enabled")
        fields["enabled"] = True if enabled is None else bool(enabled)
    if "discovery_url" in changes or current is None:
        fields.update(_endpoints(problems, kind, preset, changes.get("discovery_url")))
    return fields


def _endpoints(problems: Problems, kind: IdentityProviderType, preset: Preset, discovery_url: Any) -> dict[str, Any]:
    """Where the provider is: an OpenID Connect provider's discovery URL (given, else the preset's), an
    OAuth 2 provider's endpoints (the preset's; a discovery URL is refused)."""
    if not preset.openid:
        if discovery_url is not None:
            problems.add("discoveryUrl", "NOT_ALLOWED", f"{preset.display_name} is not an OpenID Connect provider.")
        return {"discovery_url": None, "authorization_endpoint": preset.authorization_endpoint,
                "token_endpoint": preset.token_endpoint, "userinfo_endpoint": preset.userinfo_endpoint,
                "emails_endpoint": preset.emails_endpoint}
    url = discovery_url if isinstance(discovery_url, str) and discovery_url.strip() else preset.discovery_url
    if url is None:
        problems.add("discoveryUrl", "REQUIRED", "Give the provider's issuer or discovery URL.")
        return {}
    url = discovery_document_url(url)
    if not provider_url_allowed(url):
        problems.add("discoveryUrl", "INVALID", "Use an https:// URL (http only on localhost, 127.0.0.1 or [::1]), "
                                                "without user name or . and .. segments.")
    return {"discovery_url": url}


# -- writing ----------------------------------------------------------------------------------------

def _duplicate_name(problems: Problems | None = None) -> Problems:
    problems = problems or Problems()
    problems.add("name", "TAKEN", "The application has a provider with this name.")
    return problems


async def create(ctx: Context, changes: dict[str, Any]) -> IdentityProviderDocument:
    """A new provider for an application: ``application_id``, ``name``, ``type`` (default OIDC),
    ``client_id``, and optionally ``display_name``, ``client_secret``, ``scopes``, ``discovery_url`` (OIDC:
    required; other OpenID Connect presets: instead of the preset's, e.g. a Microsoft tenant), ``enabled``.
    InvalidInput naming every field at fault (``applicationId`` NOT_FOUND, ``name`` TAKEN, ...)."""
    problems = Problems()
    application_id = changes.get("application_id") or ""
    if await applications.get(ctx, application_id) is None:
        problems.add("applicationId", "NOT_FOUND", "No application has this id.")
    fields = _validate(ctx, problems, changes, None)
    problems.raise_if_any()
    now = ctx.now()
    provider = IdentityProviderDocument.model_validate({
        **fields, "_id": new_id(), "application_id": application_id,
        "type": IdentityProviderType(changes.get("type") or IdentityProviderType.OIDC),
        "created_at": now, "updated_at_ms": ctx.now_ms()})
    try:
        await store.insert_provider(provider)
    except store.DuplicateProvider:
        _duplicate_name().raise_if_any()
    await audit.record(ctx, "identity_provider.created", subject_id=provider.id, target_kind="identity_provider",
                       application=application_id, name=provider.name, type=provider.type.value)
    return provider


async def update(ctx: Context, provider_id: str, changes: dict[str, Any],
                 version: int | None = None) -> IdentityProviderDocument:
    """Change the given fields (not the application or the type); ``client_secret`` null removes it.
    ``version``: the one it was read at (Conflict if it changed since); None: any (a raced write re-reads
    and re-checks). NotFound, InvalidInput (nothing written), Conflict."""
    for attempt in range(UNVERSIONED_ATTEMPTS):
        current = await _existing(provider_id)
        if version is not None and version != current.version:
            raise Conflict(current.version)
        problems = Problems()
        fields = _validate(ctx, problems, changes, current)
        problems.raise_if_any()
        if not fields:
            return current
        try:
            updated = await store.update_provider(current.id, current.version, fields, ctx.now_ms())
        except store.DuplicateProvider:
            _duplicate_name().raise_if_any()
        if updated is not None:
            await audit.record(ctx, "identity_provider.updated", subject_id=updated.id,
                               target_kind="identity_provider", fields=sorted(fields), version=updated.version)
            return updated
        again = await _existing(provider_id)
        if version is not None or attempt == UNVERSIONED_ATTEMPTS - 1:
            raise Conflict(again.version)
    raise AssertionError("unreachable")


async def delete(ctx: Context, provider_id: str) -> None:
    """Delete a provider. Identities customers linked through it stay on their accounts (they match again if
    a provider of the same issuer is added back); its flows in progress fail. NotFound for an unknown id."""
    provider = await _existing(provider_id)
    if not await store.delete_provider(provider.id):
        raise NotFound("No identity provider has this id.", field="id")
    await audit.record(ctx, "identity_provider.deleted", subject_id=provider.id, target_kind="identity_provider",
                       application=provider.application_id, name=provider.name)
