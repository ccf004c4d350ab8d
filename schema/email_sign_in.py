"""Emailed sign-in links and codes (where the policy's emailSignIn is on)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import email_sign_in
from schema.errors import (
    AccountNotActivatedError,
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidTokenError,
    RateLimitedError,
)
from schema.sessions import DEVICE_TOKEN_DESCRIPTION, MfaRequired, SessionCreated, sign_in_result


@strawberry.input
class EmailSignInRequestInput:
    email: str
    redirect_url: str | None = strawberry.field(
        default=None, description="One of the application's redirect URLs: the mailed link's confirm page sends the "
                                  "browser there with `?token=<grant>` (exchange it with emailSignInComplete). "
                                  "Without it the mail holds only the code.")


@strawberry.input
class EmailSignInCodeVerifyInput:
    email: str
    code: str = strawberry.field(description="The 6 digits from the email.")
    device_token: str | None = strawberry.field(default=None, description=DEVICE_TOKEN_DESCRIPTION)


@strawberry.input
class EmailSignInCompleteInput:
    grant: str = strawberry.field(description="The `token` query parameter the confirmed link brought back.")
    device_token: str | None = strawberry.field(default=None, description=DEVICE_TOKEN_DESCRIPTION)


@strawberry.type(description="Always the answer, whether or not an account has this address: if one does, a sign-in "
                              "link and code are on their way (valid 10 minutes, one use).")
class EmailSignInRequested:
    accepted: bool = True


EmailSignInRequestResult = Annotated[
    EmailSignInRequested | InvalidInputError | FeatureDisabledError | RateLimitedError,
    strawberry.union("EmailSignInRequestResult"),
]
EmailSignInResult = Annotated[
    SessionCreated | MfaRequired | InvalidCredentialsError | InvalidTokenError | InvalidInputError
    | AccountNotActivatedError | FeatureDisabledError | RateLimitedError,
    strawberry.union("EmailSignInResult"),
]


@strawberry.type
class EmailSignInMutations:
    @strawberry.mutation(description="Emails a one-time sign-in code (and a link, with `redirectUrl`) to the account "
                                     "with this address, if there is one; the same answer either way.")
    async def email_sign_in_request(self, info: Info, input: EmailSignInRequestInput) -> EmailSignInRequestResult:
        await email_sign_in.request(info.context, input.email, input.redirect_url)
        return EmailSignInRequested()

    @strawberry.mutation(description="Signs in with the emailed code (five wrong codes end it); a customer with a "
                                     "second factor gets MfaRequired.")
    async def email_sign_in_code_verify(self, info: Info, input: EmailSignInCodeVerifyInput) -> EmailSignInResult:
        return sign_in_result(await email_sign_in.verify_code(info.context, input.email, input.code,
                                                              input.device_token))

    @strawberry.mutation(description="Signs in with the grant a confirmed sign-in link sent the browser back with; a "
                                     "customer with a second factor gets MfaRequired.")
    async def email_sign_in_complete(self, info: Info, input: EmailSignInCompleteInput) -> EmailSignInResult:
        return sign_in_result(await email_sign_in.complete(info.context, input.grant, input.device_token))
