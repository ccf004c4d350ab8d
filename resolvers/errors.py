"""Domain errors. The schema turns each into a typed union member (or a top-level denial)."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    """An expected failure; each subclass becomes one member type of the result unions (schema/errors.py)."""

    code: str = "INVALID"
    message: str = "The request could not be completed."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.field = field


@dataclass
class FieldProblem:
    field: str
    code: str
    message: str


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    message = "Some fields are invalid."

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(self.message, field=problems[0].field if problems else None)
        self.problems = problems


class PasswordPolicyViolation(DomainError):
    code = "PASSWORD_POLICY"
    message = "The password does not meet the password policy."

    def __init__(self, reasons: list[str], field: str = "password") -> None:
        super().__init__(self.message, field=field)
        self.reasons = reasons


class PasswordMismatch(DomainError):
    code = "PASSWORD_MISMATCH"
    message = "The passwords do not match."


class FeatureDisabled(DomainError):
    code = "FEATURE_DISABLED"
    message = "This feature is disabled for this application."


class InvalidToken(DomainError):
    code = "INVALID_TOKEN"
    message = "This link is invalid or has expired. Please request a new one."


class InvalidCredentials(DomainError):
    code = "INVALID_CREDENTIALS"
    message = "The identifier or password is incorrect."


class AccountNotActivated(DomainError):
    code = "ACCOUNT_NOT_ACTIVATED"
    message = "This account is not activated yet. Use the link we emailed you, or ask for a new one."


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    message = "Too many attempts. Please try again later."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(self.message)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class NotFound(DomainError):
    code = "NOT_FOUND"
    message = "Not found."


class ReauthenticationRequired(DomainError):
    code = "REAUTHENTICATION_REQUIRED"
    message = "Confirm it is you: sign in again (sessionReauthenticate) before this change."

    def __init__(self, max_age_minutes: int) -> None:
        super().__init__(self.message)
        self.max_age_minutes = max_age_minutes


class LastLoginMethod(DomainError):
    code = "LAST_LOGIN_METHOD"
    message = "This is your last way to sign in: add another before you remove it."


class ConsentRequired(DomainError):
    code = "CONSENT_REQUIRED"
    message = "This consent is required to use the application and cannot be withdrawn."


class Conflict(DomainError):
    code = "CONFLICT"
    message = "Someone changed this since you read it: reload it and apply your change again."

    def __init__(self, current_version: int, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.current_version = current_version


class PolicyInUse(DomainError):
    code = "POLICY_IN_USE"
    message = "This policy is still assigned to applications: assign them another policy first."


class LastOwner(DomainError):
    code = "LAST_OWNER"
    message = "There must always be an active owner: make another admin owner first."


class RetryLater(Exception):
    """Raised by a job handler (``gateway/jobs.py``) that cannot finish yet: it runs again later."""


class Denied(Exception):
    """A top-level denial: UNAUTHENTICATED or FORBIDDEN (or BAD_USER_INPUT, below). Never a union member."""

    def __init__(self, code: str, message: str, extensions: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions or {}


class BadUserInput(Denied):
    """A top-level refusal of a field's arguments, ``extensions.code`` BAD_USER_INPUT, ``extensions.field``
    the first argument at fault: a connection's page size, cursor or filter. Relay clients paginate on
    the connection type itself, so this is no union member."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("BAD_USER_INPUT", " ".join(f"{p.field}: {p.message}" for p in problems),
                         {"field": problems[0].field})
        self.problems = problems


def unauthenticated() -> Denied:
    return Denied("UNAUTHENTICATED", "You must be signed in.")


def forbidden() -> Denied:
    return Denied("FORBIDDEN", "You do not have permission to do this.")


@dataclass
class Problems:
    """Collects field problems, then raises them together."""

    items: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, code: str, message: str) -> None:
        self.items.append(FieldProblem(field_name, code, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)
