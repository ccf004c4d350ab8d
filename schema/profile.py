"""Personal information: the profile, custom attributes and their schema, and the email change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import attributes, profile
from resolvers.attributes import AttributeView
from schema.errors import (
    ConflictError,
    FeatureDisabledError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    RateLimitedError,
    ReauthenticationRequiredError,
)
from schema.permissions import HasPermission, IsCustomer, requires
from stores.documents import AttributeDefinitionDocument, CustomerDocument, CustomerProfile
from stores.documents import AttributeType as StoredAttributeType


@strawberry.enum(description="The type of a custom attribute's value.")
class AttributeType(Enum):
    STRING = "STRING"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    ENUM = "ENUM"


@strawberry.type(description="A postal address (OpenID Connect's `address` claim).")
class Address:
    street_address: str | None = strawberry.field(description="Street, house number; may hold line breaks.")
    locality: str | None = strawberry.field(description="City or town.")
    region: str | None = strawberry.field(description="State, province, prefecture or region.")
    postal_code: str | None
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 code, upper case (`DE`).")


@strawberry.type(description="A customer's standard attributes (OpenID Connect standard claims).")
class Profile:
    given_name: str | None
    middle_name: str | None
    family_name: str | None
    email: str = strawberry.field(description="The sign-in address; changed only by emailChangeRequest.")
    phone_number: str | None = strawberry.field(description="E.164, e.g. `+41446681800`.")
    address: Address | None
    birthdate: date | None
    locale: str | None = strawberry.field(description="BCP 47 language tag, e.g. `fr-CA`.")

    @classmethod
    def from_model(cls, source: CustomerProfile | CustomerDocument) -> Profile:
        address = source.address
        return cls(given_name=source.given_name, middle_name=source.middle_name, family_name=source.family_name,
                   email=source.email, phone_number=source.phone_number,
                   address=Address(**address.model_dump()) if address else None,
                   birthdate=date.fromisoformat(source.birthdate) if source.birthdate else None,
                   locale=source.locale)


@strawberry.type(description="One custom attribute of a customer, with its definition's label and type.")
class CustomerAttribute:
    key: str
    label: str
    type: AttributeType
    value: JSON | None = strawberry.field(description=(
        "STRING: a string; NUMBER: a number; BOOLEAN: true/false; DATE: `YYYY-MM-DD`; ENUM: one of its values; "
        "null: none."))
    editable: bool = strawberry.field(description="Whether the viewer may change it (customers: profileUpdate).")
    required: bool = strawberry.field(description="A value, once set, cannot be removed.")
    archived: bool = strawberry.field(description="Retired by an admin: shown to admins only, kept as data.")

    @classmethod
    def from_view(cls, view: AttributeView) -> CustomerAttribute:
        return cls(key=view.key, label=view.label, type=AttributeType(view.type.value), value=view.value,
                   editable=view.editable, required=view.required, archived=view.archived)


@strawberry.type(description="A custom attribute of the identity store's customers, as admins define it.")
class AttributeDefinition:
    id: strawberry.ID
    key: str = strawberry.field(description="The name in `attributes`; never changes.")
    label: str
    type: AttributeType = strawberry.field(description="Never changes.")
    required: bool
    max_length: int | None = strawberry.field(description="STRING only: at most this many characters (≤ 1000).")
    pattern: str | None = strawberry.field(description="STRING only: a regular expression the whole value matches.")
    enum_values: list[str] = strawberry.field(description="ENUM only: the values to choose from.")
    self_service_visible: bool = strawberry.field(description="Customers see it in `me.attributes`.")
    self_service_editable: bool = strawberry.field(description="Customers may change it with profileUpdate.")
    archived: bool
    version: int = strawberry.field(description="Give it back to attributeDefinitionUpdate.")
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def from_doc(cls, doc: AttributeDefinitionDocument) -> AttributeDefinition:
        updated = datetime.fromtimestamp(doc.updated_at_ms / 1000, UTC) if doc.updated_at_ms else None
        return cls(id=strawberry.ID(doc.id), key=doc.key, label=doc.label, type=AttributeType(doc.type.value),
                   required=doc.required, max_length=doc.max_length, pattern=doc.pattern,
                   enum_values=list(doc.enum_values), self_service_visible=doc.self_service_visible,
                   self_service_editable=doc.self_service_editable, archived=doc.archived, version=doc.version,
                   created_at=doc.created_at, updated_at=updated)


# -- inputs ------------------------------------------------------------------------------------------


@strawberry.input(description="Sub-fields to change; one left out stays, one given as null is cleared.")
class AddressInput:
    street_address: str | None = strawberry.UNSET
    locality: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    postal_code: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET


@strawberry.input(description="A custom attribute's new value; `value` null (or left out) removes it.")
class AttributeValueInput:
    key: str
    value: JSON | None = None


@strawberry.input(description="Only the fields given change; an explicit null clears an optional field.")
class ProfileUpdateInput:
    given_name: str | None = strawberry.UNSET
    middle_name: str | None = strawberry.UNSET
    family_name: str | None = strawberry.UNSET
    phone_number: str | None = strawberry.field(default=strawberry.UNSET, description=(
        "International format (`+41 44 668 18 00`); without `+`, read in the address's country. Stored as E.164."))
    address: AddressInput | None = strawberry.field(default=strawberry.UNSET,
                                                    description="null clears the whole address.")
    birthdate: str | None = strawberry.field(default=strawberry.UNSET, description="`YYYY-MM-DD`, not in the future.")
    locale: str | None = strawberry.field(default=strawberry.UNSET, description="BCP 47, e.g. `fr-CA`.")
    attributes: list[AttributeValueInput] | None = strawberry.field(default=strawberry.UNSET,
                                                                    description="Custom attributes to change.")


@strawberry.input
class EmailChangeRequestInput:
    new_email: str


@strawberry.input
class AttributeDefinitionCreateInput:
    key: str = strawberry.field(description="A lower-case letter, then letters, digits or `_`; at most 64.")
    label: str
    type: AttributeType
    required: bool = False
    max_length: int | None = None
    pattern: str | None = None
    enum_values: list[str] | None = None
    self_service_visible: bool = True
    self_service_editable: bool = True


@strawberry.input(description="Only the settings given change; `version` is the one the definition was read at.")
class AttributeDefinitionUpdateInput:
    version: int
    label: str | None = strawberry.UNSET
    required: bool | None = strawberry.UNSET
    max_length: int | None = strawberry.UNSET
    pattern: str | None = strawberry.UNSET
    enum_values: list[str] | None = strawberry.UNSET
    self_service_visible: bool | None = strawberry.UNSET
    self_service_editable: bool | None = strawberry.UNSET
    archived: bool | None = strawberry.field(default=strawberry.UNSET, description="false restores an archived one.")


def _given(source: Any, names: list[str]) -> dict[str, Any]:
    return {name: getattr(source, name) for name in names if getattr(source, name) is not strawberry.UNSET}


def profile_changes(input: ProfileUpdateInput) -> dict[str, Any]:
    """The input as ``resolvers.profile.update_attributes`` takes it: only the fields given."""
    changes = _given(input, ["given_name", "middle_name", "family_name", "phone_number", "birthdate", "locale"])
    if input.address is not strawberry.UNSET:
        changes["address"] = None if input.address is None else _given(input.address, list(attributes.ADDRESS_FIELDS))
    if input.attributes not in (strawberry.UNSET, None):
        changes["attributes"] = [(item.key, item.value) for item in input.attributes]
    return changes


# -- results -----------------------------------------------------------------------------------------


@strawberry.type
class ProfileUpdated:
    profile: Profile
    attributes: list[CustomerAttribute] = strawberry.field(description="The customer's visible custom attributes.")


@strawberry.type(description="The same answer whether or not the new address is free: a link goes to it if it is.")
class EmailChangeRequested:
    accepted: bool = True


@strawberry.type(description="The account's email is the new address now; the old one was told.")
class EmailChanged:
    email: str


@strawberry.type
class AttributeDefinitionSaved:
    definition: AttributeDefinition


@strawberry.type
class AttributeDefinitionDeleted:
    id: strawberry.ID
    archived: bool = strawberry.field(description="True: customers hold values for it, so it was archived instead.")


ProfileUpdateResult = Annotated[ProfileUpdated | InvalidInputError | FeatureDisabledError,
                                strawberry.union("ProfileUpdateResult")]
EmailChangeRequestResult = Annotated[
    EmailChangeRequested | InvalidInputError | FeatureDisabledError | ReauthenticationRequiredError | RateLimitedError,
    strawberry.union("EmailChangeRequestResult"),
]
EmailChangeConfirmResult = Annotated[EmailChanged | InvalidTokenError | InvalidInputError | FeatureDisabledError,
                                     strawberry.union("EmailChangeConfirmResult")]
AttributeDefinitionCreateResult = Annotated[AttributeDefinitionSaved | InvalidInputError,
                                            strawberry.union("AttributeDefinitionCreateResult")]
AttributeDefinitionUpdateResult = Annotated[
    AttributeDefinitionSaved | InvalidInputError | NotFoundError | ConflictError,
    strawberry.union("AttributeDefinitionUpdateResult"),
]
AttributeDefinitionDeleteResult = Annotated[AttributeDefinitionDeleted | NotFoundError,
                                            strawberry.union("AttributeDefinitionDeleteResult")]


@strawberry.type
class ProfileQueries:
    @strawberry.field(description="The custom attributes of this application's identity store, archived included.",
                      extensions=requires(HasPermission("attributes:read")))
    async def attribute_definitions(self, info: Info) -> list[AttributeDefinition]:
        return [AttributeDefinition.from_doc(d) for d in await attributes.list_definitions(info.context)]


@strawberry.type
class ProfileMutations:
    @strawberry.mutation(description="Changes the signed-in customer's profile: only the fields given, all or nothing.",
                         extensions=requires(IsCustomer()))
    async def profile_update(self, info: Info, input: ProfileUpdateInput) -> ProfileUpdateResult:
        customer = await profile.update_own_profile(info.context, profile_changes(input))
        definitions = await attributes.definitions(info.context, customer.store_id)
        return ProfileUpdated(profile=Profile.from_model(customer), attributes=[
            CustomerAttribute.from_view(v) for v in attributes.views(definitions, customer.attributes, by_admin=False)])

    @strawberry.mutation(description="Mails a one-time link to the new address; the email changes when it is used. "
                                     "Needs a recent authentication.", extensions=requires(IsCustomer()))
    async def email_change_request(self, info: Info, input: EmailChangeRequestInput) -> EmailChangeRequestResult:
        await profile.request_email_change(info.context, input.new_email)
        return EmailChangeRequested()

    @strawberry.mutation(description="Changes the email with the token of the link mailed to the new address. "
                                     "Needs no sign-in: the link proves the address.")
    async def email_change_confirm(self, info: Info, token: str) -> EmailChangeConfirmResult:
        customer = await profile.confirm_email_change(info.context, token)
        return EmailChanged(email=customer.email)

    @strawberry.mutation(description="Adds a custom attribute to this application's identity store.",
                         extensions=requires(HasPermission("attributes:write")))
    async def attribute_definition_create(self, info: Info,
                                          input: AttributeDefinitionCreateInput) -> AttributeDefinitionCreateResult:
        created = await attributes.create_definition(
            info.context, key=input.key, label=input.label, type=StoredAttributeType(input.type.value),
            required=input.required, max_length=input.max_length, pattern=input.pattern,
            enum_values=input.enum_values, self_service_visible=input.self_service_visible,
            self_service_editable=input.self_service_editable)
        return AttributeDefinitionSaved(definition=AttributeDefinition.from_doc(created))

    @strawberry.mutation(description="Changes some settings of a custom attribute (optimistic concurrency: `version`).",
                         extensions=requires(HasPermission("attributes:write")))
    async def attribute_definition_update(self, info: Info, id: strawberry.ID,
                                          input: AttributeDefinitionUpdateInput) -> AttributeDefinitionUpdateResult:
        changes = _given(input, list(attributes.DEFINITION_FIELDS))
        updated = await attributes.update_definition(info.context, str(id), input.version, changes)
        return AttributeDefinitionSaved(definition=AttributeDefinition.from_doc(updated))

    @strawberry.mutation(description="Deletes a custom attribute, or archives it when customers hold values for it.",
                         extensions=requires(HasPermission("attributes:write")))
    async def attribute_definition_delete(self, info: Info, id: strawberry.ID) -> AttributeDefinitionDeleteResult:
        archived = await attributes.delete_definition(info.context, str(id))
        return AttributeDefinitionDeleted(id=id, archived=archived)
