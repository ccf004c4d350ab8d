"""Partner API keys: shown once, stored hashed, scoped, capped by their creator, and dead when revoked,
expired, or when their creator is disabled."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from stores.documents import ApiKeyDocument, AuditEventDocument
from tests.support import assert_denied, assert_no_errors
from tests.test_admins import ADMIN_ME, DISABLE, ENABLE, ROLE_SET, signed_in_admin

CREATE = """
mutation Create($input: ApiKeyCreateInput!) {
  apiKeyCreate(input: $input) {
    __typename
    ... on ApiKeyCreated { key apiKey { id name prefix permissions status createdBy expiresAt } }
    ... on InvalidInputError { code fields { field code message } }
  }
}
"""
REVOKE = """
mutation Revoke($id: ID!) {
  apiKeyRevoke(id: $id) { __typename ... on ApiKeyRevoked { apiKey { id status revokedAt } } ... on Error { code } }
}
"""
KEYS = "query { apiKeys { id name prefix permissions status createdBy revokedAt lastUsedAt } }"
CUSTOMERS = "query { customers(first: 1) { __typename } }"
APPLICATIONS = "query { applications { id isDefault } }"
AUDIT = "query { auditEvents(first: 1) { edges { node { id } } } }"


async def create_key(gql, token: str, permissions: list[str], name: str = "partner", **extra) -> dict:
    result = assert_no_errors(await gql(CREATE, {"input": {"name": name, "permissions": permissions, **extra}},
                                        token=token))
    return result["apiKeyCreate"]


async def test_a_key_is_shown_once_stored_as_its_hash_and_works_as_a_bearer_token(gql, runtime):
    # given an owner
    owner_id, _, owner = await signed_in_admin(runtime, gql)

    # when they create a key that may read customers, and the key is used
    created = await create_key(gql, owner, ["customers:read"], name="CRM sync")
    key = created["key"]
    listed = assert_no_errors(await gql(KEYS, token=owner))["apiKeys"]
    customers = await gql(CUSTOMERS, token=key)

    # then the key is gwk_ + 256 bits, stored only as its SHA-256, listed without it, and it works
    assert key.startswith("gwk_") and len(key) >= 4 + 43
    assert created["apiKey"]["createdBy"] == owner_id and created["apiKey"]["status"] == "ACTIVE"
    stored = await ApiKeyDocument.get_pymongo_collection().find_one({"_id": created["apiKey"]["id"]})
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(stored, default=str)
    assert key not in json.dumps(listed)
    mine = next(k for k in listed if k["id"] == created["apiKey"]["id"])
    assert mine["prefix"] == key[:10] and mine["name"] == "CRM sync"
    assert_no_errors(customers)
    assert assert_no_errors(await gql(KEYS, token=owner))["apiKeys"][0]["lastUsedAt"]


async def test_a_key_can_do_what_it_was_given_and_nothing_else(gql, runtime):
    # given a key that may only read customers
    _, _, owner = await signed_in_admin(runtime, gql)
    key = (await create_key(gql, owner, ["customers:read"]))["key"]

    # when it reads customers, applications and the audit log, and tries to make a key
    allowed = await gql(CUSTOMERS, token=key)
    others = [await gql(query, token=key) for query in (APPLICATIONS, AUDIT)]
    minting = await gql(CREATE, {"input": {"name": "more", "permissions": ["customers:read"]}}, token=key)

    # then only the customers are shown; the rest is FORBIDDEN
    assert_no_errors(allowed)
    for result in [*others, minting]:
        assert_denied(result, "FORBIDDEN")


async def test_a_key_never_exceeds_its_creator_nor_holds_key_or_admin_management(gql, runtime):
    # given an admin of role "admin" (no admins:read) and an owner
    _, _, admin = await signed_in_admin(runtime, gql, "admin")
    _, _, owner = await signed_in_admin(runtime, gql)
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    # when they ask for more than they hold, for what no key may hold, for unknown ones, for none, or a past expiry
    beyond = await create_key(gql, admin, ["customers:read", "admins:read"])
    minting = await create_key(gql, owner, ["api_keys:write"])
    managing = await create_key(gql, owner, ["admins:write"])
    unknown = await create_key(gql, owner, ["customers:everything"])
    empty = await create_key(gql, owner, [])
    past = await create_key(gql, owner, ["customers:read"], expiresAt="2000-01-01T00:00:00Z")
    fine = await create_key(gql, admin, ["customers:read"], expiresAt=future)

    # then each is refused with the reason on its field, and a key within bounds is made
    def problem(result):
        assert result["__typename"] == "InvalidInputError", result
        return [(f["field"], f["code"]) for f in result["fields"]]

    assert problem(beyond) == [("permissions", "EXCEEDS_YOURS")]
    assert problem(minting) == problem(managing) == [("permissions", "NOT_GRANTABLE")]
    assert problem(unknown) == [("permissions", "INVALID")]
    assert problem(empty) == [("permissions", "REQUIRED")]
    assert problem(past) == [("expiresAt", "INVALID")]
    assert fine["__typename"] == "ApiKeyCreated" and fine["apiKey"]["expiresAt"].startswith(future[:16])


async def test_a_revoked_key_is_dead(gql, runtime):
    # given a working key
    _, _, owner = await signed_in_admin(runtime, gql)
    created = await create_key(gql, owner, ["customers:read"])
    assert_no_errors(await gql(CUSTOMERS, token=created["key"]))

    # when it is revoked (twice), and an unknown key is revoked
    revoked = assert_no_errors(await gql(REVOKE, {"id": created["apiKey"]["id"]}, token=owner))["apiKeyRevoke"]
    again = assert_no_errors(await gql(REVOKE, {"id": created["apiKey"]["id"]}, token=owner))["apiKeyRevoke"]
    unknown = assert_no_errors(await gql(REVOKE, {"id": "no-such-key"}, token=owner))["apiKeyRevoke"]

    # then it no longer authenticates at all, and shows as revoked
    assert revoked["apiKey"]["status"] == "REVOKED" and revoked["apiKey"]["revokedAt"]
    assert again["apiKey"]["revokedAt"] == revoked["apiKey"]["revokedAt"]
    assert unknown["__typename"] == "NotFoundError"
    assert_denied(await gql(CUSTOMERS, token=created["key"]), "UNAUTHENTICATED")

    # and its use is audited once however often the partner retries, and a made-up key is not
    assert_denied(await gql(CUSTOMERS, token=created["key"]), "UNAUTHENTICATED")
    assert_denied(await gql(CUSTOMERS, token=created["key"][:-4] + "AAAA"), "UNAUTHENTICATED")
    refused = await AuditEventDocument.get_pymongo_collection().find({"type": "api_key.refused"}).to_list()
    mine = [e for e in refused if e["subject_id"] == created["apiKey"]["id"]]
    assert [(e["result"], e["data"]["reason"]) for e in mine] == [("failure", "revoked")]
    assert all(e["subject_id"] for e in refused)


async def test_an_expired_key_is_dead(gql, runtime, clock):
    # given a key valid for one hour
    _, email, owner = await signed_in_admin(runtime, gql)
    expires = (clock.now() + timedelta(hours=1)).isoformat()
    created = await create_key(gql, owner, ["customers:read"], expiresAt=expires)
    assert_no_errors(await gql(CUSTOMERS, token=created["key"]))

    # when two hours pass
    clock.advance(hours=2)

    # then it no longer authenticates, and shows as expired
    assert_denied(await gql(CUSTOMERS, token=created["key"]), "UNAUTHENTICATED")
    from tests.test_admins import sign_in

    owner = (await sign_in(gql, email))["token"]
    listed = {k["id"]: k for k in assert_no_errors(await gql(KEYS, token=owner))["apiKeys"]}
    assert listed[created["apiKey"]["id"]]["status"] == "EXPIRED"


async def test_demoting_its_creator_shrinks_a_key_at_once(gql, runtime):
    # given an admin of role "admin" and their key for customers and applications
    _, _, owner = await signed_in_admin(runtime, gql)
    creator_id, _, creator = await signed_in_admin(runtime, gql, "admin")
    key = (await create_key(gql, creator, ["customers:read", "applications:read"]))["key"]
    assert_no_errors(await gql(APPLICATIONS, token=key))

    # when the owner makes the creator support (who may read customers, not applications)
    assert_no_errors(await gql(ROLE_SET, {"input": {"id": creator_id, "role": "support"}}, token=owner))

    # then the key can still read customers but no longer applications
    assert_no_errors(await gql(CUSTOMERS, token=key))
    assert_denied(await gql(APPLICATIONS, token=key), "FORBIDDEN")


async def test_disabling_its_creator_kills_a_key_for_good(gql, runtime):
    # given an admin and their key
    _, _, owner = await signed_in_admin(runtime, gql)
    creator_id, _, creator = await signed_in_admin(runtime, gql, "admin")
    created = await create_key(gql, creator, ["customers:read"])

    # when the creator is disabled, and later enabled again
    assert_no_errors(await gql(DISABLE, {"id": creator_id}, token=owner))
    while_disabled = await gql(CUSTOMERS, token=created["key"])
    assert_no_errors(await gql(ENABLE, {"id": creator_id}, token=owner))
    after = await gql(CUSTOMERS, token=created["key"])

    # then the key is dead, and stays revoked
    assert_denied(while_disabled, "UNAUTHENTICATED")
    assert_denied(after, "UNAUTHENTICATED")
    listed = {k["id"]: k for k in assert_no_errors(await gql(KEYS, token=owner))["apiKeys"]}
    assert listed[created["apiKey"]["id"]]["status"] == "REVOKED"


async def test_a_made_up_key_is_nobody_and_a_key_is_no_admin_session(gql, runtime):
    # given a key that expires (nx-27017 once matched any unknown key to such a key) and one that does not
    _, _, owner = await signed_in_admin(runtime, gql)
    await create_key(gql, owner, ["customers:read"], expiresAt=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    key = (await create_key(gql, owner, ["customers:read"]))["key"]

    # when a made-up key with the prefix is used, and the real key asks who it is
    forged = await gql(CUSTOMERS, token="gwk_" + "A" * 43)
    me = await gql(ADMIN_ME, token=key)

    # then the made-up key is nobody, and the real key is no admin
    assert_denied(forged, "UNAUTHENTICATED")
    assert assert_no_errors(me)["adminMe"] is None


async def test_a_key_has_no_session_to_end_and_is_no_admin(gql, runtime):
    # given a working key
    _, _, owner = await signed_in_admin(runtime, gql)
    created = await create_key(gql, owner, ["customers:read"])

    # when it asks to end "its session", and who it is
    ended = await gql("mutation { sessionEnd { ended } }", token=created["key"])
    me = await gql(ADMIN_ME, token=created["key"])

    # then the first is refused (a key is revoked, not signed out), it still works, and it is no admin
    assert_denied(ended, "FORBIDDEN")
    assert_no_errors(await gql(CUSTOMERS, token=created["key"]))
    assert assert_no_errors(me)["adminMe"] is None
    logouts = await AuditEventDocument.get_pymongo_collection().count_documents(
        {"type": "admin.logout", "actor_id": created["apiKey"]["id"]})
    assert logouts == 0
