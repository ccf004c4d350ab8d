"""First-start defaults: the default identity store, self-service policy and application.

Idempotent and safe when several instances start at once: each is inserted under a
fixed id and a lost race is simply ignored.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from stores import config
from stores.documents import ApplicationDocument, IdentityStoreDocument, PolicyDocument

DEFAULT_STORE_ID = "default"
DEFAULT_POLICY_ID = "default"
DEFAULT_APPLICATION_ID = "default"
DEFAULT_POLICY_NAME = "Default Self-Service Policy"


async def ensure_defaults(now: datetime) -> ApplicationDocument:
    await config.insert_if_missing(IdentityStoreDocument(id=DEFAULT_STORE_ID, name="Default Identity Store", created_at=now))
    await config.insert_if_missing(PolicyDocument(
        id=DEFAULT_POLICY_ID, name=DEFAULT_POLICY_NAME,
        description="Applied to every application that has no policy of its own: every self-service area on.",
        created_at=now,
    ))
    await config.insert_if_missing(ApplicationDocument(
        id=DEFAULT_APPLICATION_ID, client_id="app_" + secrets.token_urlsafe(16), name="Default Application",
        policy_id=DEFAULT_POLICY_ID, identity_store_id=DEFAULT_STORE_ID, is_default=True, created_at=now,
    ))
    application = await config.get_application(DEFAULT_APPLICATION_ID)
    assert application is not None
    return application
