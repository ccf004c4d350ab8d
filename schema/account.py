"""Registration and activation."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import registration
from schema.errors import (
    FeatureDisabledError,
    InvalidInputError,
    InvalidTokenError,
    PasswordPolicyError,
    RateLimitedError,
)


@strawberry.input
class AccountRegisterInput:
    email: str
    password: str | None = strawberry.field(
        default=None, description="Required, unless the application's policy is passwordless: then leave it out.")
    username: str | None = strawberry.UNSET
    given_name: str | None = strawberry.UNSET
    family_name: str | None = strawberry.UNSET


@strawberry.type(description="Registration was accepted. The same answer whether or not the email was known.")
class AccountRegisterAccepted:
    requires_activation: bool


@strawberry.type
class AccountActivated:
    activated: bool = True


@strawberry.type(description="Always the answer, whether or not a pending account has this email.")
class AccountActivationResent:
    accepted: bool = True


AccountRegisterResult = Annotated[
    AccountRegisterAccepted | InvalidInputError | PasswordPolicyError | FeatureDisabledError | RateLimitedError,
    strawberry.union("AccountRegisterResult"),
]
AccountActivateResult = Annotated[AccountActivated | InvalidTokenError, strawberry.union("AccountActivateResult")]
AccountActivationResendResult = Annotated[
    AccountActivationResent | InvalidInputError | RateLimitedError, strawberry.union("AccountActivationResendResult")
]


def _opt(value):
    return None if value is strawberry.UNSET else value


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Registers a customer; an activation link is emailed.")
    async def account_register(self, info: Info, input: AccountRegisterInput) -> AccountRegisterResult:
        await registration.register(
            info.context, email=input.email, password=input.password, username=_opt(input.username),
            given_name=_opt(input.given_name), family_name=_opt(input.family_name),
        )
        return AccountRegisterAccepted(requires_activation=True)

    @strawberry.mutation(description="Activates an account with the token from the emailed link.")
    async def account_activate(self, info: Info, token: str) -> AccountActivateResult:
        await registration.activate(info.context, token)
        return AccountActivated()

    @strawberry.mutation(description="Emails a new activation link if a pending account has this address.")
    async def account_activation_resend(self, info: Info, email: str) -> AccountActivationResendResult:
        await registration.resend_activation(info.context, email)
        return AccountActivationResent()
