"""Settings, read from environment variables prefixed with GATEWAY_ (see docs/configuration.md)."""

from __future__ import annotations

import ipaddress
import socket
from enum import Enum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.client_ip import TrustedProxies

DEFAULT_SECRET = "insecure-development-secret-change-me"


class Environment(str, Enum):
    development = "development"
    production = "production"


class ConfigurationError(RuntimeError):
    """Raised at start-up when the settings are not safe to run with."""


class WebAuthnRelyingParty(BaseModel):
    """Where passkeys of an application work: ``rp_id`` (a domain) and the ``origins`` of its pages."""

    model_config = ConfigDict(extra="forbid")

    rp_id: str
    origins: list[str]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    env: Environment = Environment.development
    mongodb_uri: SecretStr | None = None
    database_name: str = "identity_gateway"
    data_dir: Path = Path("./var")
    smtp_url: SecretStr | None = None
    mail_from: str = "Identity Gateway <no-reply@localhost>"
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    log_level: str = "INFO"
    # json or text; unset: json in production, text in development.
    log_format: Literal["json", "text"] | None = None
    # Server selection and connect timeout; socket reads time out at twice this.
    mongodb_timeout_ms: int = Field(default=3000, ge=100, le=120_000)
    # When set, GET /metrics requires `Authorization: Bearer <token>`; unset in production: /metrics is off (404).
    metrics_token: SecretStr | None = None
    # Largest request body accepted, in bytes (any path); larger ones are refused with 413.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Sessions
    session_absolute_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    session_idle_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    session_touch_interval_seconds: int = Field(default=60, ge=1)
    # Live sessions one customer (or admin) keeps; a sign-in beyond it ends the least recently active ones.
    max_sessions_per_subject: int = Field(default=50, ge=1, le=10_000)
    admin_session_absolute_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    admin_session_idle_ttl_seconds: int = Field(default=30 * 60, ge=60)

    # Password hashing: argon2id, OWASP parameters (19 MiB, t=2, p=1).
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19 * 1024, ge=1024)
    argon2_parallelism: int = Field(default=1, ge=1)
    hash_concurrency: int = Field(default=0, ge=0, description="0 means one per CPU core")
    hash_queue_limit: int = Field(default=16, ge=0)
    # Work a request leaves for after its response (reset and reminder mails, activation re-sends):
    # at most this many at once per instance; past it such requests answer RateLimitedError.
    deferred_work_limit: int = Field(default=256, ge=1)

    # Rate limits: "N per window seconds", multiplied by rate_limit_scale.
    rate_limit_scale: float = Field(default=1.0, gt=0)
    # Sign-in (docs/configuration.md#rate-limits): per account from clients without a device token (soft),
    # per account and IP (tight), per device token (a known device's own budget), per IP.
    login_identifier_failures: int = 100
    login_identifier_window_seconds: int = 3600
    login_identifier_ip_failures: int = 10
    login_identifier_ip_window_seconds: int = 900
    login_device_failures: int = 10
    login_device_window_seconds: int = 900
    login_ip_attempts: int = 300
    login_ip_window_seconds: int = 300
    register_ip_attempts: int = 20
    register_ip_window_seconds: int = 3600
    # consentSet answers per customer per window (each writes an event that is kept).
    consent_change_attempts: int = 60
    consent_change_window_seconds: int = 3600
    # "Someone tried to register with your address" mails per address per window (silent over it).
    registration_notice_email_attempts: int = 3
    registration_notice_window_seconds: int = 3600
    activation_resend_email_attempts: int = 3
    activation_resend_ip_attempts: int = 20
    activation_resend_window_seconds: int = 3600
    password_reset_email_attempts: int = 5
    password_reset_ip_attempts: int = 30
    password_reset_window_seconds: int = 3600
    password_reset_token_attempts: int = 10
    # Emailed second-factor codes (sign-in and re-authentication) per account per window.
    mfa_email_code_attempts: int = 5
    mfa_email_code_window_seconds: int = 900
    # Email change: requests per customer (answered RateLimitedError), verification mails per new address (silent).
    email_change_attempts: int = 5
    email_change_address_attempts: int = 3
    email_change_window_seconds: int = 3600

    # GraphQL limits
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 15
    graphql_max_tokens: int = 2000
    graphql_max_directives: int = Field(default=50, ge=0)
    # Characters in a GraphQL document (its `query` text), checked before parsing.
    graphql_max_document_characters: int = Field(default=32_768, ge=1024)

    # Admin-provided email templates: each part renders off the event loop within this budget.
    template_render_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    template_max_output_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=16 * 1024 * 1024)
    template_render_threads: int = Field(default=1, ge=1, le=4)

    # Social sign-in (docs/sign-in-methods.md): each request to an identity provider (discovery, JWKS, token,
    # user API) times out after this, and its response may be at most this large; discovery documents and
    # JWKS are kept this long.
    oidc_http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    oidc_max_response_bytes: int = Field(default=256 * 1024, ge=4096, le=4 * 1024 * 1024)
    oidc_metadata_cache_seconds: int = Field(default=3600, ge=0, le=86_400)
    # Passkeys (WebAuthn, docs/sign-in-methods.md#passkeys): the relying party id and the origins (comma-separated)
    # whose pages may use them; unset: the host and origin of GATEWAY_PUBLIC_URL (if they can be, else passkeys
    # are off for applications without an override). Per application, by client id, as JSON:
    # {"<client id>": {"rp_id": "shop.example", "origins": ["https://shop.example"]}}.
    webauthn_rp_id: str | None = None
    webauthn_origins: str = ""
    webauthn_applications: dict[str, WebAuthnRelyingParty] = Field(default_factory=dict)
    # Emailed sign-in links and codes: requests per client IP (silent over it) and mails per address per window.
    email_sign_in_ip_attempts: int = 30
    email_sign_in_email_attempts: int = 5
    email_sign_in_window_seconds: int = 3600

    # Proxies whose X-Forwarded-For is trusted (comma-separated IPs or CIDR ranges); empty: use the peer address.
    trusted_proxies: str = ""

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.env is Environment.production

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.is_production else "text")

    def check(self) -> None:
        """Refuse settings that are unsafe anywhere, and more of them in production.

        Raises ConfigurationError listing every problem found.
        """
        problems = self._problems()
        if self.is_production:
            problems += self._production_problems()
        if problems:
            raise ConfigurationError("; ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        touch = self.session_touch_interval_seconds
        for kind, idle in (("SESSION", self.session_idle_ttl_seconds),
                           ("ADMIN_SESSION", self.admin_session_idle_ttl_seconds)):
            # Activity is recorded at most once per touch interval, so a session used more often than its
            # idle timeout could still idle out unless the interval is at most half of that timeout.
            if touch * 2 > idle:
                problems.append(f"GATEWAY_SESSION_TOUCH_INTERVAL_SECONDS ({touch}) must be at most half of "
                                f"GATEWAY_{kind}_IDLE_TTL_SECONDS ({idle}), or sessions in use would idle out")
        try:
            TrustedProxies.parse(self.trusted_proxies)
        except ValueError as exc:
            problems.append(str(exc))
        problems += self._webauthn_problems()
        return problems

    def webauthn_default(self) -> WebAuthnRelyingParty | None:
        """The relying party of applications without an override: the settings, else derived from
        GATEWAY_PUBLIC_URL when that can be one (None otherwise: passkeys are off for them)."""
        origins = [o.strip().rstrip("/") for o in self.webauthn_origins.split(",") if o.strip()]
        public = urlsplit(self.public_url)
        if not origins:
            origins = [f"{public.scheme}://{public.netloc}".lower()]
        rp_id = self.webauthn_rp_id or (public.hostname or "")
        party = WebAuthnRelyingParty(rp_id=rp_id, origins=origins)
        if self.webauthn_rp_id is None and not self.webauthn_origins.strip() \
                and relying_party_problems("derived", party, production=self.is_production):
            return None
        return party

    def _webauthn_problems(self) -> list[str]:
        """Explicit WebAuthn settings must be right (derived ones only switch passkeys off)."""
        problems = []
        if self.webauthn_rp_id is not None or self.webauthn_origins.strip():
            party = self.webauthn_default()
            problems += relying_party_problems("GATEWAY_WEBAUTHN_RP_ID / GATEWAY_WEBAUTHN_ORIGINS", party,
                                               production=self.is_production)
        for client_id, party in self.webauthn_applications.items():
            problems += relying_party_problems(f"GATEWAY_WEBAUTHN_APPLICATIONS[{client_id!r}]", party,
                                               production=self.is_production)
        return problems

    def _production_problems(self) -> list[str]:
        problems = []
        if self.smtp_url is None:
            problems.append("GATEWAY_SMTP_URL must be set in production")
        if self.secret_key.get_secret_value() == DEFAULT_SECRET or len(self.secret_key.get_secret_value()) < 32:
            problems.append("GATEWAY_SECRET_KEY must be set to a random value of at least 32 characters in production")
        if not public_url_is_public(self.public_url):
            problems.append(f"GATEWAY_PUBLIC_URL ({self.public_url}) must be an https:// URL that customers can reach "
                            "(not localhost or a loopback address) in production: emailed links carry tokens")
        return problems


_PUBLIC_SUFFIXES: PublicSuffixList | None = None


def _is_public_suffix(domain: str) -> bool:
    global _PUBLIC_SUFFIXES
    if _PUBLIC_SUFFIXES is None:
        _PUBLIC_SUFFIXES = PublicSuffixList()  # Mozilla's list, shipped inside the package
    return _PUBLIC_SUFFIXES.is_public(domain)


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def relying_party_problems(name: str, party: WebAuthnRelyingParty, *, production: bool) -> list[str]:
    """What is wrong with a relying party (WebAuthn Level 2, 5.1.3 and 13.4.9): its id must be a domain,
    not an IP address nor a public suffix (``com``, ``github.io``: Mozilla's Public Suffix List); each
    origin a plain ``https://host[:port]`` (``http://`` only for localhost, never in production) whose host
    is the id or a subdomain of it. An empty list when it is right."""
    problems = []
    rp_id = party.rp_id
    valid_id = bool(rp_id) and rp_id == rp_id.strip().lower().rstrip(".") and rp_id.isascii() \
        and _host_address(rp_id) is None and all(label and len(label) <= 63 for label in rp_id.split("."))
    if not valid_id:
        problems.append(f"{name}: the relying party id {rp_id!r} must be a lower-case domain name (not an IP "
                        "address, no scheme or port)")
    elif _is_public_suffix(rp_id) and not (_is_localhost(rp_id) and not production):
        problems.append(f"{name}: the relying party id {rp_id!r} is a public suffix: use your own domain")
    if not party.origins:
        problems.append(f"{name}: give at least one origin")
    for origin in party.origins:
        parts = urlsplit(origin)
        host = (parts.hostname or "").rstrip(".")
        plain = bool(host) and parts.path in ("", "/") and not parts.query and not parts.fragment \
            and parts.username is None and parts.password is None
        if not plain:
            problems.append(f"{name}: the origin {origin!r} must be scheme://host[:port], nothing more")
            continue
        if parts.scheme != "https" and not (parts.scheme == "http" and _is_localhost(host) and not production):
            problems.append(f"{name}: the origin {origin!r} must be https:// (http:// only for localhost, "
                            "and not in production)")
        if valid_id and host != rp_id and not host.endswith("." + rp_id):
            problems.append(f"{name}: the origin {origin!r} is not on the relying party id {rp_id!r} or one of "
                            "its subdomains")
    return problems


def public_url_is_public(url: str) -> bool:
    """True for a plain https URL (no user info, query or fragment: links are built on it) whose host
    is not localhost, a loopback or an unspecified address, in any spelling a browser accepts."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme.lower() != "https" or not host or parts.username is not None or parts.password is not None \
            or parts.query or parts.fragment:
        return False
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always the loopback interface
        return False
    address = _host_address(host)
    if address is None:
        return True
    mapped = getattr(address, "ipv4_mapped", None) or address
    return not (mapped.is_loopback or mapped.is_unspecified)


def _host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL host names, as the WHATWG URL parser reads it: besides dotted quads, IPv4 in
    the short, decimal, octal and hex forms (``127.1``, ``2130706433``, ``0x7f000001``, ``0``); None
    for a domain name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # inet_aton reads the same legacy forms
    except OSError:
        return None
