"""Admin sign-in and customer administration."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import admins, customers, sessions
from schema.errors import InvalidCredentialsError, InvalidInputError, RateLimitedError
from schema.permissions import HasPermission, IsAdmin, requires
from schema.sessions import DEVICE_TOKEN_DESCRIPTION, SessionCreated, session_created
from schema.types import Admin, Customer


@strawberry.input
class AdminSessionCreateInput:
    email: str
    password: str
    device_token: str | None = strawberry.field(default=None, description=DEVICE_TOKEN_DESCRIPTION)


AdminSessionCreateResult = Annotated[
    SessionCreated | InvalidCredentialsError | RateLimitedError | InvalidInputError,
    strawberry.union("AdminSessionCreateResult"),
]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(description="A page of customers, in a stable order.")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo


CustomersResult = Annotated[CustomerConnection | InvalidInputError, strawberry.union("CustomersResult")]


@strawberry.type
class AdminQueries:
    @strawberry.field(description="The signed-in admin.", extensions=requires(IsAdmin()))
    async def admin_me(self, info: Info) -> Admin | None:
        admin = await admins.get_self(info.context)
        return Admin.from_doc(admin, info.context.principal.permissions) if admin else None

    @strawberry.field(description="One customer by id.",
                      extensions=requires(HasPermission("customers:read")))
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        doc = await customers.get(info.context, str(id))
        return Customer.from_doc(doc) if doc else None

    @strawberry.field(description="Customers, at most 100 a page; `search` matches the start of email or username.",
                      extensions=requires(HasPermission("customers:read")))
    async def customers(self, info: Info, first: int = 20, after: str | None = None,
                        search: str | None = None) -> CustomersResult:
        docs, has_next = await customers.page(info.context, first=first, after=after, search=search)
        edges = [CustomerEdge(cursor=customers.encode_cursor(d.id), node=Customer.from_doc(d)) for d in docs]
        return CustomerConnection(edges=edges, page_info=PageInfo(
            has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class AdminMutations:
    @strawberry.mutation(description="Signs an admin in. Admin tokens never work on customer fields, nor the reverse.")
    async def admin_session_create(self, info: Info, input: AdminSessionCreateInput) -> AdminSessionCreateResult:
        return session_created(await sessions.sign_in(info.context, sessions.ADMIN, input.email, input.password,
                                                      input.device_token))
