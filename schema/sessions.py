"""Customer sign-in, sign-out and the signed-in customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import customers, sessions
from schema.errors import (
    AccountNotActivatedError,
    InvalidCredentialsError,
    InvalidInputError,
    RateLimitedError,
)
from schema.permissions import requires, IsAuthenticated, IsCustomer
from schema.types import Customer, Session


@strawberry.input
class SessionCreateInput:
    identifier: str = strawberry.field(description="Email address or username.")
    password: str


@strawberry.type(description="The new session's id and expiry, shown to its owner.")
class SessionInfo:
    id: strawberry.ID
    expires_at: datetime


@strawberry.type
class SessionCreated:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`. Shown once.")
    session: SessionInfo


@strawberry.type
class SessionEnded:
    ended: bool = True


SessionCreateResult = Annotated[
    SessionCreated | InvalidCredentialsError | AccountNotActivatedError | RateLimitedError | InvalidInputError,
    strawberry.union("SessionCreateResult"),
]


def session_created(token: str, doc) -> SessionCreated:
    view = Session.from_doc(doc)
    return SessionCreated(token=token, session=SessionInfo(id=view.id, expires_at=view.expires_at))


@strawberry.type
class SessionQueries:
    @strawberry.field(description="The signed-in customer.", extensions=requires(IsCustomer()))
    async def me(self, info: Info) -> Customer | None:
        return Customer.from_doc(await customers.me(info.context))


@strawberry.type
class SessionMutations:
    @strawberry.mutation(description="Signs a customer in with email or username and password.")
    async def session_create(self, info: Info, input: SessionCreateInput) -> SessionCreateResult:
        token, doc = await sessions.sign_in(info.context, input.identifier, input.password)
        return session_created(token, doc)

    @strawberry.mutation(description="Signs out the current session.",
                         extensions=requires(IsAuthenticated()))
    async def session_end(self, info: Info) -> SessionEnded:
        await sessions.sign_out(info.context)
        return SessionEnded()
