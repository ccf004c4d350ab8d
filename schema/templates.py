"""Admin: applications' email templates."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import email_templates
from schema.errors import InvalidInputError, NotFoundError
from schema.permissions import HasPermission, requires


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


@strawberry.type
class TemplateQueries:
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
