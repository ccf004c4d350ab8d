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
    policy = PolicyDocument.model_validate(await PolicyDocument.get_pymongo_collection().find_one({"_id": "default"}))
    assert policy.name == "Default Self-Service Policy" and policy.registration.enabled is True
    assert policy.registration.activation_link_lifetime_minutes == 24 * 60
    assert policy.password_reset.link_lifetime_minutes == 60


async def test_a_policy_stored_in_the_first_flat_layout_loads_into_the_nested_one():
    # given a policy document as the first version of the gateway wrote it
    raw = {"_id": "old", "name": "Old", "registration_enabled": False, "activation_ttl_minutes": 30,
           "password_reset_enabled": False, "password_reset_ttl_minutes": 15, "username_mode": "USERNAME",
           "username_reminder_enabled": False, "password_min_length": 12, "created_at": datetime.now(UTC)}

    # when it is loaded
    policy = PolicyDocument.model_validate(raw)

    # then every setting is where the current layout keeps it, and the rest are defaults
    assert (policy.registration.enabled, policy.registration.activation_link_lifetime_minutes) == (False, 30)
    assert (policy.password_reset.enabled, policy.password_reset.link_lifetime_minutes) == (False, 15)
    assert policy.username_mode == "USERNAME" and policy.username_reminder.enabled is False
    assert policy.password_policy.min_length == 12 and policy.account_management.data_export is True
