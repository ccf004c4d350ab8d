"""Admin: applications, their branding, redirect URLs and consent policy (``applications:read``/``:write``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import applications, policies
from schema.errors import ConflictError, InvalidInputError, NotFoundError
from schema.inputs import given
from schema.permissions import HasPermission, requires
from schema.policies import SelfServicePolicy
from stores.documents import ApplicationDocument


@strawberry.type(description="What emails and hosted pages show for an application.")
class Branding:
    logo_url: str | None
    primary_color: str
    accent_color: str
    support_email: str | None


@strawberry.type(description="One thing an application asks its customers to agree to.")
class ConsentItem:
    key: str
    title: str
    description: str
    version: int = strawberry.field(description="Raised by an admin to ask every customer to accept it again.")
    required: bool


@strawberry.type(description="A client application: what it may do comes from its self-service policy.")
class Application:
    id: strawberry.ID
    client_id: str = strawberry.field(description="Public; send as the X-Application-Id header.")
    name: str
    policy_id: str
    identity_store_id: str
    is_default: bool
    branding: Branding
    password_reset_url: str | None = strawberry.field(
        description="The application's own reset page (within redirectUrls); null: the hosted page.")
    redirect_urls: list[str] = strawberry.field(
        description="The allow-list for every link back to the application's site (origin and path prefix).")
    consent_policy: list[ConsentItem]
    version: int = strawberry.field(description="Grows with every change; send it back to refuse stale writes.")
    created_at: datetime
    updated_at: datetime | None

    @strawberry.field(description="The application's self-service policy (needs policies:read).",
                      extensions=requires(HasPermission("policies:read")))
    async def policy(self, info: Info) -> SelfServicePolicy | None:
        doc = await policies.get(info.context, self.policy_id)
        return SelfServicePolicy.from_doc(doc) if doc else None

    @classmethod
    def from_doc(cls, doc: ApplicationDocument) -> Application:
        b = doc.branding
        return cls(
            id=strawberry.ID(doc.id), client_id=doc.client_id, name=doc.name, policy_id=doc.policy_id,
            identity_store_id=doc.identity_store_id, is_default=doc.is_default, created_at=doc.created_at,
            password_reset_url=doc.password_reset_url, redirect_urls=list(doc.redirect_urls),
            branding=Branding(logo_url=b.logo_url, primary_color=b.primary_color, accent_color=b.accent_color,
                              support_email=b.support_email),
            consent_policy=[ConsentItem(key=i.key, title=i.title, description=i.description, version=i.version,
                                        required=i.required) for i in doc.consent_policy],
            version=doc.version,
            updated_at=datetime.fromtimestamp(doc.updated_at_ms / 1000, UTC) if doc.updated_at_ms else None,
        )


@strawberry.input(description="Branding fields to set; null removes logoUrl or supportEmail.")
class BrandingInput:
    logo_url: str | None = strawberry.UNSET
    primary_color: str | None = strawberry.UNSET
    accent_color: str | None = strawberry.UNSET
    support_email: str | None = strawberry.UNSET


@strawberry.input(description="An application's fields. Create: `name` is required, the rest defaults (the default "
                              "self-service policy). Update: only the fields given change.")
class ApplicationInput:
    name: str | None = strawberry.UNSET
    policy_id: strawberry.ID | None = strawberry.UNSET
    branding: BrandingInput | None = strawberry.UNSET
    redirect_urls: list[str] | None = strawberry.UNSET
    password_reset_url: str | None = strawberry.UNSET


@strawberry.input
class ConsentItemInput:
    key: str
    title: str
    description: str = ""
    version: int = 1
    required: bool = False


@strawberry.input(description="The whole consent policy: it replaces the current items.")
class ApplicationConsentPolicyInput:
    items: list[ConsentItemInput]


@strawberry.type
class ApplicationDeleted:
    id: strawberry.ID


ApplicationCreateResult = Annotated[Application | InvalidInputError, strawberry.union("ApplicationCreateResult")]
ApplicationUpdateResult = Annotated[
    Application | InvalidInputError | NotFoundError | ConflictError, strawberry.union("ApplicationUpdateResult")
]
ApplicationDeleteResult = Annotated[
    ApplicationDeleted | NotFoundError | InvalidInputError, strawberry.union("ApplicationDeleteResult")
]
ApplicationConsentPolicyUpdateResult = Annotated[
    Application | InvalidInputError | NotFoundError | ConflictError,
    strawberry.union("ApplicationConsentPolicyUpdateResult"),
]


@strawberry.type
class ApplicationQueries:
    @strawberry.field(description="Every application.", extensions=requires(HasPermission("applications:read")))
    async def applications(self, info: Info) -> list[Application]:
        return [Application.from_doc(doc) for doc in await applications.list_applications(info.context)]

    @strawberry.field(description="One application, or null when no application has this id.",
                      extensions=requires(HasPermission("applications:read")))
    async def application(self, info: Info, id: strawberry.ID) -> Application | None:
        doc = await applications.get(info.context, str(id))
        return Application.from_doc(doc) if doc else None


@strawberry.type
class ApplicationMutations:
    @strawberry.mutation(description="Creates an application with a generated clientId, in the default identity "
                                     "store.", extensions=requires(HasPermission("applications:write")))
    async def application_create(self, info: Info, input: ApplicationInput) -> ApplicationCreateResult:
        return Application.from_doc(await applications.create(info.context, given(input)))

    @strawberry.mutation(description="Changes an application's name, policy, branding, redirect URLs or own reset "
                                     "page. With `version`: ConflictError when it changed since.",
                         extensions=requires(HasPermission("applications:write")))
    async def application_update(self, info: Info, id: strawberry.ID, input: ApplicationInput,
                                 version: int | None = None) -> ApplicationUpdateResult:
        return Application.from_doc(await applications.update(info.context, str(id), given(input), version))

    @strawberry.mutation(description="Deletes an application (not the default one). Its identity store and "
                                     "customers stay.", extensions=requires(HasPermission("applications:write")))
    async def application_delete(self, info: Info, id: strawberry.ID) -> ApplicationDeleteResult:
        await applications.delete(info.context, str(id))
        return ApplicationDeleted(id=id)

    @strawberry.mutation(description="Replaces an application's consent items. Keys are unique; versions only "
                                     "grow (raising one asks customers to accept again).",
                         extensions=requires(HasPermission("applications:write")))
    async def application_consent_policy_update(self, info: Info, id: strawberry.ID,
                                                input: ApplicationConsentPolicyInput,
                                                version: int | None = None) -> ApplicationConsentPolicyUpdateResult:
        items = given(input)["items"]
        return Application.from_doc(await applications.update_consent_policy(info.context, str(id), items, version))
