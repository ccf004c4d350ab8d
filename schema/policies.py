"""Admin: self-service policies (``policies:read``, ``policies:write``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import policies
from schema.errors import ConflictError, InvalidInputError, NotFoundError, PolicyInUseError
from schema.inputs import given
from schema.permissions import HasPermission, requires
from schema.security import MfaFactorType
from stores.documents import PolicyDocument


@strawberry.enum(description="What customers sign in with.")
class UsernameMode(Enum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    USERNAME = "USERNAME"


@strawberry.enum(description="OFF: no enrolment, never asked. OPTIONAL: customers may enrol; sign-in asks those "
                             "who did. REQUIRED: sign-in always asks (an emailed code when nothing is enrolled).")
class MfaMode(Enum):
    OFF = "OFF"
    OPTIONAL = "OPTIONAL"
    REQUIRED = "REQUIRED"


# -- the policy, as read ---------------------------------------------------------------------------

@strawberry.type
class RegistrationPolicy:
    enabled: bool
    activation_link_lifetime_minutes: int
    social_enabled: bool = strawberry.field(
        description="New customers may register by signing in with one of the application's identity providers "
                    "(only with an email the provider verified). Independent of `enabled` (password registration).")


@strawberry.type
class PasswordResetPolicy:
    enabled: bool
    link_lifetime_minutes: int


@strawberry.type
class UsernameReminderPolicy:
    enabled: bool


@strawberry.type
class EmailChangePolicy:
    link_lifetime_minutes: int = strawberry.field(description="The verification link mailed to the new address.")


@strawberry.type(description="The self-service areas; one that is off answers FeatureDisabledError.")
class AccountManagementPolicy:
    personal_information: bool
    account_settings: bool
    security_settings: bool
    privacy_and_data: bool
    account_deletion: bool = strawberry.field(description="Within account settings.")
    data_export: bool = strawberry.field(description="Within privacy and data.")


@strawberry.type
class AccountDeletionPolicy:
    grace_days: int = strawberry.field(description="0: erased at once; N: disabled at once, undo link valid N days, "
                                                   "erased after N days.")


@strawberry.type
class MfaPolicy:
    mode: MfaMode
    factors: list[MfaFactorType]


@strawberry.type(description="Passkeys (WebAuthn): adding them and signing in with one alone. As a second factor "
                              "they also need PASSKEY among mfa.factors.")
class PasskeyPolicy:
    enabled: bool


@strawberry.type(description="Emailed one-time sign-in links and 6-digit codes (10 minutes, one use).")
class EmailSignInPolicy:
    enabled: bool


@strawberry.type(description="NIST SP 800-63B: length only, no composition rules.")
class PasswordPolicy:
    min_length: int
    max_length: int
    check_common_passwords: bool


@strawberry.type(description="Customer session lifetimes; null: the gateway's GATEWAY_SESSION_* settings.")
class SessionPolicy:
    absolute_lifetime_minutes: int | None
    idle_timeout_minutes: int | None


@strawberry.type(description="What the customers of an application may do for themselves, and how. Changes apply "
                              "on the next request (within 5 s on every instance).")
class SelfServicePolicy:
    id: strawberry.ID
    name: str
    description: str
    version: int = strawberry.field(description="Grows with every change: send it back with selfServicePolicyUpdate.")
    registration: RegistrationPolicy
    password_reset: PasswordResetPolicy
    username_reminder: UsernameReminderPolicy
    username_mode: UsernameMode
    email_change: EmailChangePolicy
    account_management: AccountManagementPolicy
    account_deletion: AccountDeletionPolicy
    mfa: MfaPolicy
    passwordless: bool
    passkeys: PasskeyPolicy
    email_sign_in: EmailSignInPolicy
    password_policy: PasswordPolicy
    sessions: SessionPolicy
    reauthentication_max_age_minutes: int = strawberry.field(
        description="How recently a customer must have proved who they are before a sensitive change.")
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def from_doc(cls, doc: PolicyDocument) -> SelfServicePolicy:
        return cls(
            id=strawberry.ID(doc.id), name=doc.name, description=doc.description, version=doc.version,
            registration=RegistrationPolicy(**doc.registration.model_dump()),
            password_reset=PasswordResetPolicy(**doc.password_reset.model_dump()),
            username_reminder=UsernameReminderPolicy(**doc.username_reminder.model_dump()),
            username_mode=UsernameMode(doc.username_mode.value),
            email_change=EmailChangePolicy(**doc.email_change.model_dump()),
            account_management=AccountManagementPolicy(**doc.account_management.model_dump()),
            account_deletion=AccountDeletionPolicy(**doc.account_deletion.model_dump()),
            mfa=MfaPolicy(mode=MfaMode(doc.mfa.mode.value), factors=[MfaFactorType(f.value) for f in doc.mfa.factors]),
            passwordless=doc.passwordless,
            passkeys=PasskeyPolicy(**doc.passkeys.model_dump()),
            email_sign_in=EmailSignInPolicy(**doc.email_sign_in.model_dump()),
            password_policy=PasswordPolicy(**doc.password_policy.model_dump()),
            sessions=SessionPolicy(**doc.sessions.model_dump()),
            reauthentication_max_age_minutes=doc.reauthentication_max_age_minutes,
            created_at=doc.created_at,
            updated_at=datetime.fromtimestamp(doc.updated_at_ms / 1000, UTC) if doc.updated_at_ms else None,
        )


# -- the input: every field optional (create: defaults for what is missing; update: what changes) ------

@strawberry.input
class RegistrationPolicyInput:
    enabled: bool | None = strawberry.UNSET
    activation_link_lifetime_minutes: int | None = strawberry.UNSET
    social_enabled: bool | None = strawberry.UNSET


@strawberry.input
class PasswordResetPolicyInput:
    enabled: bool | None = strawberry.UNSET
    link_lifetime_minutes: int | None = strawberry.UNSET


@strawberry.input
class UsernameReminderPolicyInput:
    enabled: bool | None = strawberry.UNSET


@strawberry.input
class EmailChangePolicyInput:
    link_lifetime_minutes: int | None = strawberry.UNSET


@strawberry.input
class AccountManagementPolicyInput:
    personal_information: bool | None = strawberry.UNSET
    account_settings: bool | None = strawberry.UNSET
    security_settings: bool | None = strawberry.UNSET
    privacy_and_data: bool | None = strawberry.UNSET
    account_deletion: bool | None = strawberry.UNSET
    data_export: bool | None = strawberry.UNSET


@strawberry.input
class AccountDeletionPolicyInput:
    grace_days: int | None = strawberry.UNSET


@strawberry.input
class MfaPolicyInput:
    mode: MfaMode | None = strawberry.UNSET
    factors: list[MfaFactorType] | None = strawberry.UNSET


@strawberry.input
class PasskeyPolicyInput:
    enabled: bool | None = strawberry.UNSET


@strawberry.input
class EmailSignInPolicyInput:
    enabled: bool | None = strawberry.UNSET


@strawberry.input
class PasswordPolicyInput:
    min_length: int | None = strawberry.UNSET
    max_length: int | None = strawberry.UNSET
    check_common_passwords: bool | None = strawberry.UNSET


@strawberry.input
class SessionPolicyInput:
    absolute_lifetime_minutes: int | None = strawberry.UNSET
    idle_timeout_minutes: int | None = strawberry.UNSET


@strawberry.input(description="A self-service policy's fields. Create: `name` is required, the rest defaults. "
                              "Update: only the fields given change (a section changes only the fields given in "
                              "it); null clears only the session lifetimes. Bounds: docs/api.md.")
class SelfServicePolicyInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    registration: RegistrationPolicyInput | None = strawberry.UNSET
    password_reset: PasswordResetPolicyInput | None = strawberry.UNSET
    username_reminder: UsernameReminderPolicyInput | None = strawberry.UNSET
    username_mode: UsernameMode | None = strawberry.UNSET
    email_change: EmailChangePolicyInput | None = strawberry.UNSET
    account_management: AccountManagementPolicyInput | None = strawberry.UNSET
    account_deletion: AccountDeletionPolicyInput | None = strawberry.UNSET
    mfa: MfaPolicyInput | None = strawberry.UNSET
    passwordless: bool | None = strawberry.UNSET
    passkeys: PasskeyPolicyInput | None = strawberry.UNSET
    email_sign_in: EmailSignInPolicyInput | None = strawberry.UNSET
    password_policy: PasswordPolicyInput | None = strawberry.UNSET
    sessions: SessionPolicyInput | None = strawberry.UNSET
    reauthentication_max_age_minutes: int | None = strawberry.UNSET


@strawberry.type
class SelfServicePolicyDeleted:
    id: strawberry.ID


SelfServicePolicyResult = Annotated[
    SelfServicePolicy | InvalidInputError | NotFoundError | ConflictError, strawberry.union("SelfServicePolicyResult")
]
SelfServicePolicyCreateResult = Annotated[
    SelfServicePolicy | InvalidInputError, strawberry.union("SelfServicePolicyCreateResult")
]
SelfServicePolicyDeleteResult = Annotated[
    SelfServicePolicyDeleted | NotFoundError | PolicyInUseError | InvalidInputError,
    strawberry.union("SelfServicePolicyDeleteResult"),
]


@strawberry.type
class PolicyQueries:
    @strawberry.field(description="Every self-service policy, by name.",
                      extensions=requires(HasPermission("policies:read")))
    async def self_service_policies(self, info: Info) -> list[SelfServicePolicy]:
        return [SelfServicePolicy.from_doc(doc) for doc in await policies.list_policies(info.context)]

    @strawberry.field(description="One self-service policy, or null when no policy has this id.",
                      extensions=requires(HasPermission("policies:read")))
    async def self_service_policy(self, info: Info, id: strawberry.ID) -> SelfServicePolicy | None:
        doc = await policies.get(info.context, str(id))
        return SelfServicePolicy.from_doc(doc) if doc else None


@strawberry.type
class PolicyMutations:
    @strawberry.mutation(description="Creates a self-service policy (version 1).",
                         extensions=requires(HasPermission("policies:write")))
    async def self_service_policy_create(self, info: Info,
                                         input: SelfServicePolicyInput) -> SelfServicePolicyCreateResult:
        return SelfServicePolicy.from_doc(await policies.create(info.context, given(input)))

    @strawberry.mutation(description="Changes the given fields of a policy read at `version`. A stale version: "
                                     "ConflictError with the current one (nothing is written).",
                         extensions=requires(HasPermission("policies:write")))
    async def self_service_policy_update(self, info: Info, id: strawberry.ID, version: int,
                                         input: SelfServicePolicyInput) -> SelfServicePolicyResult:
        return SelfServicePolicy.from_doc(await policies.update(info.context, str(id), version, given(input)))

    @strawberry.mutation(description="Deletes a policy no application uses (PolicyInUseError otherwise). The "
                                     "default policy cannot be deleted.",
                         extensions=requires(HasPermission("policies:write")))
    async def self_service_policy_delete(self, info: Info, id: strawberry.ID) -> SelfServicePolicyDeleteResult:
        await policies.delete(info.context, str(id))
        return SelfServicePolicyDeleted(id=id)

