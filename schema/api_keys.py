"""Partner API keys: ``apiKeys`` (``api_keys:read``), ``apiKeyCreate`` and ``apiKeyRevoke`` (``api_keys:write``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import api_keys
from schema.errors import InvalidInputError, NotFoundError
from schema.permissions import HasPermission, requires
from stores.documents import ApiKeyDocument


@strawberry.enum
class ApiKeyStatus(Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"  # by an admin, or because its creator was disabled
    EXPIRED = "EXPIRED"


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


@strawberry.type(description="A partner API key. The key itself is shown only once, by apiKeyCreate.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The key's first characters, to recognise it.")
    permissions: list[str] = strawberry.field(description="As granted; on each request the key holds only those "
                                                          "its creator's current role also grants.")
    status: ApiKeyStatus
    created_by: strawberry.ID = strawberry.field(description="The admin who made it.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="Recorded at most every 10 minutes.")

    @classmethod
    def from_doc(cls, doc: ApiKeyDocument, now: datetime) -> ApiKey:
        return cls(id=strawberry.ID(doc.id), name=doc.name, prefix=doc.prefix, permissions=doc.permissions,
                   status=ApiKeyStatus(api_keys.status_of(doc, now)), created_by=strawberry.ID(doc.created_by),
                   created_at=doc.created_at, expires_at=doc.expires_at, revoked_at=_from_ms(doc.revoked_at_ms),
                   last_used_at=_from_ms(doc.last_used_at_ms))


@strawberry.input
class ApiKeyCreateInput:
    name: str = strawberry.field(description="1–100 characters, to tell keys apart (shown in audit events).")
    permissions: list[str] = strawberry.field(description="Permission strings (docs/permissions.md), each one you "
                                                          "hold; never admins:write or api_keys:write.")
    expires_at: datetime | None = strawberry.field(default=None, description="When it stops working; none: never.")


@strawberry.type
class ApiKeyCreated:
    key: str = strawberry.field(description="Send as `Authorization: Bearer <key>`. Shown once: only its hash is kept.")
    api_key: ApiKey


@strawberry.type
class ApiKeyRevoked:
    api_key: ApiKey


ApiKeyCreateResult = Annotated[ApiKeyCreated | InvalidInputError, strawberry.union("ApiKeyCreateResult")]
ApiKeyRevokeResult = Annotated[ApiKeyRevoked | NotFoundError, strawberry.union("ApiKeyRevokeResult")]


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(description="Every API key, newest first, revoked and expired ones included.",
                      extensions=requires(HasPermission("api_keys:read")))
    async def api_keys(self, info: Info) -> list[ApiKey]:
        now = info.context.now()
        return [ApiKey.from_doc(doc, now) for doc in await api_keys.list_keys(info.context)]


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(description="Creates a partner API key with some of your own permissions.",
                         extensions=requires(HasPermission("api_keys:write")))
    async def api_key_create(self, info: Info, input: ApiKeyCreateInput) -> ApiKeyCreateResult:
        key, doc = await api_keys.create(info.context, input.name, input.permissions, input.expires_at)
        return ApiKeyCreated(key=key, api_key=ApiKey.from_doc(doc, info.context.now()))

    @strawberry.mutation(description="Revokes an API key: it stops working on its next request.",
                         extensions=requires(HasPermission("api_keys:write")))
    async def api_key_revoke(self, info: Info, id: strawberry.ID) -> ApiKeyRevokeResult:
        doc = await api_keys.revoke(info.context, str(id))
        return ApiKeyRevoked(api_key=ApiKey.from_doc(doc, info.context.now()))
