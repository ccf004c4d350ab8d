"""First-start defaults are created once, even when several instances start at the same moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from resolvers.bootstrap import ensure_defaults
from stores.documents import ApplicationDocument, PolicyDocument


async def test_concurrent_bootstraps_agree_on_one_default_application(gateway):
    # when five instances bootstrap at once (the session gateway already did once)
    results = await asyncio.gather(*[ensure_defaults(datetime.now(UTC)) for _ in range(5)])

    # then they all see the same application, with its policy, and nothing was duplicated
    assert len({app.client_id for app in results}) == 1
    assert await ApplicationDocument.get_pymongo_collection().count_documents({"_id": "default"}) == 1
    policy = await PolicyDocument.get_pymongo_collection().find_one({"_id": "default"})
    assert policy["name"] == "Default Self-Service Policy" and policy["registration_enabled"] is True
    assert policy["activation_ttl_minutes"] == 24 * 60 and policy["password_reset_ttl_minutes"] == 60
