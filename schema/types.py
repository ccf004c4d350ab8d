"""Object types shared by several capabilities."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from resolvers import audit, customers
from resolvers import profile as personal_information
from resolvers.self_service import Area, areas
from resolvers.sessions import labels_of
from schema import account_settings, privacy
from schema.permissions import deny
from schema.profile import CustomerAttribute, Profile
from schema.security import CustomerSecurity
from stores.documents import AdminDocument, CustomerDocument, SessionDocument

if TYPE_CHECKING:
    from schema.audit import SecurityActivityConnection


@strawberry.enum
class CustomerStatus(Enum):
    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@strawberry.type(description="A sign-in of a customer or admin.")
class Session:
    id: strawberry.ID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    current: bool = strawberry.field(description="True for the session making this request.")
    device: str | None = strawberry.field(default=None, description="The device, from the user agent "
                                          "(\"iPhone\"); null for a computer or when unknown.")
    browser: str | None = strawberry.field(default=None, description="Browser or app and its major version "
                                           "(\"Firefox 121\"); null when unknown.")
    os: str | None = strawberry.field(default=None, description="Operating system and version (\"Windows 10\", "
                                      "\"iOS 17.1\"); null when unknown.")

    @classmethod
    def from_doc(cls, doc: SessionDocument, current_session_id: str | None = None) -> Session:
        idle_expiry = _from_ms(doc.idle_expires_at_ms)
        agent = labels_of(doc)
        return cls(id=strawberry.ID(doc.id), created_at=doc.created_at, last_seen_at=_from_ms(doc.last_seen_at_ms),
                   expires_at=min(doc.expires_at, idle_expiry), ip_address=doc.ip_address,
                   user_agent=doc.user_agent, current=doc.id == current_session_id,
                   device=agent.device, browser=agent.browser, os=agent.os)


@strawberry.type(description="Which self-service areas the application's policy has on: draw only these tabs. "
                              "An area that is off answers FeatureDisabledError.")
class SelfService:
    personal_information: bool
    account_settings: bool
    security_settings: bool
    privacy_and_data: bool
    account_deletion: bool = strawberry.field(description="Within account settings.")
    data_export: bool = strawberry.field(description="Within privacy and data.")


@strawberry.type(description="A customer account in the identity store.")
class Customer:
    id: strawberry.ID
    username: str
    email: str
    email_verified: bool
    given_name: str | None
    family_name: str | None
    created_at: datetime
    status: CustomerStatus

    @strawberry.field(description="The customer's active sessions, newest first.")
    async def sessions(self, info: Info) -> list[Session]:
        principal = info.context.principal
        if principal is not None and principal.kind == "admin" and "sessions:read" not in principal.permissions:
            raise deny("FORBIDDEN")
        docs = await info.context.loaders.sessions.load(str(self.id))
        current = principal.session_id if principal is not None else None
        return [Session.from_doc(doc, current) for doc in docs]

    @strawberry.field(description="The self-service areas this application's policy has on.")
    def self_service(self, info: Info) -> SelfService:
        on = areas(info.context)
        return SelfService(**{area.value: on[area] for area in Area})

    # -- personal information --------------------------------------------------------------------

    @strawberry.field(description="The standard attributes. The customer's own: from their session, no extra read.")
    async def profile(self, info: Info) -> Profile:
        return Profile.from_model(await personal_information.profile_of(info.context, str(self.id)))

    @strawberry.field(description="Custom attributes: a customer sees the self-service visible ones; an admin "
                                  "with customers:read every one, archived included.")
    async def attributes(self, info: Info) -> list[CustomerAttribute]:
        views = await personal_information.attributes_of(info.context, str(self.id))
        return [CustomerAttribute.from_view(view) for view in views]

    # -- account settings ------------------------------------------------------------------------
    login_methods = strawberry.field(resolver=account_settings.login_methods,
                                     description="The password, MFA factors and linked identities.")

    # -- security settings -----------------------------------------------------------------------

    @strawberry.field(description="Password and second factors. Never shows a secret.")
    def security(self) -> CustomerSecurity:
        return CustomerSecurity(customer_id=str(self.id))

    # -- privacy and data ------------------------------------------------------------------------
    consents = strawberry.field(resolver=privacy.customer_consents,
                                description="Each consent item of an application and the customer's answer.")
    consent_history = strawberry.field(resolver=privacy.customer_consent_history,
                                       description="The customer's newest consent events (at most 100), newest "
                                                   "first (at most 100); the data export holds the newest 5,000.")

    # -- administration --------------------------------------------------------------------------

    @strawberry.field(description="How many sessions the customer has open (counted for a whole page at once).")
    async def session_count(self, info: Info) -> int:
        return await customers.session_count(info.context, str(self.id))

    @strawberry.field(description="True when the customer has at least one confirmed second factor (for a whole "
                                  "page at once).")
    async def mfa_enabled(self, info: Info) -> bool:
        return await customers.mfa_enabled(info.context, str(self.id))

    @strawberry.field(description="Security events about this account (sign-ins, failed attempts, changes), "
                                  "newest first: at most 100 a page. An admin needs customers:read.")
    async def security_activity(
        self, info: Info, first: int = 20, after: str | None = None,
    ) -> Annotated[SecurityActivityConnection, strawberry.lazy("schema.audit")]:
        from schema.audit import security_activity_connection

        page = await audit.security_activity(info.context, str(self.id), first=first, after=after)
        return security_activity_connection(page)

    @classmethod
    def from_doc(cls, doc: CustomerDocument) -> Customer:
        return cls(id=strawberry.ID(doc.id), username=doc.username, email=doc.email,
                   email_verified=doc.email_verified, given_name=doc.given_name, family_name=doc.family_name,
                   created_at=doc.created_at, status=CustomerStatus(doc.status))


@strawberry.enum
class AdminStatus(Enum):
    INVITED = "invited"  # cannot sign in until the emailed invitation is accepted
    ACTIVE = "active"
    DISABLED = "disabled"


@strawberry.type(description="An administrator.")
class Admin:
    id: strawberry.ID
    email: str
    role: str
    permissions: list[str]
    created_at: datetime
    status: AdminStatus = strawberry.field(description="INVITED until the emailed invitation is accepted.")
    last_sign_in_at: datetime | None

    @classmethod
    def from_doc(cls, doc: AdminDocument, permissions: frozenset[str]) -> Admin:
        return cls(id=strawberry.ID(doc.id), email=doc.email, role=doc.role,
                   permissions=sorted(permissions), created_at=doc.created_at, status=AdminStatus(doc.status),
                   last_sign_in_at=_from_ms(doc.last_sign_in_at_ms) if doc.last_sign_in_at_ms else None)
