"""Security settings: password change, second factors (MFA), and what `me.security` shows."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import mfa, passwords
from schema.errors import (
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    LastLoginMethodError,
    NotFoundError,
    PasswordPolicyError,
    RateLimitedError,
    ReauthenticationRequiredError,
)
from schema.permissions import IsCustomer, requires
from stores.documents import FactorType, MfaFactorDocument


@strawberry.enum(description="A kind of second factor.")
class MfaFactorType(Enum):
    TOTP = "TOTP"
    RECOVERY_CODE = "RECOVERY_CODE"
    EMAIL_OTP = "EMAIL_OTP"
    PASSKEY = "PASSKEY"  # answered with passkeySignInStart / passkeySignInFinish, not a code


def factor_type(value: MfaFactorType | None) -> FactorType | None:
    return FactorType(value.value) if value is not None else None


def factor_types(values: list[FactorType]) -> list[MfaFactorType]:
    return [MfaFactorType(v.value) for v in values]


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


@strawberry.type(description="One of the customer's second factors. Never shows a secret.")
class MfaFactor:
    id: strawberry.ID
    type: MfaFactorType
    created_at: datetime
    last_used_at: datetime | None
    remaining_codes: int | None = strawberry.field(description="RECOVERY_CODE: how many unused codes are left.")

    @classmethod
    def from_doc(cls, doc: MfaFactorDocument) -> MfaFactor:
        return cls(id=strawberry.ID(doc.id), type=MfaFactorType(doc.type.value), created_at=doc.created_at,
                   last_used_at=_from_ms(doc.last_used_at_ms),
                   remaining_codes=len(doc.recovery_code_hashes) if doc.type == FactorType.RECOVERY_CODE else None)


@strawberry.type(description="The customer's second factors.")
class MfaStatus:
    enabled: bool = strawberry.field(description="Sign-in asks this customer for a second factor (the policy's "
                                                 "mode and their factors decide).")
    factors: list[MfaFactor] = strawberry.field(description="Confirmed factors, oldest first.")


@strawberry.type(description="Security settings of a customer (the customer's own, or any for an admin "
                              "with customers:read).")
class CustomerSecurity:
    customer_id: strawberry.Private[str]

    @strawberry.field(description="False when the policy is passwordless, the security settings are off, or the "
                                  "account has no password: hide the Change Password screen.")
    async def can_change_password(self, info: Info) -> bool:
        return await mfa.can_change_password(info.context, self.customer_id)

    @strawberry.field
    async def mfa(self, info: Info) -> MfaStatus:
        factors = await mfa.factors_of(info.context, self.customer_id)
        return MfaStatus(enabled=mfa.enabled(info.context, factors), factors=[MfaFactor.from_doc(f) for f in factors])


@strawberry.input
class PasswordChangeInput:
    current_password: str
    new_password: str
    confirm_password: str


@strawberry.type(description="The password changed; every other session ended, this one stays.")
class PasswordChanged:
    sessions_ended: int


@strawberry.type(description="Add this secret to an authenticator app (or scan `otpauthUri` as a QR code), then "
                              "confirm with a code from it (mfaTotpConfirm). Shown once.")
class MfaTotpEnrollment:
    secret: str = strawberry.field(description="Base32, for typing in by hand.")
    otpauth_uri: str = strawberry.field(description="otpauth://totp/... with the application's name as issuer.")


@strawberry.input
class MfaTotpConfirmInput:
    code: str = strawberry.field(description="The 6-digit code the app shows now.")


@strawberry.type
class MfaFactorAdded:
    factor: MfaFactor


@strawberry.type(description="Store these codes somewhere safe: each signs in once, and they are shown only now. "
                              "Earlier codes no longer work.")
class MfaRecoveryCodes:
    codes: list[str]
    factor: MfaFactor


@strawberry.type
class MfaFactorRemoved:
    id: strawberry.ID


PasswordChangeResult = Annotated[
    PasswordChanged | InvalidCredentialsError | InvalidInputError | PasswordPolicyError | FeatureDisabledError
    | ReauthenticationRequiredError | RateLimitedError,
    strawberry.union("PasswordChangeResult"),
]
MfaTotpEnrollResult = Annotated[
    MfaTotpEnrollment | FeatureDisabledError | ReauthenticationRequiredError,
    strawberry.union("MfaTotpEnrollResult"),
]
MfaTotpConfirmResult = Annotated[
    MfaFactorAdded | InvalidInputError | NotFoundError | FeatureDisabledError | ReauthenticationRequiredError
    | RateLimitedError,
    strawberry.union("MfaTotpConfirmResult"),
]
MfaEmailOtpEnrollResult = Annotated[
    MfaFactorAdded | FeatureDisabledError | ReauthenticationRequiredError,
    strawberry.union("MfaEmailOtpEnrollResult"),
]
MfaRecoveryCodesRegenerateResult = Annotated[
    MfaRecoveryCodes | FeatureDisabledError | ReauthenticationRequiredError,
    strawberry.union("MfaRecoveryCodesRegenerateResult"),
]
MfaFactorRemoveResult = Annotated[
    MfaFactorRemoved | NotFoundError | FeatureDisabledError | ReauthenticationRequiredError
    | LastLoginMethodError,  # a passkey (its removal keeps the last-login-method rule)
    strawberry.union("MfaFactorRemoveResult"),
]


@strawberry.type
class SecurityMutations:
    @strawberry.mutation(description="Changes the signed-in customer's password. Needs a recent authentication and "
                                     "the current password; every other session ends; a notice is mailed.",
                         extensions=requires(IsCustomer()))
    async def password_change(self, info: Info, input: PasswordChangeInput) -> PasswordChangeResult:
        ended = await passwords.change_password(info.context, input.current_password, input.new_password,
                                                input.confirm_password)
        return PasswordChanged(sessions_ended=ended)

    @strawberry.mutation(description="Starts adding an authenticator app (TOTP). Needs a recent authentication.",
                         extensions=requires(IsCustomer()))
    async def mfa_totp_enroll(self, info: Info) -> MfaTotpEnrollResult:
        enrollment = await mfa.enroll_totp(info.context)
        return MfaTotpEnrollment(secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri)

    @strawberry.mutation(description="Activates the authenticator app started by mfaTotpEnroll with a current code. "
                                     "Needs a recent authentication.",
                         extensions=requires(IsCustomer()))
    async def mfa_totp_confirm(self, info: Info, input: MfaTotpConfirmInput) -> MfaTotpConfirmResult:
        return MfaFactorAdded(factor=MfaFactor.from_doc(await mfa.confirm_totp(info.context, input.code)))

    @strawberry.mutation(description="Turns on emailed one-time codes as a second factor. Needs a recent "
                                     "authentication.", extensions=requires(IsCustomer()))
    async def mfa_email_otp_enroll(self, info: Info) -> MfaEmailOtpEnrollResult:
        return MfaFactorAdded(factor=MfaFactor.from_doc(await mfa.enroll_email(info.context)))

    @strawberry.mutation(description="Creates 10 new recovery codes, replacing all earlier ones; shown once. Needs a "
                                     "recent authentication.", extensions=requires(IsCustomer()))
    async def mfa_recovery_codes_regenerate(self, info: Info) -> MfaRecoveryCodesRegenerateResult:
        generated = await mfa.regenerate_recovery_codes(info.context)
        return MfaRecoveryCodes(codes=generated.codes, factor=MfaFactor.from_doc(generated.factor))

    @strawberry.mutation(description="Removes one of the signed-in customer's second factors. Needs a recent "
                                     "authentication.", extensions=requires(IsCustomer()))
    async def mfa_factor_remove(self, info: Info, id: strawberry.ID) -> MfaFactorRemoveResult:
        removed = await mfa.remove_factor(info.context, str(id))
        return MfaFactorRemoved(id=strawberry.ID(removed.id))
