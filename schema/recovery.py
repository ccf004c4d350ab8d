"""Password reset and the forgotten-username reminder."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import recovery
from schema.errors import (
    FeatureDisabledError,
    InvalidInputError,
    InvalidTokenError,
    PasswordMismatchError,
    PasswordPolicyError,
    RateLimitedError,
)


@strawberry.input
class PasswordResetRequestInput:
    email: str


@strawberry.input
class PasswordResetInput:
    token: str
    new_password: str
    confirm_password: str


@strawberry.input
class UsernameReminderRequestInput:
    email: str


@strawberry.type(description="Always the answer: if an active account has this email, a reset link is on its way.")
class PasswordResetRequested:
    accepted: bool = True


@strawberry.type(description="The password was replaced and every session ended. Sign in again.")
class PasswordResetDone:
    done: bool = True


@strawberry.type(description="Always the answer: if an account has this email, its username is on its way.")
class UsernameReminderRequested:
    accepted: bool = True


PasswordResetRequestResult = Annotated[
    PasswordResetRequested | FeatureDisabledError | InvalidInputError | RateLimitedError,
    strawberry.union("PasswordResetRequestResult"),
]
PasswordResetResult = Annotated[
    PasswordResetDone | InvalidTokenError | PasswordMismatchError | PasswordPolicyError | RateLimitedError
    | FeatureDisabledError,
    strawberry.union("PasswordResetResult"),
]
UsernameReminderRequestResult = Annotated[
    UsernameReminderRequested | FeatureDisabledError | InvalidInputError | RateLimitedError,
    strawberry.union("UsernameReminderRequestResult"),
]


@strawberry.type
class RecoveryMutations:
    @strawberry.mutation(description="Emails a one-time password reset link to an active account with this email.")
    async def password_reset_request(self, info: Info, input: PasswordResetRequestInput) -> PasswordResetRequestResult:
        await recovery.request_password_reset(info.context, input.email)
        return PasswordResetRequested()

    @strawberry.mutation(description="Sets a new password from an emailed reset link.")
    async def password_reset(self, info: Info, input: PasswordResetInput) -> PasswordResetResult:
        await recovery.reset_password(info.context, input.token, input.new_password, input.confirm_password)
        return PasswordResetDone()

    @strawberry.mutation(description="Emails the username of the account with this email (USERNAME mode only).")
    async def username_reminder_request(self, info: Info,
                                        input: UsernameReminderRequestInput) -> UsernameReminderRequestResult:
        await recovery.request_username_reminder(info.context, input.email)
        return UsernameReminderRequested()
