"""Audit events. They never carry passwords or tokens."""

from __future__ import annotations

from typing import Any

from resolvers.context import Context
from resolvers.security import new_id
from stores import audit as audit_store
from stores.documents import AuditEventDocument

FORBIDDEN_KEYS = {"password", "token", "new_password", "confirm_password", "password_hash"}


async def record(ctx: Context, event_type: str, *, subject_id: str | None = None,
                 actor_kind: str | None = None, actor_id: str | None = None, **data: Any) -> None:
    assert not FORBIDDEN_KEYS & data.keys(), "audit events never carry secrets"
    await audit_store.insert(AuditEventDocument(
        id=new_id(), type=event_type, at=ctx.now(),
        actor_kind=actor_kind or (ctx.principal.kind if ctx.principal else None),
        actor_id=actor_id or (ctx.principal.subject_id if ctx.principal else None),
        subject_id=subject_id, application_id=ctx.application.id,
        ip_address=ctx.request.ip_address, user_agent=ctx.request.user_agent,
        request_id=ctx.request.request_id, data=data,
    ))
