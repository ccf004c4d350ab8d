"""Privacy and data: consents, their history, and downloading one's data."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from resolvers import consents, export
from schema.errors import (
    ConsentRequiredError,
    FeatureDisabledError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    ReauthenticationRequiredError,
)
from schema.permissions import IsCustomer, requires
from stores.documents import ConsentEventDocument


@strawberry.type(description="One consent item of an application's consent policy, and the customer's answer.")
class Consent:
    application_id: strawberry.ID
    key: str
    title: str
    description: str
    required: bool = strawberry.field(description="Cannot be withdrawn.")
    current_version: int = strawberry.field(description="The item's version now; admins bump it to ask again.")
    granted: bool
    granted_at: datetime | None
    version: int | None = strawberry.field(description="The version the customer accepted, while granted.")
    needs_reacceptance: bool = strawberry.field(description="Granted, but for an older version than the item's.")

    @classmethod
    def of(cls, state: consents.ConsentState) -> Consent:
        item = state.item
        return cls(application_id=strawberry.ID(state.application_id), key=item.key, title=item.title,
                   description=item.description, required=item.required, current_version=item.version,
                   granted=state.granted, granted_at=state.granted_at, version=state.version,
                   needs_reacceptance=state.needs_reacceptance)


@strawberry.type(description="The consent items of one application, in its policy's order.")
class Consents:
    items: list[Consent]


@strawberry.type(description="One grant or withdrawal, as it happened. Never edited.")
class ConsentEvent:
    id: strawberry.ID
    application_id: strawberry.ID
    key: str
    version: int
    granted: bool
    at: datetime
    ip_address: str | None
    user_agent: str | None

    @classmethod
    def from_doc(cls, doc: ConsentEventDocument) -> ConsentEvent:
        return cls(id=strawberry.ID(doc.id), application_id=strawberry.ID(doc.application_id), key=doc.key,
                   version=doc.version, granted=doc.granted, at=doc.at, ip_address=doc.ip_address,
                   user_agent=doc.user_agent)


@strawberry.type(description="Consent events, newest first.")
class ConsentHistory:
    events: list[ConsentEvent]


ConsentsResult = Annotated[Consents | NotFoundError | FeatureDisabledError, strawberry.union("ConsentsResult")]
ConsentHistoryResult = Annotated[ConsentHistory | NotFoundError | FeatureDisabledError,
                                 strawberry.union("ConsentHistoryResult")]


async def customer_consents(root: Any, info: Info, application_id: Annotated[strawberry.ID | None, strawberry.argument(
        description="Any application of the customer's identity store; default: the request's.")] = None,
) -> ConsentsResult:
    """``Customer.consents``: of the customer the object is (``me``, or ``customer(id)`` for an admin)."""
    states = await consents.consents(info.context, str(root.id), str(application_id) if application_id else None)
    return Consents(items=[Consent.of(state) for state in states])


async def customer_consent_history(root: Any, info: Info, application_id: Annotated[strawberry.ID | None, strawberry.argument(
        description="Only this application's events.")] = None,
) -> ConsentHistoryResult:
    """``Customer.consentHistory``."""
    events = await consents.history(info.context, str(root.id), str(application_id) if application_id else None)
    return ConsentHistory(events=[ConsentEvent.from_doc(event) for event in events])


@strawberry.input
class ConsentSetInput:
    application_id: strawberry.ID
    key: str
    granted: bool


@strawberry.type(description="The answer is recorded (or was already the customer's).")
class ConsentRecorded:
    consent: Consent


ConsentSetResult = Annotated[
    ConsentRecorded | NotFoundError | ConsentRequiredError | InvalidInputError | FeatureDisabledError
    | RateLimitedError,
    strawberry.union("ConsentSetResult"),
]


@strawberry.enum(description="What the data export download holds: JSON (docs/export.schema.json) or one HTML page.")
class ExportFormat(Enum):
    JSON = "json"
    HTML = "html"


@strawberry.type(description="A one-time download link for the customer's data.")
class DataExportLink:
    url: str = strawberry.field(description="Works once, without a token header (a browser can open it).")
    expires_at: datetime


DataExportResult = Annotated[DataExportLink | FeatureDisabledError | ReauthenticationRequiredError,
                             strawberry.union("DataExportResult")]


@strawberry.type
class PrivacyMutations:
    @strawberry.mutation(description="Grants or withdraws one consent item of an application for the signed-in "
                                     "customer (a new consent event; required items cannot be withdrawn).",
                         extensions=requires(IsCustomer()))
    async def consent_set(self, info: Info, input: ConsentSetInput) -> ConsentSetResult:
        state = await consents.set_consent(info.context, str(input.application_id), input.key, input.granted)
        return ConsentRecorded(consent=Consent.of(state))

    @strawberry.mutation(description="A one-time URL, valid 5 minutes, that downloads everything the gateway holds "
                                     "about the signed-in customer. Needs a recent authentication "
                                     "(ReauthenticationRequiredError: sessionReauthenticate first).",
                         extensions=requires(IsCustomer()))
    async def data_export(self, info: Info, format: ExportFormat) -> DataExportResult:
        link = await export.request_export(info.context, export.ExportFormat(format.value))
        return DataExportLink(url=link.url, expires_at=link.expires_at)
