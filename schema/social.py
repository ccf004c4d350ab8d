"""Social sign-in and linking (OpenID Connect, GitHub), and the identity providers admins configure."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import identity_providers, social
from resolvers.context import Context
from schema.errors import (
    AccountNotActivatedError,
    ConflictError,
    FeatureDisabledError,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    RateLimitedError,
    ReauthenticationRequiredError,
)
from schema.inputs import given
from schema.permissions import HasPermission, IsCustomer, requires
from schema.sessions import MfaRequired, SessionCreated, sign_in_result
from stores.documents import IdentityProviderDocument


@strawberry.enum(description="OIDC: any OpenID Connect provider, by its discovery URL. GOOGLE, MICROSOFT, APPLE: "
                             "OpenID Connect presets. GITHUB: OAuth 2 and GitHub's user API.")
class IdentityProviderType(Enum):
    OIDC = "OIDC"
    GOOGLE = "GOOGLE"
    MICROSOFT = "MICROSOFT"
    APPLE = "APPLE"
    GITHUB = "GITHUB"


@strawberry.type(description="A way to sign in that the application offers: draw a button for each.")
class SocialSignInProvider:
    name: str = strawberry.field(description="Send it as `provider` to socialSignInStart or linkedIdentityAdd.")
    display_name: str
    type: IdentityProviderType


@strawberry.type(description="An application's identity provider. The client secret is never shown.")
class IdentityProvider:
    id: strawberry.ID
    application_id: strawberry.ID
    name: str = strawberry.field(description="Unique per application; the last segment of `callbackUrl`.")
    display_name: str
    type: IdentityProviderType
    discovery_url: str | None = strawberry.field(description="OpenID Connect providers: the discovery document.")
    authorization_endpoint: str | None = strawberry.field(description="OAuth 2 providers (GitHub).")
    token_endpoint: str | None
    userinfo_endpoint: str | None
    client_id: str
    client_secret_set: bool = strawberry.field(description="Whether a client secret is stored (encrypted).")
    scopes: list[str]
    enabled: bool
    callback_url: str = strawberry.field(description="The redirect URI to register at the provider.")
    version: int = strawberry.field(description="Grows with every change; send it back to refuse stale writes.")
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def from_doc(cls, ctx: Context, doc: IdentityProviderDocument) -> IdentityProvider:
        return cls(
            id=strawberry.ID(doc.id), application_id=strawberry.ID(doc.application_id), name=doc.name,
            display_name=doc.display_name, type=IdentityProviderType(doc.type.value), discovery_url=doc.discovery_url,
            authorization_endpoint=doc.authorization_endpoint, token_endpoint=doc.token_endpoint,
            userinfo_endpoint=doc.userinfo_endpoint, client_id=doc.client_id,
            client_secret_set=doc.client_secret is not None, scopes=list(doc.scopes), enabled=doc.enabled,
            callback_url=identity_providers.callback_url(ctx, doc), version=doc.version, created_at=doc.created_at,
            updated_at=datetime.fromtimestamp(doc.updated_at_ms / 1000, UTC) if doc.updated_at_ms else None)


@strawberry.input(description="An identity provider's fields. Create: `applicationId`, `name` and `clientId` are "
                              "required, `type` defaults to OIDC (which needs `discoveryUrl`), presets fill the rest. "
                              "Update: only the fields given change (not `applicationId` or `type`); "
                              "`clientSecret: null` removes the secret.")
class IdentityProviderInput:
    application_id: strawberry.ID | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET
    type: IdentityProviderType | None = strawberry.UNSET
    discovery_url: str | None = strawberry.field(
        default=strawberry.UNSET, description="The issuer URL or its /.well-known/openid-configuration; https:// "
                                              "(http:// only on a loopback host).")
    client_id: str | None = strawberry.UNSET
    client_secret: str | None = strawberry.field(default=strawberry.UNSET,
                                                 description="Write-only: stored encrypted, never shown again.")
    scopes: list[str] | None = strawberry.field(default=strawberry.UNSET,
                                                description="Default: the preset's (OpenID Connect: openid email "
                                                            "profile); `openid` is added when missing.")
    enabled: bool | None = strawberry.UNSET


@strawberry.type
class IdentityProviderDeleted:
    id: strawberry.ID


@strawberry.input
class SocialSignInStartInput:
    provider: str = strawberry.field(description="The provider's `name` (socialSignInProviders).")
    redirect_url: str = strawberry.field(description="Where the browser comes back, with `grant` or `error`: within "
                                                     "the application's redirectUrls.")


@strawberry.input
class LinkedIdentityAddInput:
    provider: str = strawberry.field(description="The provider's `name` (socialSignInProviders).")
    redirect_url: str = strawberry.field(description="Where the browser comes back, with `linked=<provider>` or "
                                                     "`error`: within the application's redirectUrls.")


@strawberry.input
class SocialSignInCompleteInput:
    grant: str = strawberry.field(description="The `grant` query parameter the browser came back with.")


@strawberry.type(description="Send the browser to `authorizationUrl` (a top-level navigation, not a fetch) before "
                              "`expiresAt`; it comes back to the redirect URL.")
class SocialAuthorizationStarted:
    authorization_url: str
    expires_at: datetime


SocialSignInStartResult = Annotated[
    SocialAuthorizationStarted | NotFoundError | InvalidInputError | RateLimitedError,
    strawberry.union("SocialSignInStartResult"),
]
LinkedIdentityAddResult = Annotated[
    SocialAuthorizationStarted | NotFoundError | InvalidInputError | ReauthenticationRequiredError
    | FeatureDisabledError | RateLimitedError,
    strawberry.union("LinkedIdentityAddResult"),
]
SocialSignInCompleteResult = Annotated[
    SessionCreated | MfaRequired | InvalidTokenError | InvalidCredentialsError | AccountNotActivatedError
    | RateLimitedError | InvalidInputError,
    strawberry.union("SocialSignInCompleteResult"),
]
IdentityProviderCreateResult = Annotated[IdentityProvider | InvalidInputError,
                                         strawberry.union("IdentityProviderCreateResult")]
IdentityProviderUpdateResult = Annotated[IdentityProvider | InvalidInputError | NotFoundError | ConflictError,
                                         strawberry.union("IdentityProviderUpdateResult")]
IdentityProviderDeleteResult = Annotated[IdentityProviderDeleted | NotFoundError,
                                         strawberry.union("IdentityProviderDeleteResult")]


def _started(started: social.Started) -> SocialAuthorizationStarted:
    return SocialAuthorizationStarted(authorization_url=started.authorization_url, expires_at=started.expires_at)


@strawberry.type
class SocialQueries:
    @strawberry.field(description="The identity providers the application (X-Application-Id) offers for sign-in.")
    async def social_sign_in_providers(self, info: Info) -> list[SocialSignInProvider]:
        return [SocialSignInProvider(name=p.name, display_name=p.display_name, type=IdentityProviderType(p.type.value))
                for p in await social.sign_in_providers(info.context)]

    @strawberry.field(description="An application's identity providers, by name.",
                      extensions=requires(HasPermission("applications:read")))
    async def identity_providers(self, info: Info, application_id: strawberry.ID) -> list[IdentityProvider]:
        return [IdentityProvider.from_doc(info.context, doc)
                for doc in await identity_providers.list_for_application(info.context, str(application_id))]


@strawberry.type
class SocialMutations:
    @strawberry.mutation(description="Starts a sign-in with an identity provider: send the browser to "
                                     "`authorizationUrl`. It comes back to `redirectUrl` with `grant` (exchange it "
                                     "with socialSignInComplete) or `error`.")
    async def social_sign_in_start(self, info: Info, input: SocialSignInStartInput) -> SocialSignInStartResult:
        return _started(await social.start_sign_in(info.context, input.provider, input.redirect_url))

    @strawberry.mutation(description="Exchanges the grant of a social sign-in for a session (or MfaRequired), once, "
                                     "within 2 minutes, with the same X-Application-Id.")
    async def social_sign_in_complete(self, info: Info, input: SocialSignInCompleteInput) -> SocialSignInCompleteResult:
        return sign_in_result(await social.complete(info.context, input.grant))

    @strawberry.mutation(description="Links a social identity to the signed-in customer: send the browser to "
                                     "`authorizationUrl`; it comes back to `redirectUrl` with `linked` or `error`. "
                                     "Needs a recent authentication.", extensions=requires(IsCustomer()))
    async def linked_identity_add(self, info: Info, input: LinkedIdentityAddInput) -> LinkedIdentityAddResult:
        return _started(await social.start_link(info.context, input.provider, input.redirect_url))

    @strawberry.mutation(description="Adds an identity provider to an application.",
                         extensions=requires(HasPermission("applications:write")))
    async def identity_provider_create(self, info: Info, input: IdentityProviderInput) -> IdentityProviderCreateResult:
        return IdentityProvider.from_doc(info.context, await identity_providers.create(info.context, given(input)))

    @strawberry.mutation(description="Changes the given fields of an identity provider. With `version`: "
                                     "ConflictError when it changed since.",
                         extensions=requires(HasPermission("applications:write")))
    async def identity_provider_update(self, info: Info, id: strawberry.ID, input: IdentityProviderInput,
                                       version: int | None = None) -> IdentityProviderUpdateResult:
        return IdentityProvider.from_doc(info.context, await identity_providers.update(
            info.context, str(id), given(input), version))

    @strawberry.mutation(description="Deletes an identity provider. Identities linked through it stay on the "
                                     "accounts.", extensions=requires(HasPermission("applications:write")))
    async def identity_provider_delete(self, info: Info, id: strawberry.ID) -> IdentityProviderDeleteResult:
        await identity_providers.delete(info.context, str(id))
        return IdentityProviderDeleted(id=id)
