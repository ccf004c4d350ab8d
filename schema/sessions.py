"""Customer sign-in, sign-out and the signed-in customer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import customers, mfa, sessions
from schema.errors import (
    AccountNotActivatedError,
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    RateLimitedError,
)
from schema.permissions import IsAuthenticated, IsCustomer, requires
from schema.security import MfaFactorType, factor_type, factor_types
from schema.types import Customer, Session

DEVICE_TOKEN_DESCRIPTION = (
    "The `deviceToken` of an earlier sign-in to this account from this device, if the client kept one: "
    "failed attempts then count against this device alone, so attacks from elsewhere cannot lock it out."
)


@strawberry.input
class SessionCreateInput:
    identifier: str = strawberry.field(description="Email address or username.")
    password: str
    device_token: str | None = strawberry.field(default=None, description=DEVICE_TOKEN_DESCRIPTION)


@strawberry.type(description="The new session's id and expiry, shown to its owner.")
class SessionInfo:
    id: strawberry.ID
    expires_at: datetime


@strawberry.type
class SessionCreated:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`. Shown once.")
    session: SessionInfo
    device_token: str = strawberry.field(description=(
        "Keep it on this device (a long-lived cookie or app storage) and send it with the next sign-in "
        "to this account as `deviceToken`. Not a credential: it cannot sign anyone in."))


@strawberry.type
class SessionEnded:
    ended: bool = True


@strawberry.type(description="The password was right; a second factor completes the sign-in: call "
                              "sessionMfaVerify with `challengeToken` and a code from one of `factors` within 5 "
                              "minutes (five wrong codes end it).")
class MfaRequired:
    challenge_token: str = strawberry.field(description="Shown once; send it back with sessionMfaVerify.")
    factors: list[MfaFactorType] = strawberry.field(description="What the code may come from.")
    expires_at: datetime
    code_sent: bool = strawberry.field(description="An emailed code is on its way (when EMAIL_OTP is offered and no "
                                                   "authenticator app is; otherwise ask with sessionMfaCodeSend).")


@strawberry.input
class SessionMfaVerifyInput:
    challenge_token: str
    factor: MfaFactorType
    code: str = strawberry.field(description="TOTP or emailed: 6 digits; a recovery code: as shown (XXXXX-XXXXX).")


@strawberry.input
class SessionMfaCodeSendInput:
    challenge_token: str


@strawberry.type(description="A code is on its way to the account's email address.")
class MfaCodeSent:
    expires_at: datetime


@strawberry.input(description="Either `password`, or `factor` and `code` (a customer's second factor; for EMAIL_OTP "
                              "ask for the code with sessionReauthenticateCodeSend first).")
class SessionReauthenticateInput:
    password: str | None = None
    factor: MfaFactorType | None = None
    code: str | None = None


@strawberry.type
class SessionRevoked:
    id: strawberry.ID


@strawberry.type
class SessionsRevoked:
    count: int = strawberry.field(description="How many sessions ended.")


@strawberry.type(description="The session is freshly authenticated. Its token changed: use the new one from now on.")
class SessionReauthenticated:
    token: str = strawberry.field(description="The session's new bearer token; the old one no longer works.")
    session: SessionInfo


SessionReauthenticateResult = Annotated[
    SessionReauthenticated | InvalidCredentialsError | RateLimitedError | InvalidInputError,
    strawberry.union("SessionReauthenticateResult"),
]
SessionCreateResult = Annotated[
    SessionCreated | MfaRequired | InvalidCredentialsError | AccountNotActivatedError | RateLimitedError
    | InvalidInputError,
    strawberry.union("SessionCreateResult"),
]
SessionMfaVerifyResult = Annotated[
    SessionCreated | InvalidCredentialsError | InvalidTokenError | RateLimitedError | InvalidInputError,
    strawberry.union("SessionMfaVerifyResult"),
]
SessionMfaCodeSendResult = Annotated[
    MfaCodeSent | InvalidTokenError | RateLimitedError, strawberry.union("SessionMfaCodeSendResult"),
]
SessionReauthenticateCodeSendResult = Annotated[
    MfaCodeSent | FeatureDisabledError | RateLimitedError, strawberry.union("SessionReauthenticateCodeSendResult"),
]
SessionRevokeResult = Annotated[
    SessionRevoked | NotFoundError | FeatureDisabledError, strawberry.union("SessionRevokeResult"),
]
SessionRevokeOthersResult = Annotated[
    SessionsRevoked | FeatureDisabledError, strawberry.union("SessionRevokeOthersResult"),
]


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def sign_in_result(outcome: sessions.SignedIn | sessions.MfaRequired) -> SessionCreated | MfaRequired:
    if isinstance(outcome, sessions.MfaRequired):
        return MfaRequired(challenge_token=outcome.challenge_token, factors=factor_types(outcome.factors),
                           expires_at=_at(outcome.expires_at_ms), code_sent=outcome.code_sent)
    return session_created(outcome)


def session_created(signed_in: sessions.SignedIn) -> SessionCreated:
    view = Session.from_doc(signed_in.session)
    return SessionCreated(token=signed_in.token, session=SessionInfo(id=view.id, expires_at=view.expires_at),
                          device_token=signed_in.device_token)


@strawberry.type
class SessionQueries:
    @strawberry.field(description="The signed-in customer.", extensions=requires(IsCustomer()))
    async def me(self, info: Info) -> Customer | None:
        return Customer.from_doc(await customers.me(info.context))


@strawberry.type
class SessionMutations:
    @strawberry.mutation(description="Signs a customer in with email or username and password; a customer with a "
                                     "second factor (or under a policy that requires one) gets MfaRequired instead.")
    async def session_create(self, info: Info, input: SessionCreateInput) -> SessionCreateResult:
        return sign_in_result(await sessions.sign_in(info.context, sessions.CUSTOMER, input.identifier,
                                                     input.password, input.device_token))

    @strawberry.mutation(description="Completes a sign-in that answered MfaRequired, with a second factor's code.")
    async def session_mfa_verify(self, info: Info, input: SessionMfaVerifyInput) -> SessionMfaVerifyResult:
        return session_created(await sessions.verify_mfa(info.context, input.challenge_token,
                                                         factor_type(input.factor), input.code))

    @strawberry.mutation(description="Mails a code for a sign-in that answered MfaRequired with EMAIL_OTP among its "
                                     "factors (at most 3 per sign-in).")
    async def session_mfa_code_send(self, info: Info, input: SessionMfaCodeSendInput) -> SessionMfaCodeSendResult:
        return MfaCodeSent(expires_at=_at(await mfa.send_sign_in_code(info.context, input.challenge_token)))

    @strawberry.mutation(description="Mails a code to re-authenticate this session with (sessionReauthenticate, "
                                     "factor EMAIL_OTP), when emailed codes are one of the customer's factors.",
                         extensions=requires(IsCustomer()))
    async def session_reauthenticate_code_send(self, info: Info) -> SessionReauthenticateCodeSendResult:
        return MfaCodeSent(expires_at=_at(await mfa.send_reauthentication_code(info.context)))

    @strawberry.mutation(description="Proves it is still you (the password, or a customer's second factor), before "
                                     "changes that need a recent authentication (reauthenticationMaxAgeMinutes). "
                                     "Rotates the session's token.",
                         extensions=requires(IsAuthenticated()))
    async def session_reauthenticate(self, info: Info,
                                     input: SessionReauthenticateInput) -> SessionReauthenticateResult:
        signed_in = await sessions.reauthenticate(info.context, input.password, factor_type(input.factor),
                                                  input.code)
        view = Session.from_doc(signed_in.session)
        return SessionReauthenticated(token=signed_in.token,
                                      session=SessionInfo(id=view.id, expires_at=view.expires_at))

    @strawberry.mutation(description="Signs out the current session.",
                         extensions=requires(IsAuthenticated()))
    async def session_end(self, info: Info) -> SessionEnded:
        await sessions.sign_out(info.context)
        return SessionEnded()

    @strawberry.mutation(description="Ends one of the signed-in customer's sessions (see me.sessions).",
                         extensions=requires(IsCustomer()))
    async def session_revoke(self, info: Info, id: strawberry.ID) -> SessionRevokeResult:
        await sessions.revoke(info.context, str(id))
        return SessionRevoked(id=id)

    @strawberry.mutation(description="Ends every session of the signed-in customer except this one.",
                         extensions=requires(IsCustomer()))
    async def session_revoke_others(self, info: Info) -> SessionRevokeOthersResult:
        return SessionsRevoked(count=await sessions.revoke_others(info.context))
