"""Account settings: login methods, linked identities, and deleting the account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from resolvers import account
from schema.errors import (
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    LastLoginMethodError,
    NotFoundError,
    RateLimitedError,
    ReauthenticationRequiredError,
)
from schema.permissions import IsCustomer, requires
from schema.security import MfaFactor
from stores.documents import LinkedIdentity as LinkedIdentityDocument
from stores.documents import PasskeyDocument


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


@strawberry.type(description="A social sign-in linked to the account: the provider's subject identifier and the "
                              "email the provider gave.")
class LinkedIdentity:
    id: strawberry.ID
    provider: str
    subject: str
    email: str | None
    linked_at: datetime

    @classmethod
    def from_doc(cls, doc: LinkedIdentityDocument) -> LinkedIdentity:
        return cls(id=strawberry.ID(doc.id), provider=doc.provider, subject=doc.subject, email=doc.email,
                   linked_at=_from_ms(doc.linked_at_ms))


@strawberry.type(description="A passkey (WebAuthn credential) of the customer: a way in on its own, and a second "
                              "factor where the policy offers PASSKEY. Never shows the key.")
class Passkey:
    id: strawberry.ID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool = strawberry.field(description="The key is synced (backed up) by its provider, so it survives "
                                                   "the loss of one device.")
    aaguid: str = strawberry.field(description="The authenticator model's AAGUID (all zeros when it gives none).")

    @classmethod
    def from_doc(cls, doc: PasskeyDocument) -> Passkey:
        return cls(id=strawberry.ID(doc.id), name=doc.name, created_at=doc.created_at,
                   last_used_at=_from_ms(doc.last_used_at_ms), backed_up=doc.backed_up, aaguid=doc.aaguid)


@strawberry.type(description="How the customer signs in. The password, each linked identity and each passkey are "
                              "ways in; MFA factors are second factors, asked for after one of them.")
class LoginMethods:
    password: bool = strawberry.field(description="True when the account has a password (false: passwordless).")
    mfa_factors: list[MfaFactor] = strawberry.field(description="Confirmed second factors, oldest first (passkeys "
                                                                "are listed under `passkeys`).")
    linked_identities: list[LinkedIdentity]
    passkeys: list[Passkey] = strawberry.field(description="Oldest first, with name, creation and last use.")

    @classmethod
    def of(cls, methods: account.LoginMethods) -> LoginMethods:
        return cls(password=methods.password, mfa_factors=[MfaFactor.from_doc(f) for f in methods.mfa_factors],
                   linked_identities=[LinkedIdentity.from_doc(i) for i in methods.linked_identities],
                   passkeys=[Passkey.from_doc(p) for p in methods.passkeys])


LoginMethodsResult = Annotated[LoginMethods | FeatureDisabledError | NotFoundError,
                               strawberry.union("LoginMethodsResult")]


async def login_methods(root: Any, info: Info) -> LoginMethodsResult:
    """``Customer.loginMethods``: the customer the object is (``me``, or ``customer(id)`` for an admin)."""
    return LoginMethods.of(await account.login_methods(info.context, str(root.id)))


@strawberry.type(description="The identity is unlinked.")
class LinkedIdentityRemoved:
    login_methods: LoginMethods = strawberry.field(description="What is left.")


@strawberry.input
class AccountDeleteInput:
    current_password: str | None = strawberry.field(
        default=None, description="Required when the account has a password.")


@strawberry.type(description="The account is deleted, or will be at `eraseAt`.")
class AccountDeleted:
    erased: bool = strawberry.field(description="True: every piece of the account's data is gone now. False: the "
                                                "account is disabled and signed out, and will be erased at `eraseAt` "
                                                "unless the customer uses the undo link we emailed.")
    erase_at: datetime | None


LinkedIdentityRemoveResult = Annotated[
    LinkedIdentityRemoved | NotFoundError | LastLoginMethodError | ReauthenticationRequiredError
    | FeatureDisabledError,
    strawberry.union("LinkedIdentityRemoveResult"),
]
AccountDeleteResult = Annotated[
    AccountDeleted | InvalidCredentialsError | ReauthenticationRequiredError | InvalidInputError | RateLimitedError
    | FeatureDisabledError,
    strawberry.union("AccountDeleteResult"),
]


@strawberry.type
class AccountSettingsMutations:
    @strawberry.mutation(description="Unlinks one of the signed-in customer's social identities. Needs a recent "
                                     "authentication; the last way to sign in cannot be removed.",
                         extensions=requires(IsCustomer()))
    async def linked_identity_remove(self, info: Info, id: strawberry.ID) -> LinkedIdentityRemoveResult:
        return LinkedIdentityRemoved(login_methods=LoginMethods.of(
            await account.remove_linked_identity(info.context, str(id))))

    @strawberry.mutation(description="Deletes the signed-in customer's account and every piece of its data: now, "
                                     "or after the policy's accountDeletion.graceDays (undo link emailed). Needs a "
                                     "recent authentication and the current password.",
                         extensions=requires(IsCustomer()))
    async def account_delete(self, info: Info, input: AccountDeleteInput) -> AccountDeleteResult:
        done = await account.delete_account(info.context, input.current_password)
        return AccountDeleted(erased=done.erased, erase_at=done.erase_at)
