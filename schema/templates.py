"""Admin: applications, their branding, and their email templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import email_templates
from schema.errors import InvalidInputError, NotFoundError
from schema.permissions import HasPermission, requires
from stores import config
from stores.documents import ApplicationDocument


@strawberry.type
class Branding:
    logo_url: str | None
    primary_color: str
    accent_color: str
    support_email: str | None


@strawberry.type(description="A client application: what it may do comes from its self-service policy.")
class Application:
    id: strawberry.ID
    client_id: str = strawberry.field(description="Send as the X-Application-Id header.")
    name: str
    policy_id: str
    is_default: bool
    branding: Branding
    password_reset_url: str | None
    created_at: datetime

    @classmethod
    def from_doc(cls, doc: ApplicationDocument) -> Application:
        b = doc.branding
        return cls(id=strawberry.ID(doc.id), client_id=doc.client_id, name=doc.name, policy_id=doc.policy_id,
                   is_default=doc.is_default, created_at=doc.created_at, password_reset_url=doc.password_reset_url,
                   branding=Branding(logo_url=b.logo_url, primary_color=b.primary_color,
                                     accent_color=b.accent_color, support_email=b.support_email))


@strawberry.type(description="An email template: the shipped default, or an application's override.")
class EmailTemplate:
    application_id: strawberry.ID
    kind: str
    locale: str | None
    subject: str
    html: str
    text: str
    is_default: bool

    @classmethod
    def from_view(cls, view: email_templates.TemplateView) -> EmailTemplate:
        return cls(application_id=strawberry.ID(view.application_id), kind=view.kind, locale=view.locale,
                   subject=view.subject, html=view.html, text=view.text, is_default=view.is_default)


@strawberry.type
class EmailTemplatePreview:
    subject: str
    html: str
    text: str


@strawberry.input
class EmailTemplateUpdateInput:
    application_id: strawberry.ID
    kind: str
    locale: str | None = None
    subject: str
    html: str
    text: str


@strawberry.input
class EmailTemplateRefInput:
    application_id: strawberry.ID
    kind: str
    locale: str | None = None


@strawberry.input
class ApplicationBrandingUpdateInput:
    application_id: strawberry.ID
    name: str | None = strawberry.UNSET
    logo_url: str | None = strawberry.UNSET
    primary_color: str | None = strawberry.UNSET
    accent_color: str | None = strawberry.UNSET
    support_email: str | None = strawberry.UNSET
    password_reset_url: str | None = strawberry.UNSET


@strawberry.type
class EmailTemplateList:
    templates: list[EmailTemplate]


EmailTemplatesResult = Annotated[EmailTemplateList | NotFoundError, strawberry.union("EmailTemplatesResult")]
EmailTemplateResult = Annotated[
    EmailTemplate | InvalidInputError | NotFoundError, strawberry.union("EmailTemplateResult")
]
EmailTemplatePreviewResult = Annotated[
    EmailTemplatePreview | InvalidInputError | NotFoundError, strawberry.union("EmailTemplatePreviewResult")
]
ApplicationBrandingUpdateResult = Annotated[
    Application | InvalidInputError | NotFoundError, strawberry.union("ApplicationBrandingUpdateResult")
]


@strawberry.type
class TemplateQueries:
    @strawberry.field(description="All applications.", extensions=requires(HasPermission("applications:read")))
    async def applications(self, info: Info) -> list[Application]:
        return [Application.from_doc(doc) for doc in await config.list_applications()]

    @strawberry.field(description="Every email kind for an application: its overrides, else the defaults.",
                      extensions=requires(HasPermission("templates:read")))
    async def email_templates(self, info: Info, application_id: strawberry.ID) -> EmailTemplatesResult:
        views = await email_templates.list_templates(info.context, str(application_id))
        return EmailTemplateList(templates=[EmailTemplate.from_view(v) for v in views])

    @strawberry.field(description="Renders an email with sample data, as the application's customers would get it.",
                      extensions=requires(HasPermission("templates:read")))
    async def email_template_preview(self, info: Info, input: EmailTemplateRefInput) -> EmailTemplatePreviewResult:
        rendered = await email_templates.preview(info.context, application_id=str(input.application_id),
                                                 kind=input.kind, locale=input.locale)
        return EmailTemplatePreview(subject=rendered.subject, html=rendered.html, text=rendered.text)


@strawberry.type
class TemplateMutations:
    @strawberry.mutation(description="Overrides one email for an application (and optionally one locale). "
                                     "Checked at save: it must render with sample data.",
                         extensions=requires(HasPermission("templates:write")))
    async def email_template_update(self, info: Info, input: EmailTemplateUpdateInput) -> EmailTemplateResult:
        view = await email_templates.update(
            info.context, application_id=str(input.application_id), kind=input.kind, locale=input.locale,
            subject=input.subject, html=input.html, text=input.text)
        return EmailTemplate.from_view(view)

    @strawberry.mutation(description="Removes an override; returns what applies now.",
                         extensions=requires(HasPermission("templates:write")))
    async def email_template_reset(self, info: Info, input: EmailTemplateRefInput) -> EmailTemplateResult:
        view = await email_templates.reset(info.context, application_id=str(input.application_id),
                                           kind=input.kind, locale=input.locale)
        return EmailTemplate.from_view(view)

    @strawberry.mutation(description="Changes an application's name, branding or own reset page URL.",
                         extensions=requires(HasPermission("applications:write")))
    async def application_branding_update(self, info: Info,
                                          input: ApplicationBrandingUpdateInput) -> ApplicationBrandingUpdateResult:
        changes = {key: value for key, value in {
            "name": input.name, "logo_url": input.logo_url, "primary_color": input.primary_color,
            "accent_color": input.accent_color, "support_email": input.support_email,
            "password_reset_url": input.password_reset_url,
        }.items() if value is not strawberry.UNSET}
        doc = await email_templates.update_branding(info.context, application_id=str(input.application_id),
                                                    changes=changes)
        return Application.from_doc(doc)
