"""Admin sign-in and customer administration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import account, admins, customers, mfa, profile, sessions
from resolvers.errors import Problems
from schema.errors import (
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
)
from schema.permissions import HasPermission, IsAdmin, requires
from schema.profile import ProfileUpdateInput, profile_changes
from schema.sessions import DEVICE_TOKEN_DESCRIPTION, SessionCreated, session_created
from schema.types import Admin, Customer, CustomerStatus


@strawberry.input
class AdminSessionCreateInput:
    email: str
    password: str
    device_token: str | None = strawberry.field(default=None, description=DEVICE_TOKEN_DESCRIPTION)


AdminSessionCreateResult = Annotated[
    SessionCreated | InvalidCredentialsError | RateLimitedError | InvalidInputError,
    strawberry.union("AdminSessionCreateResult"),
]


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.input(description="Narrows the customer listing; every condition given must hold.")
class CustomerFilter:
    status: CustomerStatus | None = None
    created_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.type(description="A page of customers in id order: stable (a customer added meanwhile never shifts a "
                              "later page), not chronological.")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo
    listing: strawberry.Private[customers.Listing]

    @strawberry.field(description="How many customers match, all pages together.")
    async def total_count(self, info: Info) -> int:
        return await customers.count(info.context, self.listing)


@strawberry.type(description="Every session of the customer ended.")
class CustomerSessionsRevoked:
    customer_id: strawberry.ID
    revoked_count: int


@strawberry.type(description="The mail is in the outbox, on its way to the customer.")
class CustomerMailSent:
    customer_id: strawberry.ID


@strawberry.type(description="The customer was erased: nothing of them remains but the deletion's audit event.")
class CustomerDeleted:
    customer_id: strawberry.ID


@strawberry.type(description="Every second factor of the customer was removed; they were told by mail.")
class CustomerMfaReset:
    customer_id: strawberry.ID
    factors_removed: int


CustomerStatusResult = Annotated[Customer | NotFoundError, strawberry.union("CustomerStatusResult")]
CustomerUpdateResult = Annotated[Customer | InvalidInputError | NotFoundError, strawberry.union("CustomerUpdateResult")]
CustomerDeleteResult = Annotated[CustomerDeleted | NotFoundError, strawberry.union("CustomerDeleteResult")]
CustomerMfaResetResult = Annotated[CustomerMfaReset | NotFoundError, strawberry.union("CustomerMfaResetResult")]
CustomerSessionsRevokeResult = Annotated[CustomerSessionsRevoked | NotFoundError,
                                         strawberry.union("CustomerSessionsRevokeResult")]
CustomerPasswordResetSendResult = Annotated[
    CustomerMailSent | NotFoundError | InvalidInputError | FeatureDisabledError | RateLimitedError,
    strawberry.union("CustomerPasswordResetSendResult"),
]
CustomerActivationResendResult = Annotated[
    CustomerMailSent | NotFoundError | InvalidInputError | RateLimitedError,
    strawberry.union("CustomerActivationResendResult"),
]


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

    @strawberry.field(description="The customers of the request application's identity store, in id order, at "
                                  "most 100 a page. `search`: the start of the email, username, given name or "
                                  "family name (any case). A bad argument is a top-level BAD_USER_INPUT error.",
                      extensions=requires(HasPermission("customers:read")))
    async def customers(self, info: Info, first: int = 20, after: str | None = None, search: str | None = None,
                        filter: CustomerFilter | None = None) -> CustomerConnection:
        problems = Problems()
        filter = filter or CustomerFilter()
        listing = customers.build_listing(search=search, status=filter.status.value if filter.status else None,
                                    created_after=filter.created_after, created_before=filter.created_before,
                                    problems=problems)
        docs, has_next = await customers.page(info.context, first=first, after=after, listing=listing,
                                              problems=problems)
        edges = [CustomerEdge(cursor=customers.encode_cursor(d), node=Customer.from_doc(d)) for d in docs]
        return CustomerConnection(edges=edges, listing=listing, page_info=PageInfo(
            has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class AdminMutations:
    @strawberry.mutation(description="Signs an admin in. Admin tokens never work on customer fields, nor the reverse.")
    async def admin_session_create(self, info: Info, input: AdminSessionCreateInput) -> AdminSessionCreateResult:
        return session_created(await sessions.sign_in(info.context, sessions.ADMIN, input.email, input.password,
                                                      input.device_token))

    @strawberry.mutation(description="Changes a customer's profile and attributes, validated against the attribute "
                                     "schema: only the fields given, all or nothing. An admin may also set attributes "
                                     "customers cannot see or edit. The email changes only through the customer's "
                                     "email-change flow.", extensions=requires(HasPermission("customers:write")))
    async def customer_update(self, info: Info, id: strawberry.ID, input: ProfileUpdateInput) -> CustomerUpdateResult:
        updated = await profile.update_attributes(info.context, str(id), profile_changes(input), by_admin=True)
        return Customer.from_doc(updated)

    @strawberry.mutation(description="Erases a customer now: the same sweep as self-service deletion (every piece of "
                                     "their data, in every collection; the email and username become free).",
                         extensions=requires(HasPermission("customers:delete")))
    async def customer_delete(self, info: Info, id: strawberry.ID) -> CustomerDeleteResult:
        await account.erase_account(info.context, str(id), actor=account.Actor.staff(info.context))
        return CustomerDeleted(customer_id=id)

    @strawberry.mutation(description="Removes every second factor of a customer (a lost phone and lost recovery "
                                     "codes) and ends their pending second-factor steps; they are told by mail.",
                         extensions=requires(HasPermission("customers:recover")))
    async def customer_mfa_reset(self, info: Info, id: strawberry.ID) -> CustomerMfaResetResult:
        removed = await mfa.reset_factors(info.context, str(id))
        return CustomerMfaReset(customer_id=id, factors_removed=removed)

    @strawberry.mutation(description="Disables a customer: every session ends at once, their tokens stop working, "
                                     "and signing in is refused until customerEnable.",
                         extensions=requires(HasPermission("customers:write")))
    async def customer_disable(self, info: Info, id: strawberry.ID) -> CustomerStatusResult:
        return Customer.from_doc(await customers.disable(info.context, str(id)))

    @strawberry.mutation(description="Enables a disabled customer again (active, or pending if never activated).",
                         extensions=requires(HasPermission("customers:write")))
    async def customer_enable(self, info: Info, id: strawberry.ID) -> CustomerStatusResult:
        return Customer.from_doc(await customers.enable(info.context, str(id)))

    @strawberry.mutation(description="Ends every session of a customer; the account stays as it is.",
                         extensions=requires(HasPermission("sessions:write")))
    async def customer_sessions_revoke(self, info: Info, id: strawberry.ID) -> CustomerSessionsRevokeResult:
        ended = await customers.revoke_sessions(info.context, str(id))
        return CustomerSessionsRevoked(customer_id=id, revoked_count=ended)

    @strawberry.mutation(description="Sends an active customer the normal password-reset mail, as the request's "
                                     "application.", extensions=requires(HasPermission("customers:recover")))
    async def customer_password_reset_send(self, info: Info, id: strawberry.ID) -> CustomerPasswordResetSendResult:
        await customers.send_password_reset(info.context, str(id))
        return CustomerMailSent(customer_id=id)

    @strawberry.mutation(description="Sends a pending customer a new activation link (the previous one stops "
                                     "working).", extensions=requires(HasPermission("customers:recover")))
    async def customer_activation_resend(self, info: Info, id: strawberry.ID) -> CustomerActivationResendResult:
        await customers.resend_activation(info.context, str(id))
        return CustomerMailSent(customer_id=id)
