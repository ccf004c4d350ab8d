"""First-start defaults: the default identity store, self-service policy and application; and the
fallback to the default policy for an application whose own is gone (:func:`policy_of`).

Idempotent and safe when several instances start at once: each is inserted under a
fixed id and a lost race is simply ignored.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from stores import config
from stores.documents import ApplicationDocument, IdentityStoreDocument, PolicyDocument

DEFAULT_STORE_ID = "default"
DEFAULT_POLICY_ID = "default"
DEFAULT_APPLICATION_ID = "default"
DEFAULT_POLICY_NAME = "Default Self-Service Policy"

logger = logging.getLogger("gateway.policies")


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


async def policy_of(application: ApplicationDocument) -> PolicyDocument:
    """The self-service policy an application runs under: its own, or, when that is missing (a policy
    deleted while the application was being pointed at it: no transactions on nx-27017), the default
    policy, with a warning naming both ids (``application_id=… missing_policy_id=…``, also as record
    attributes). Every look-up of an application's policy goes through here, so such an application keeps
    serving (registration, sign-in, links) instead of failing every request. RuntimeError only if the
    default policy itself is missing (it is created at start and can never be deleted)."""
    policy = await config.get_policy(application.policy_id)
    if policy is not None:
        return policy
    logger.warning("application policy missing, the default policy applies: application_id=%s missing_policy_id=%s",
                   application.id, application.policy_id,
                   extra={"application_id": application.id, "missing_policy_id": application.policy_id})
    policy = await config.get_policy(DEFAULT_POLICY_ID)
    if policy is None:
        raise RuntimeError("the default self-service policy is missing")
    return policy
