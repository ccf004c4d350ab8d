"""Passkeys (WebAuthn): adding, signing in (alone, or as a sign-in's second factor), renaming, removing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import passkeys
from schema.account_settings import Passkey
from schema.errors import (
    AccountNotActivatedError,
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidTokenError,
    LastLoginMethodError,
    NotFoundError,
    RateLimitedError,
    ReauthenticationRequiredError,
)
from schema.permissions import IsCustomer, requires
from schema.sessions import DEVICE_TOKEN_DESCRIPTION, MfaRequired, SessionCreated, sign_in_result

CREDENTIAL_DESCRIPTION = ("The PublicKeyCredential the browser returned, as its JSON (`credential.toJSON()`, or what "
                          "@simplewebauthn/browser returns).")


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@strawberry.type(description="Give `publicKey` to the browser within 5 minutes: "
                              "`navigator.credentials.create({publicKey: "
                              "PublicKeyCredential.parseCreationOptionsFromJSON(publicKey)})`, then send the result "
                              "to passkeyRegisterFinish.")
class PasskeyRegistrationOptions:
    public_key: JSON = strawberry.field(description="PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3).")
    expires_at: datetime


@strawberry.type(description="Give `publicKey` to the browser within 5 minutes: "
                              "`navigator.credentials.get({publicKey: "
                              "PublicKeyCredential.parseRequestOptionsFromJSON(publicKey)})`, then send the result to "
                              "passkeySignInFinish.")
class PasskeySignInOptions:
    public_key: JSON = strawberry.field(description="PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3).")
    expires_at: datetime


@strawberry.input
class PasskeyRegisterFinishInput:
    credential: JSON = strawberry.field(description=CREDENTIAL_DESCRIPTION)
    name: str | None = strawberry.field(default=None, description="How the customer will recognise it (at most 64 "
                                        "characters); default: the browser and system it was added from.")


@strawberry.input
class PasskeySignInStartInput:
    challenge_token: str | None = strawberry.field(
        default=None, description="Leave out to sign in with a passkey alone. To answer a sign-in that returned "
                                  "MfaRequired offering PASSKEY, its `challengeToken`.")


@strawberry.input
class PasskeySignInFinishInput:
    credential: JSON = strawberry.field(description=CREDENTIAL_DESCRIPTION)
    challenge_token: str | None = strawberry.field(default=None, description="The same as for passkeySignInStart.")
    device_token: str | None = strawberry.field(default=None, description=DEVICE_TOKEN_DESCRIPTION)


@strawberry.input
class PasskeyRenameInput:
    id: strawberry.ID
    name: str


@strawberry.type
class PasskeyAdded:
    passkey: Passkey


@strawberry.type
class PasskeyRenamed:
    passkey: Passkey


@strawberry.type
class PasskeyRemoved:
    id: strawberry.ID


PasskeyRegisterStartResult = Annotated[
    PasskeyRegistrationOptions | FeatureDisabledError | ReauthenticationRequiredError | RateLimitedError,
    strawberry.union("PasskeyRegisterStartResult"),
]
PasskeyRegisterFinishResult = Annotated[
    PasskeyAdded | InvalidInputError | FeatureDisabledError | ReauthenticationRequiredError,
    strawberry.union("PasskeyRegisterFinishResult"),
]
PasskeySignInStartResult = Annotated[
    PasskeySignInOptions | InvalidTokenError | FeatureDisabledError | RateLimitedError,
    strawberry.union("PasskeySignInStartResult"),
]
PasskeySignInFinishResult = Annotated[
    SessionCreated | MfaRequired | InvalidCredentialsError | InvalidInputError | InvalidTokenError
    | AccountNotActivatedError | RateLimitedError | FeatureDisabledError,
    strawberry.union("PasskeySignInFinishResult"),
]
PasskeyRenameResult = Annotated[
    PasskeyRenamed | NotFoundError | InvalidInputError | FeatureDisabledError, strawberry.union("PasskeyRenameResult"),
]
PasskeyRemoveResult = Annotated[
    PasskeyRemoved | NotFoundError | LastLoginMethodError | ReauthenticationRequiredError | FeatureDisabledError,
    strawberry.union("PasskeyRemoveResult"),
]


@strawberry.type
class PasskeyMutations:
    @strawberry.mutation(description="Starts adding a passkey for the signed-in customer (a discoverable credential "
                                     "with user verification). Needs a recent authentication.",
                         extensions=requires(IsCustomer()))
    async def passkey_register_start(self, info: Info) -> PasskeyRegisterStartResult:
        options = await passkeys.start_registration(info.context)
        return PasskeyRegistrationOptions(public_key=options.public_key, expires_at=_at(options.expires_at_ms))

    @strawberry.mutation(description="Verifies the browser's new credential and keeps it as a passkey; a notice is "
                                     "mailed. Needs a recent authentication.", extensions=requires(IsCustomer()))
    async def passkey_register_finish(self, info: Info, input: PasskeyRegisterFinishInput) -> PasskeyRegisterFinishResult:
        return PasskeyAdded(passkey=Passkey.from_doc(
            await passkeys.finish_registration(info.context, input.credential, input.name)))

    @strawberry.mutation(description="Starts a passkey sign-in: with no input, any of the customer's passkeys signs "
                                     "in alone (no identifier needed); with `challengeToken`, a passkey answers that "
                                     "sign-in's second-factor step.")
    async def passkey_sign_in_start(self, info: Info,
                                    input: PasskeySignInStartInput | None = None) -> PasskeySignInStartResult:
        options = await passkeys.start_sign_in(info.context, input.challenge_token if input else None)
        return PasskeySignInOptions(public_key=options.public_key, expires_at=_at(options.expires_at_ms))

    @strawberry.mutation(description="Completes a passkey sign-in with the browser's assertion.")
    async def passkey_sign_in_finish(self, info: Info, input: PasskeySignInFinishInput) -> PasskeySignInFinishResult:
        return sign_in_result(await passkeys.finish_sign_in(info.context, input.credential,
                                                            device_token=input.device_token,
                                                            challenge_token=input.challenge_token))

    @strawberry.mutation(description="Renames one of the signed-in customer's passkeys.",
                         extensions=requires(IsCustomer()))
    async def passkey_rename(self, info: Info, input: PasskeyRenameInput) -> PasskeyRenameResult:
        return PasskeyRenamed(passkey=Passkey.from_doc(await passkeys.rename(info.context, str(input.id), input.name)))

    @strawberry.mutation(description="Removes one of the signed-in customer's passkeys; the last way to sign in "
                                     "cannot be removed. Needs a recent authentication; a notice is mailed.",
                         extensions=requires(IsCustomer()))
    async def passkey_remove(self, info: Info, id: strawberry.ID) -> PasskeyRemoveResult:
        return PasskeyRemoved(id=strawberry.ID((await passkeys.remove(info.context, str(id))).id))
