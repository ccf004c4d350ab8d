"""The Error interface, its members, and the handlers that turn domain errors into them."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from resolvers import errors as domain


@strawberry.enum(description="Stable machine-readable error codes.")
class ErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    PASSWORD_POLICY = "PASSWORD_POLICY"
    PASSWORD_MISMATCH = "PASSWORD_MISMATCH"
    FEATURE_DISABLED = "FEATURE_DISABLED"
    INVALID_TOKEN = "INVALID_TOKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_NOT_ACTIVATED = "ACCOUNT_NOT_ACTIVATED"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_FOUND = "NOT_FOUND"
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    LAST_LOGIN_METHOD = "LAST_LOGIN_METHOD"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    CONFLICT = "CONFLICT"
    POLICY_IN_USE = "POLICY_IN_USE"
    LAST_OWNER = "LAST_OWNER"


@strawberry.interface(description="An expected failure, returned as a member of a result union.")
class Error:
    code: ErrorCode
    message: str
    field: str | None = strawberry.field(description="The input field at fault, if one is.")


@strawberry.type(description="One problem with one input field.")
class FieldError:
    field: str
    code: str
    message: str


@strawberry.type
class InvalidInputError(Error):
    fields: list[FieldError]


@strawberry.type
class PasswordPolicyError(Error):
    reasons: list[str] = strawberry.field(description="Each reason starts with a stable code, e.g. TOO_SHORT.")


@strawberry.type
class PasswordMismatchError(Error):
    pass


@strawberry.type
class FeatureDisabledError(Error):
    pass


@strawberry.type
class InvalidTokenError(Error):
    pass


@strawberry.type
class InvalidCredentialsError(Error):
    pass


@strawberry.type
class AccountNotActivatedError(Error):
    pass


@strawberry.type
class RateLimitedError(Error):
    retry_after_seconds: int


@strawberry.type
class NotFoundError(Error):
    pass


@strawberry.type(description="The session was authenticated too long ago for this change: call "
                              "sessionReauthenticate, then retry.")
class ReauthenticationRequiredError(Error):
    max_age_minutes: int = strawberry.field(description="How recent the authentication must be (the policy's).")


@strawberry.type(description="Removing this would leave no way to sign in.")
class LastLoginMethodError(Error):
    pass


@strawberry.type(description="A required consent cannot be withdrawn.")
class ConsentRequiredError(Error):
    pass


@strawberry.type(description="Optimistic concurrency: the object changed since it was read.")
class ConflictError(Error):
    current_version: int


@strawberry.type(description="The policy is still assigned to applications.")
class PolicyInUseError(Error):
    pass


@strawberry.type(description="The last active owner cannot be disabled or demoted.")
class LastOwnerError(Error):
    pass


def _base(exc: domain.DomainError) -> dict[str, Any]:
    return {"code": ErrorCode(exc.code), "message": exc.message, "field": exc.field}


class DomainErrorHandler:
    """One schema-level exception handler per (domain error, GraphQL error type) pair."""

    def __init__(self, exception_type: type[Exception], error_type: type, convert) -> None:
        self.exception_type = exception_type
        self.error_type = error_type
        self._convert = convert

    def handle(self, exception: Exception, *, field: Any, info: Any) -> Any:
        return self._convert(exception)


EXCEPTION_HANDLERS = [
    DomainErrorHandler(domain.InvalidInput, InvalidInputError, lambda e: InvalidInputError(
        **_base(e), fields=[FieldError(field=p.field, code=p.code, message=p.message) for p in e.problems])),
    DomainErrorHandler(domain.PasswordPolicyViolation, PasswordPolicyError,
                       lambda e: PasswordPolicyError(**_base(e), reasons=e.reasons)),
    DomainErrorHandler(domain.PasswordMismatch, PasswordMismatchError, lambda e: PasswordMismatchError(**_base(e))),
    DomainErrorHandler(domain.FeatureDisabled, FeatureDisabledError, lambda e: FeatureDisabledError(**_base(e))),
    DomainErrorHandler(domain.InvalidToken, InvalidTokenError, lambda e: InvalidTokenError(**_base(e))),
    DomainErrorHandler(domain.InvalidCredentials, InvalidCredentialsError,
                       lambda e: InvalidCredentialsError(**_base(e))),
    DomainErrorHandler(domain.AccountNotActivated, AccountNotActivatedError,
                       lambda e: AccountNotActivatedError(**_base(e))),
    DomainErrorHandler(domain.RateLimited, RateLimitedError,
                       lambda e: RateLimitedError(**_base(e), retry_after_seconds=e.retry_after_seconds)),
    DomainErrorHandler(domain.NotFound, NotFoundError, lambda e: NotFoundError(**_base(e))),
    DomainErrorHandler(domain.ReauthenticationRequired, ReauthenticationRequiredError,
                       lambda e: ReauthenticationRequiredError(**_base(e), max_age_minutes=e.max_age_minutes)),
    DomainErrorHandler(domain.LastLoginMethod, LastLoginMethodError, lambda e: LastLoginMethodError(**_base(e))),
    DomainErrorHandler(domain.ConsentRequired, ConsentRequiredError, lambda e: ConsentRequiredError(**_base(e))),
    DomainErrorHandler(domain.Conflict, ConflictError,
                       lambda e: ConflictError(**_base(e), current_version=e.current_version)),
    DomainErrorHandler(domain.PolicyInUse, PolicyInUseError, lambda e: PolicyInUseError(**_base(e))),
    DomainErrorHandler(domain.LastOwner, LastOwnerError, lambda e: LastOwnerError(**_base(e))),
]
