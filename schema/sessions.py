"""Customer sign-in, sign-out and the signed-in customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import customers, sessions
from schema.errors import AccountNotActivatedError, InvalidCredentialsError, InvalidInputError, RateLimitedError
from schema.permissions import IsAuthenticated, IsCustomer, requires
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


@strawberry.input
class SessionReauthenticateInput:
    password: str


@strawberry.type(description="The session is freshly authenticated. Its token changed: use the new one from now on.")
class SessionReauthenticated:
    token: str = strawberry.field(description="The session's new bearer token; the old one no longer works.")
    session: SessionInfo


SessionReauthenticateResult = Annotated[
    SessionReauthenticated | InvalidCredentialsError | RateLimitedError | InvalidInputError,
    strawberry.union("SessionReauthenticateResult"),
]
SessionCreateResult = Annotated[
    SessionCreated | InvalidCredentialsError | AccountNotActivatedError | RateLimitedError | InvalidInputError,
    strawberry.union("SessionCreateResult"),
]


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
    @strawberry.mutation(description="Signs a customer in with email or username and password.")
    async def session_create(self, info: Info, input: SessionCreateInput) -> SessionCreateResult:
        return session_created(await sessions.sign_in(info.context, sessions.CUSTOMER, input.identifier,
                                                      input.password, input.device_token))

    @strawberry.mutation(description="Proves it is still you (the password), before changes that need a recent "
                                     "authentication (reauthenticationMaxAgeMinutes). Rotates the session's token.",
                         extensions=requires(IsAuthenticated()))
    async def session_reauthenticate(self, info: Info,
                                     input: SessionReauthenticateInput) -> SessionReauthenticateResult:
        signed_in = await sessions.reauthenticate(info.context, input.password)
        view = Session.from_doc(signed_in.session)
        return SessionReauthenticated(token=signed_in.token,
                                      session=SessionInfo(id=view.id, expires_at=view.expires_at))

    @strawberry.mutation(description="Signs out the current session.",
                         extensions=requires(IsAuthenticated()))
    async def session_end(self, info: Info) -> SessionEnded:
        await sessions.sign_out(info.context)
        return SessionEnded()
