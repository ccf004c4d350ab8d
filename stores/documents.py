"""Beanie documents and their indexes.

Conventions forced by the embedded nx-27017 server and kept for real MongoDB too:
string ids everywhere; datetimes only in fields written at insert; timestamps that
change later are integer epoch milliseconds (``*_ms``); emails and usernames have a
case-folded copy under a unique index; every query that cares checks ``expires_at``
itself (TTL indexes are kept for real MongoDB only as clean-up).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import pymongo
from beanie import Document
from pydantic import BaseModel, Field, model_validator
from pymongo import IndexModel


class CustomerStatus(StrEnum):
    PENDING = "pending"  # registered, email not yet confirmed
    ACTIVE = "active"
    DISABLED = "disabled"  # by an admin: cannot sign in, every session ended


class IdentityStoreDocument(Document):
    id: str = Field(alias="_id")
    name: str
    created_at: datetime

    class Settings:
        name = "identity_stores"


class UsernameMode(StrEnum):
    EMAIL = "EMAIL"  # the email is the username
    PHONE = "PHONE"  # as EMAIL until phone verification exists (docs/recovery.md)
    USERNAME = "USERNAME"  # customers choose a username


class MfaMode(StrEnum):
    OFF = "OFF"  # no enrolment; sign-in never asks
    OPTIONAL = "OPTIONAL"  # customers may enrol; sign-in asks those who did
    REQUIRED = "REQUIRED"  # sign-in always asks (an emailed code when nothing is enrolled)


class FactorType(StrEnum):
    TOTP = "TOTP"
    RECOVERY_CODE = "RECOVERY_CODE"
    EMAIL_OTP = "EMAIL_OTP"
    PASSKEY = "PASSKEY"  # a WebAuthn assertion (resolvers/passkeys.py): presence is enough as a second factor


class RegistrationPolicy(BaseModel):
    enabled: bool = True
    activation_link_lifetime_minutes: int = 24 * 60
    # New customers may register by signing in with one of the application's identity providers (only with
    # an email the provider verified; resolvers/social.py). Independent of ``enabled`` (password registration).
    social_enabled: bool = False


class PasswordResetPolicy(BaseModel):
    enabled: bool = True
    link_lifetime_minutes: int = 60


class UsernameReminderPolicy(BaseModel):
    enabled: bool = True


class EmailChangePolicy(BaseModel):
    link_lifetime_minutes: int = 60  # the verification link mailed to the new address


class AccountManagementPolicy(BaseModel):
    """Which self-service areas are on: ``me.selfService``; an area that is off answers FeatureDisabledError."""

    personal_information: bool = True
    account_settings: bool = True
    security_settings: bool = True
    privacy_and_data: bool = True
    account_deletion: bool = True
    data_export: bool = True


class AccountDeletionPolicy(BaseModel):
    grace_days: int = 0  # 0: erased at once; N: disabled at once, undo link valid N days, erased after N days


class MfaPolicy(BaseModel):
    mode: MfaMode = MfaMode.OPTIONAL
    factors: list[FactorType] = Field(default_factory=lambda: list(FactorType))


class PasskeyPolicy(BaseModel):
    """Passkeys (WebAuthn): registering them and signing in with one alone (with user verification)."""

    enabled: bool = True


class EmailSignInPolicy(BaseModel):
    """Emailed one-time sign-in links and 6-digit codes (10 minutes, single use; resolvers/email_sign_in.py)."""

    enabled: bool = False


class PasswordPolicy(BaseModel):
    """NIST SP 800-63B: length only, no composition rules, no common or breached passwords."""

    min_length: int = 8
    max_length: int = 256
    check_common_passwords: bool = True


class SessionPolicy(BaseModel):
    """Customer session lifetimes for the policy's applications; None: the GATEWAY_SESSION_* settings."""

    absolute_lifetime_minutes: int | None = None
    idle_timeout_minutes: int | None = None


# Fields of the first, flat policy document, and where they live now (read on load; see _nest).
FLAT_FIELDS = {
    "registration_enabled": ("registration", "enabled"),
    "activation_ttl_minutes": ("registration", "activation_link_lifetime_minutes"),
    "password_reset_enabled": ("password_reset", "enabled"),
    "password_reset_ttl_minutes": ("password_reset", "link_lifetime_minutes"),
    "username_reminder_enabled": ("username_reminder", "enabled"),
    "password_min_length": ("password_policy", "min_length"),
}


class PolicyDocument(Document):
    """A self-service policy: what customers of its applications may do for themselves, and how.

    One document, shared by account management and administration; ``version`` grows with every
    change (optimistic concurrency for admins editing it).
    """

    id: str = Field(alias="_id")
    name: str
    description: str = ""
    version: int = 1
    registration: RegistrationPolicy = Field(default_factory=RegistrationPolicy)
    password_reset: PasswordResetPolicy = Field(default_factory=PasswordResetPolicy)
    username_reminder: UsernameReminderPolicy = Field(default_factory=UsernameReminderPolicy)
    username_mode: UsernameMode = UsernameMode.EMAIL
    email_change: EmailChangePolicy = Field(default_factory=EmailChangePolicy)
    account_management: AccountManagementPolicy = Field(default_factory=AccountManagementPolicy)
    account_deletion: AccountDeletionPolicy = Field(default_factory=AccountDeletionPolicy)
    mfa: MfaPolicy = Field(default_factory=MfaPolicy)
    passwordless: bool = False
    passkeys: PasskeyPolicy = Field(default_factory=PasskeyPolicy)
    email_sign_in: EmailSignInPolicy = Field(default_factory=EmailSignInPolicy)
    password_policy: PasswordPolicy = Field(default_factory=PasswordPolicy)
    sessions: SessionPolicy = Field(default_factory=SessionPolicy)
    reauthentication_max_age_minutes: int = 10
    created_at: datetime
    updated_at_ms: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        """Policies written before the nested layout (and flat keyword arguments) load into it."""
        if isinstance(data, dict) and FLAT_FIELDS.keys() & data.keys():
            data = dict(data)
            for flat, (group, name) in FLAT_FIELDS.items():
                if flat in data:
                    value = data.pop(flat)
                    section = dict(data.get(group) or {})
                    section.setdefault(name, value)
                    data[group] = section
        return data

    class Settings:
        name = "policies"


class Branding(BaseModel):
    """What emails and hosted pages show for an application."""

    logo_url: str | None = None
    primary_color: str = "#2563eb"
    accent_color: str = "#f59e0b"
    support_email: str | None = None


class ConsentItem(BaseModel):
    """One thing an application asks its customers to agree to. Bumping ``version`` asks for re-acceptance."""

    key: str
    title: str
    description: str = ""
    version: int = 1
    required: bool = False


class ApplicationDocument(Document):
    id: str = Field(alias="_id")
    client_id: str
    name: str
    policy_id: str
    identity_store_id: str
    is_default: bool = False
    branding: Branding = Field(default_factory=Branding)
    password_reset_url: str | None = None  # the application's own reset page, if it has one
    # Every link back to the customer's site (the own reset page included) must start with one of these.
    redirect_urls: list[str] = Field(default_factory=list)
    consent_policy: list[ConsentItem] = Field(default_factory=list)
    version: int = 1
    created_at: datetime
    updated_at_ms: int | None = None

    class Settings:
        name = "applications"
        indexes = [IndexModel([("client_id", pymongo.ASCENDING)], unique=True, name="client_id_unique")]


class Address(BaseModel):
    """OIDC's ``address`` claim, structured; ``country`` is ISO 3166-1 alpha-2."""

    street_address: str | None = None
    locality: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class LinkedIdentity(BaseModel):
    """A social login linked to the account: the provider's subject identifier, and the email it gave.

    ``issuer`` and ``subject`` together name the person at the provider (OpenID Connect Core 5.7: ``sub`` is
    unique only within its issuer); ``provider`` is the name of the application's provider it came through.
    """

    id: str
    provider: str
    subject: str
    email: str | None = None
    linked_at_ms: int
    issuer: str | None = None  # None: linked before issuers were recorded (never matched at sign-in)


class CustomerDocument(Document):
    id: str = Field(alias="_id")
    store_id: str
    email: str
    email_norm: str
    username: str
    username_norm: str
    # Standard attributes (OIDC standard claims); birthdate is an ISO 8601 date, "YYYY-MM-DD".
    given_name: str | None = None
    middle_name: str | None = None
    family_name: str | None = None
    phone_number: str | None = None  # E.164
    address: Address | None = None
    birthdate: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)  # custom attributes, by definition key
    # Normalised copies for the admin search (prefix, case-insensitive): whatever sets a name sets these.
    given_name_norm: str | None = None
    family_name_norm: str | None = None
    linked_identities: list[LinkedIdentity] = Field(default_factory=list)
    # How many passkeys are ways in (stores/passkeys.py); the last-login-method rule conditions on it.
    passkey_count: int = 0
    password_hash: str | None = None  # None: no password (a passwordless account)
    # True when password_hash was computed from the NFKC form of the password (every hash made since
    # passwords are normalised); an older hash is verified once against the raw form, then replaced.
    password_nfkc: bool = False
    # Bumped by every credential change (password set, account disabled) in the same write; sessions and
    # emailed links carry the version they were issued under, and a sign-in only stands if it is unchanged.
    credential_version: int = 0
    credential_change_id: str | None = None  # the last credential change: its notice is sent for it alone
    status: CustomerStatus = CustomerStatus.PENDING
    email_verified: bool = False
    locale: str | None = None
    created_at: datetime
    activated_at_ms: int | None = None
    updated_at_ms: int | None = None
    last_sign_in_at_ms: int | None = None
    # Account deletion (resolvers/account.py): the durable job that will erase the account (set when the
    # customer deletes it with a grace period, or when an erasure begins), when it is due, and when the
    # erasure began (after that, undo is too late). None: no deletion pending.
    deletion_job_id: str | None = None
    deletion_due_at_ms: int | None = None
    erasure_started_at_ms: int | None = None

    class Settings:
        name = "customers"
        indexes = [
            IndexModel([("store_id", 1), ("email_norm", 1)], unique=True, name="store_email_unique"),
            IndexModel([("store_id", 1), ("username_norm", 1)], unique=True, name="store_username_unique"),
        ]


class AdminStatus(StrEnum):
    INVITED = "invited"  # made by adminCreate: no password until the emailed invitation is accepted
    ACTIVE = "active"
    DISABLED = "disabled"  # by another admin: cannot sign in, every session and API key ended


class AdminDocument(Document):
    id: str = Field(alias="_id")
    email: str
    email_norm: str
    password_hash: str | None = None  # None until the invitation is accepted
    password_nfkc: bool = False
    credential_version: int = 0
    role: str
    status: AdminStatus = AdminStatus.ACTIVE
    # True unless status is ACTIVE, written in the same write as status: what sign-in and
    # authentication read (``resolvers.sessions``), so an invited or disabled admin cannot sign in.
    disabled: bool = False
    # Bumped by every role or status change, each one a conditional write on it; the owner guard
    # (OwnerGuardDocument) orders its updates by it.
    version: int = 0
    invited_by: str | None = None  # the admin who sent the invitation (None: the CLI)
    created_at: datetime
    updated_at_ms: int | None = None
    last_sign_in_at_ms: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _status(cls, data: Any) -> Any:
        """Admins written before statuses existed: ``disabled`` says which."""
        if isinstance(data, dict) and "status" not in data and "disabled" in data:
            data = {**data, "status": AdminStatus.DISABLED if data["disabled"] else AdminStatus.ACTIVE}
        return data

    class Settings:
        name = "admins"
        indexes = [IndexModel([("email_norm", 1)], unique=True, name="admin_email_unique")]


class OwnerGuardDocument(Document):
    """Which admins are active owners, kept so that the last one can never be disabled or demoted.

    MongoDB cannot count inside a write's condition, so the count lives in one document: removing an
    owner is one conditional update here (``owners`` holds another id) before the admin is written,
    and adding one follows the admin's write. So ``owners`` is always a subset of the active owners,
    never empty once there is one, and of two concurrent removals of the last two owners exactly one
    matches. ``seen`` keeps, per admin, the ``AdminDocument.version`` of the last update applied: an
    update carrying an older version is stale (the admin changed since) and matches nothing.
    """

    id: str = Field(alias="_id")
    owners: list[str] = Field(default_factory=list)
    seen: dict[str, int] = Field(default_factory=dict)

    class Settings:
        name = "owner_guard"


class ApiKeyDocument(Document):
    """A partner API key. The key itself is shown once; only its SHA-256 is kept.

    It acts with ``permissions`` intersected with its creator's current role, and dies when revoked,
    when ``expires_at`` passes, or when its creator is disabled.
    """

    id: str = Field(alias="_id")
    name: str
    key_hash: str
    prefix: str  # the first characters of the key, to recognise it in lists (never enough to use it)
    permissions: list[str]
    created_by: str  # admin id
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at_ms: int | None = None
    revoked_by: str | None = None  # admin id, or "system" when its creator was disabled
    last_used_at_ms: int | None = None
    refused_logged_at_ms: int | None = None  # when a refused use was last audited (at most one an interval)

    class Settings:
        name = "api_keys"
        indexes = [IndexModel([("key_hash", 1)], unique=True, name="key_hash_unique"),
                   IndexModel([("created_by", 1)], name="created_by")]


class CustomerProfile(BaseModel):
    """The part of a customer that the signed-in hot path reads, copied into each of their sessions.

    Every change to these fields must also refresh the copies (stores.sessions.refresh_profile).
    """

    id: str
    store_id: str
    email: str
    username: str
    given_name: str | None = None
    family_name: str | None = None
    email_verified: bool = False
    status: CustomerStatus
    created_at: datetime
    middle_name: str | None = None
    phone_number: str | None = None
    address: Address | None = None
    birthdate: str | None = None
    locale: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class UserAgentLabels(BaseModel):
    """What a session's user agent says, for people, read once when the session is written: ``device``
    "iPhone", ``browser`` "Firefox 121", ``os`` "Windows 10"; None where it says nothing recognisable."""

    model_config = {"frozen": True}

    device: str | None = None
    browser: str | None = None
    os: str | None = None


class SessionDocument(Document):
    """A sign-in. ``_id`` is the public session id; the bearer token is stored only as its SHA-256.

    A customer session carries a copy of the customer's profile, so that an authenticated
    ``me`` costs one database round trip (nx-27017 has no working $lookup to join instead).
    """

    id: str = Field(alias="_id")
    token_hash: str
    kind: str  # customer | admin
    subject_id: str
    credential_version: int = 0  # the subject's credential version when it signed in
    # A customer's session works only for the application it was created under (its policy decided
    # the sign-in: second factor, lifetimes, areas); None for an admin's, and for sessions written
    # before sessions were bound (taken as the default application's).
    application_id: str | None = None
    created_at: datetime
    expires_at: datetime
    idle_expires_at_ms: int
    idle_timeout_ms: int | None = None  # how far activity pushes idle_expires_at_ms (the policy's, else the setting)
    authenticated_at_ms: int | None = None  # when the subject last proved who they are in it (sign-in, re-authentication)
    last_seen_at_ms: int
    ip_address: str | None = None
    user_agent: str | None = None
    # The user agent's labels, parsed once at sign-in (``resolvers.sessions.describe_user_agent``); None for
    # sessions written before labels were stored (parsed when read: ``resolvers.sessions.labels_of``).
    agent: UserAgentLabels | None = None
    profile: CustomerProfile | None = None

    class Settings:
        name = "sessions"
        indexes = [
            IndexModel([("token_hash", 1)], unique=True, name="token_hash_unique"),
            IndexModel([("subject_id", 1)], name="subject"),
            IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_ttl"),
        ]


class OneTimeTokenDocument(Document):
    """A single-use emailed secret, stored only as the SHA-256 of the token.

    ``_id`` is ``purpose:subject``, so a subject has at most one link of each purpose: issuing a new
    one replaces the old one in a single write, and of two concurrent requests exactly one link stays valid.
    """

    id: str = Field(alias="_id")
    token_hash: str
    purpose: str
    subject_id: str
    credential_version: int = 0  # the subject's credential version when the link was issued
    application_id: str | None = None
    created_at: datetime
    expires_at: datetime
    used: bool = False
    used_at_ms: int | None = None
    new_email: str | None = None  # email_change: the address being verified; the email only once confirmed
    # email_sign_in: the 6-digit code mailed with the link (SHA-256 over the subject and the code), the wrong
    # codes tried so far, and where the confirmed link sends the browser (within the application's redirect URLs).
    code_hash: str | None = None
    code_attempts: int = 0
    redirect_url: str | None = None
    # email_sign_in asked for on the hosted pages: the gateway path its confirm page goes on to, signed in
    hosted_next: str | None = None

    class Settings:
        name = "one_time_tokens"
        indexes = [
            IndexModel([("token_hash", 1)], unique=True, name="token_hash_unique"),
            IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_ttl"),
        ]


class RateCounterDocument(Document):
    """A fixed-window counter; ``_id`` is ``bucket:keyed-hash:window``.

    Its expiry is integer epoch milliseconds (it is written by an upsert's ``$set``, where nx-27017
    would store a datetime as a string); the housekeeping pass deletes expired counters.
    """

    id: str = Field(alias="_id")
    hits: int = 0
    expires_at_ms: int = 0

    class Settings:
        name = "rate_counters"
        indexes = [IndexModel([("expires_at_ms", 1)], name="expires_at_ms")]


class AuditResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class AuditEventDocument(Document):
    """One security-relevant event. Append-only: nothing updates or deletes events."""

    id: str = Field(alias="_id")
    type: str  # the action, e.g. customer.login_failed
    at: datetime
    # The same moment in epoch milliseconds: what the log is ordered, paged and filtered by (nx-27017
    # compares datetimes in queries to the second only).
    at_ms: int | None = None
    actor_kind: str | None = None  # customer | admin | api_key | public | system
    actor_id: str | None = None
    actor_name: str | None = None  # an API key's name
    subject_id: str | None = None  # the target's id
    target_kind: str | None = None  # customer | admin | api_key | application
    result: AuditResult = AuditResult.SUCCESS
    application_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    class Settings:
        name = "audit_events"
        indexes = [IndexModel([("subject_id", 1)], name="subject"), IndexModel([("type", 1)], name="type"),
                   # Not (at_ms, _id): nx-27017 refuses every insert into a collection with a compound index on _id.
                   IndexModel([("at_ms", -1)], name="at_ms"),
                   IndexModel([("subject_id", 1), ("at_ms", -1)], name="subject_at_ms"),
                   IndexModel([("actor_id", 1), ("at_ms", -1)], name="actor_at_ms")]


class EmailTemplateDocument(Document):
    """An application's override of one email kind, for one locale or (locale None) for all."""

    id: str = Field(alias="_id")  # application_id:kind:locale-or-*
    application_id: str
    kind: str
    locale: str | None = None
    subject: str
    html: str
    text: str
    created_at: datetime
    updated_at_ms: int

    class Settings:
        name = "email_templates"
        indexes = [IndexModel([("application_id", 1), ("kind", 1)], name="application_kind")]


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for (another) delivery attempt
    SENDING = "sending"  # leased by one sender until lease_until_ms
    SENT = "sent"
    STORED = "stored"  # development outbox: no SMTP server, kept for reading
    DEAD = "dead"  # dead letter: will never be sent (dead_reason says why)


class OutboxDocument(Document):
    """An email on its way.

    ``body`` is the subject, HTML and text, encrypted (Fernet, under a key derived from the secret
    key): pending mail holds live links. It is removed once the mail is delivered or dead.
    """

    id: str = Field(alias="_id")
    kind: str
    to: str
    subject_id: str | None = None  # the customer (or admin) the mail is about
    body: str | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime
    next_attempt_ms: int = 0
    lease_until_ms: int = 0
    lease_id: str | None = None  # who holds the lease: only they may record the outcome
    expires_at_ms: int | None = None  # when the links inside expire: not delivered after that
    sent_at_ms: int | None = None
    dead_reason: str | None = None
    # Mail to an erased account (its "account deleted" confirmation): the whole record goes once the mail is
    # sent or dead, so its address is kept nowhere (stores.erasure).
    erase_when_done: bool = False

    class Settings:
        name = "outbox"
        indexes = [IndexModel([("status", 1), ("next_attempt_ms", 1)], name="due"),
                   IndexModel([("subject_id", 1)], name="subject")]


class JobDocument(Document):
    """Durable work that must happen after a request's answer even if the process dies first.

    The request writes the job before it answers, and usually runs it right after; otherwise any
    instance's sweep runs it once ``run_after_ms`` has passed. Deleted when done.
    """

    id: str = Field(alias="_id")
    kind: str
    payload: dict[str, Any] = Field(default_factory=dict)
    application_id: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)  # ip, user agent, request id, locale of the request
    created_at: datetime
    run_after_ms: int = 0
    lease_until_ms: int = 0
    lease_id: str | None = None
    attempts: int = 0
    last_error: str | None = None

    class Settings:
        name = "jobs"
        indexes = [IndexModel([("run_after_ms", 1)], name="due")]


class AttributeType(StrEnum):
    STRING = "STRING"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"  # ISO 8601 "YYYY-MM-DD"
    ENUM = "ENUM"


class AttributeDefinitionDocument(Document):
    """A custom attribute of an identity store's customers, defined by admins (no deploy needed).

    A definition whose key customers hold values for is archived rather than deleted, so no customer
    data is silently dropped.
    """

    id: str = Field(alias="_id")
    store_id: str
    key: str
    label: str
    type: AttributeType
    required: bool = False
    max_length: int | None = None
    pattern: str | None = None  # matched in full, with a time limit
    enum_values: list[str] = Field(default_factory=list)
    self_service_visible: bool = True
    self_service_editable: bool = True
    archived: bool = False
    version: int = 1
    created_at: datetime
    updated_at_ms: int | None = None

    class Settings:
        name = "attribute_definitions"
        indexes = [IndexModel([("store_id", 1), ("key", 1)], unique=True, name="store_key_unique")]


class MfaFactorDocument(Document):
    """One second factor of a customer. Secrets are encrypted at rest; recovery codes are stored hashed."""

    id: str = Field(alias="_id")
    customer_id: str
    type: FactorType
    confirmed: bool = False  # a TOTP factor counts once a first code proved the customer holds the secret
    secret: str | None = None  # TOTP: the shared secret, encrypted
    last_totp_step: int | None = None  # TOTP: the last accepted time step (a code is accepted once)
    recovery_code_hashes: list[str] = Field(default_factory=list)  # RECOVERY_CODE: the unused codes
    created_at: datetime
    last_used_at_ms: int | None = None

    class Settings:
        name = "mfa_factors"
        indexes = [IndexModel([("customer_id", 1)], name="customer")]


class ConsentEventDocument(Document):
    """One grant or withdrawal of one consent item, as it happened. Never edited."""

    id: str = Field(alias="_id")
    customer_id: str
    application_id: str
    key: str
    version: int
    granted: bool
    at: datetime
    ip_address: str | None = None
    user_agent: str | None = None

    class Settings:
        name = "consent_events"
        indexes = [IndexModel([("customer_id", 1), ("application_id", 1)], name="customer_application")]


class MfaChallengePurpose(StrEnum):
    SIGN_IN = "sign_in"  # the password was right; a second factor completes the sign-in
    REAUTHENTICATION = "reauthentication"  # a signed-in session proves it is still its customer (email code)


class MfaChallengeDocument(Document):
    """A pending second-factor step: a sign-in whose password was right, or a re-authentication by email code.

    Found by the SHA-256 of its random token (a re-authentication challenge, keyed by its session, has
    an unguessable token nobody holds). Bound to the customer's credential version and to a SHA-256 of
    the password hash the sign-in verified, so a credential change in between ends it. ``attempts``
    counts codes tried (incremented before each check); the fifth wrong one ends it. The emailed
    code is kept only as its SHA-256.
    """

    id: str = Field(alias="_id")
    token_hash: str
    purpose: MfaChallengePurpose
    customer_id: str
    session_id: str | None = None  # REAUTHENTICATION: the session it re-authenticates
    application_id: str | None = None
    credential_version: int = 0
    password_hash_digest: str | None = None  # SIGN_IN: SHA-256 of the password hash the sign-in verified
    device: str | None = None  # SIGN_IN: the known device (resolvers.devices) the password step came from
    factors: list[FactorType] = Field(default_factory=list)  # what this challenge accepts
    attempts: int = 0
    email_code_hash: str | None = None
    email_code_expires_at_ms: int | None = None
    email_codes_sent: int = 0
    created_at: datetime
    expires_at: datetime

    class Settings:
        name = "mfa_challenges"
        indexes = [
            IndexModel([("token_hash", 1)], unique=True, name="token_hash_unique"),
            IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_ttl"),
        ]


class IdentityProviderType(StrEnum):
    OIDC = "OIDC"  # any OpenID Connect provider, by its discovery URL
    GOOGLE = "GOOGLE"
    MICROSOFT = "MICROSOFT"  # Microsoft identity platform, "common" endpoint (work, school and personal accounts)
    APPLE = "APPLE"
    GITHUB = "GITHUB"  # OAuth 2 only: the identity comes from its user API


class IdentityProviderDocument(Document):
    """A social sign-in provider of one application (resolvers/identity_providers.py).

    ``name`` is unique per application and is the path segment of its callback
    (``/oauth/callback/<name>``). ``client_secret`` is Fernet-encrypted (never returned by the API).
    OpenID Connect providers have a ``discovery_url``; OAuth 2 ones (GitHub) their endpoints.
    """

    id: str = Field(alias="_id")
    application_id: str
    name: str
    display_name: str
    type: IdentityProviderType
    discovery_url: str | None = None
    authorization_endpoint: str | None = None  # OAuth 2 providers (GitHub)
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    emails_endpoint: str | None = None  # GitHub: the account's addresses, with their verification
    client_id: str
    client_secret: str | None = None  # encrypted
    scopes: list[str] = Field(default_factory=list)
    enabled: bool = True
    version: int = 1
    created_at: datetime
    updated_at_ms: int | None = None

    class Settings:
        name = "identity_providers"
        indexes = [IndexModel([("application_id", 1), ("name", 1)], unique=True, name="application_name_unique")]


class SocialFlowPurpose(StrEnum):
    SIGN_IN = "sign_in"  # socialSignInStart: sign in, or register
    LINK = "link"  # linkedIdentityAdd: link to the signed-in customer


class SocialFlowDocument(Document):
    """One social sign-in or linking, from its start to the grant the frontend exchanges for a session.

    Written by the start (``_id``, the hashes of the start token and of ``state``, ``nonce`` and the PKCE
    verifier encrypted in ``secrets``), bound to one browser by ``binding_hash`` when it opens the start
    URL, used up by the callback (``called_back_at_ms``, one conditional write), and, for a sign-in, then
    holding a grant (``grant_hash``) that ``socialSignInComplete`` uses up once. Every stage checks
    ``expires_at`` (the flow) or ``grant_expires_at_ms`` (the grant) itself.
    """

    id: str = Field(alias="_id")
    purpose: SocialFlowPurpose
    provider_id: str
    provider_name: str
    application_id: str
    redirect_url: str
    customer_id: str | None = None  # LINK: the signed-in customer; SIGN_IN: the customer, once known
    start_token_hash: str
    state_hash: str
    secrets: str  # Fernet: {"nonce", "code_verifier"}
    binding_hash: str | None = None
    created_at: datetime
    expires_at: datetime
    started_at_ms: int | None = None
    called_back_at_ms: int | None = None
    grant_hash: str | None = None
    grant_expires_at_ms: int | None = None
    grant_used_at_ms: int | None = None

    class Settings:
        name = "social_flows"
        indexes = [IndexModel([("start_token_hash", 1)], name="start_token"),
                   IndexModel([("state_hash", 1)], name="state"),
                   IndexModel([("grant_hash", 1)], name="grant"),
                   IndexModel([("customer_id", 1)], name="customer"),
                   IndexModel([("expires_at", 1)], expireAfterSeconds=3600, name="expires_ttl")]


class LinkedIdentityClaimDocument(Document):
    """Which customer of an identity store holds a provider identity: at most one (``_id`` is the SHA-256 of
    store, issuer and subject, so the unique ``_id`` decides; nx-27017 does not enforce unique indexes on
    array fields). Written before the identity is added to the customer and deleted after it is removed;
    one left behind by a crash in between is recognised (the customer lacks the identity) and replaced."""

    id: str = Field(alias="_id")
    customer_id: str
    store_id: str
    created_at: datetime

    class Settings:
        name = "linked_identity_claims"
        indexes = [IndexModel([("customer_id", 1)], name="customer")]
class PasskeyDocument(Document):
    """A customer's passkey (a WebAuthn discoverable credential), a way in and a second factor.

    ``_id`` is the public id (``passkeyRemove``); ``credential_id`` (base64url, as the browser sends it)
    is unique. The public key is the COSE key the authenticator gave at registration; ``sign_count`` is
    the authenticator's counter as last seen (a clone shows one that does not grow).
    """

    id: str = Field(alias="_id")
    customer_id: str
    credential_id: str
    public_key: str  # base64url of the COSE_Key
    sign_count: int = 0
    transports: list[str] = Field(default_factory=list)
    aaguid: str = ""
    backup_eligible: bool = False
    backed_up: bool = False
    rp_id: str  # the relying party it was registered with: usable only there
    name: str
    created_at: datetime
    last_used_at_ms: int | None = None
    updated_at_ms: int | None = None

    class Settings:
        name = "passkeys"
        indexes = [IndexModel([("credential_id", 1)], unique=True, name="credential_id_unique"),
                   IndexModel([("customer_id", 1)], name="customer")]


class WebAuthnCeremony(StrEnum):
    REGISTRATION = "registration"  # a signed-in customer adds a passkey
    SIGN_IN = "sign_in"  # anyone: a discoverable credential, user verification required
    SECOND_FACTOR = "second_factor"  # the second-factor step of a sign-in (an MFA challenge), presence enough


class WebAuthnChallengeDocument(Document):
    """A WebAuthn challenge we issued. ``_id`` is the SHA-256 of the challenge bytes (the browser returns the
    challenge inside clientDataJSON, so it names its own ceremony); deleted by the one use that consumes it."""

    id: str = Field(alias="_id")
    ceremony: WebAuthnCeremony
    application_id: str
    customer_id: str | None = None  # REGISTRATION, SECOND_FACTOR: whose
    credential_version: int = 0  # REGISTRATION: the customer's when it began
    mfa_challenge_id: str | None = None  # SECOND_FACTOR: the sign-in's challenge it answers
    created_at: datetime
    expires_at: datetime

    class Settings:
        name = "webauthn_challenges"
        indexes = [IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires_ttl"),
                   IndexModel([("customer_id", 1)], name="customer")]


ALL_DOCUMENTS = [
    IdentityStoreDocument,
    PolicyDocument,
    ApplicationDocument,
    CustomerDocument,
    AdminDocument,
    SessionDocument,
    OneTimeTokenDocument,
    RateCounterDocument,
    AuditEventDocument,
    EmailTemplateDocument,
    OutboxDocument,
    JobDocument,
    AttributeDefinitionDocument,
    MfaFactorDocument,
    ConsentEventDocument,
    MfaChallengeDocument,
    OwnerGuardDocument,
    ApiKeyDocument,
    IdentityProviderDocument,
    SocialFlowDocument,
    LinkedIdentityClaimDocument,
    PasskeyDocument,
    WebAuthnChallengeDocument,
]
