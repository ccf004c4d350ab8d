"""Self-service policies through the admin API: validated writes, optimistic concurrency, delete rules,
and a change that applies on the very next request."""

from __future__ import annotations

import uuid

import pytest

from stores.documents import AuditEventDocument
from tests.flows import REGISTER, active_customer, admin_token, new_application
from tests.support import assert_denied, assert_no_errors, unique_email

POLICY_FIELDS = """
  id name description version usernameMode passwordless reauthenticationMaxAgeMinutes
  registration { enabled activationLinkLifetimeMinutes } passwordReset { enabled linkLifetimeMinutes }
  usernameReminder { enabled } emailChange { linkLifetimeMinutes }
  accountManagement { personalInformation accountSettings securitySettings privacyAndData accountDeletion dataExport }
  accountDeletion { graceDays } mfa { mode factors }
  passwordPolicy { minLength maxLength checkCommonPasswords } sessions { absoluteLifetimeMinutes idleTimeoutMinutes }
"""

CREATE = f"""
mutation Create($input: SelfServicePolicyInput!) {{
  selfServicePolicyCreate(input: $input) {{
    __typename ... on SelfServicePolicy {{ {POLICY_FIELDS} }}
    ... on InvalidInputError {{ fields {{ field code message }} }}
  }}
}}
"""

UPDATE = f"""
mutation Update($id: ID!, $version: Int!, $input: SelfServicePolicyInput!) {{
  selfServicePolicyUpdate(id: $id, version: $version, input: $input) {{
    __typename ... on SelfServicePolicy {{ {POLICY_FIELDS} }}
    ... on ConflictError {{ code currentVersion }}
    ... on InvalidInputError {{ fields {{ field code message }} }}
    ... on Error {{ code field }}
  }}
}}
"""

DELETE = """
mutation Delete($id: ID!) {
  selfServicePolicyDelete(id: $id) {
    __typename ... on SelfServicePolicyDeleted { id } ... on Error { code message field }
  }
}
"""

ONE = f"query One($id: ID!) {{ selfServicePolicy(id: $id) {{ __typename {POLICY_FIELDS} }} }}"
ALL = "query { selfServicePolicies { id name version } }"


async def create_policy(gql, admin: str, **fields) -> dict:
    created = assert_no_errors(await gql(CREATE, {"input": {"name": f"Policy {uuid.uuid4().hex[:8]}", **fields}},
                                         token=admin))["selfServicePolicyCreate"]
    assert created["__typename"] == "SelfServicePolicy", created
    return created


async def update_policy(gql, admin: str, policy: dict, version: int | None = None, **fields) -> dict:
    return assert_no_errors(await gql(UPDATE, {"id": policy["id"], "version": version or policy["version"],
                                               "input": fields}, token=admin))["selfServicePolicyUpdate"]


def field_errors(result: dict) -> list[tuple[str, str]]:
    assert result["__typename"] == "InvalidInputError", result
    return [(f["field"], f["code"]) for f in result["fields"]]


async def audit_types(subject_id: str) -> list[str]:
    found = await AuditEventDocument.get_pymongo_collection().find({"subject_id": subject_id}).sort("at", 1).to_list()
    return [event["type"] for event in found]


async def test_a_created_policy_has_the_given_fields_and_the_defaults_and_is_listed(gql, runtime):
    # given an admin
    admin = await admin_token(runtime, gql)

    # when they create a policy giving a few fields
    created = await create_policy(gql, admin, description="For the shop", registration={"enabled": False},
                                  mfa={"mode": "REQUIRED", "factors": ["TOTP"]}, sessions={"idleTimeoutMinutes": 30})

    # then it has those fields, the defaults for the rest, version 1, and it is listed and readable
    assert created["registration"] == {"enabled": False, "activationLinkLifetimeMinutes": 1440}
    assert created["passwordReset"] == {"enabled": True, "linkLifetimeMinutes": 60}
    assert created["mfa"] == {"mode": "REQUIRED", "factors": ["TOTP"]}
    assert created["sessions"] == {"absoluteLifetimeMinutes": None, "idleTimeoutMinutes": 30}
    assert created["passwordPolicy"] == {"minLength": 8, "maxLength": 256, "checkCommonPasswords": True}
    assert created["version"] == 1 and created["description"] == "For the shop"
    listed = assert_no_errors(await gql(ALL, token=admin))["selfServicePolicies"]
    assert {"id": created["id"], "name": created["name"], "version": 1} in listed
    assert assert_no_errors(await gql(ONE, {"id": created["id"]}, token=admin))["selfServicePolicy"] == created
    assert assert_no_errors(await gql(ONE, {"id": "no-such-policy"}, token=admin))["selfServicePolicy"] is None


@pytest.mark.parametrize(("fields", "expected"), [
    ({"passwordReset": {"linkLifetimeMinutes": -5}}, [("passwordReset.linkLifetimeMinutes", "OUT_OF_RANGE")]),
    ({"registration": {"activationLinkLifetimeMinutes": 0}},
     [("registration.activationLinkLifetimeMinutes", "OUT_OF_RANGE")]),
    ({"passwordReset": {"linkLifetimeMinutes": 7 * 24 * 60 + 1}},
     [("passwordReset.linkLifetimeMinutes", "OUT_OF_RANGE")]),
    ({"passwordPolicy": {"minLength": 100, "maxLength": 64}}, [("passwordPolicy.minLength", "OUT_OF_RANGE")]),
    ({"passwordPolicy": {"minLength": 7}}, [("passwordPolicy.minLength", "OUT_OF_RANGE")]),
    ({"sessions": {"absoluteLifetimeMinutes": 60, "idleTimeoutMinutes": 120}},
     [("sessions.idleTimeoutMinutes", "OUT_OF_RANGE")]),
    ({"accountDeletion": {"graceDays": -1}, "reauthenticationMaxAgeMinutes": 0},
     [("accountDeletion.graceDays", "OUT_OF_RANGE"), ("reauthenticationMaxAgeMinutes", "OUT_OF_RANGE")]),
    ({"mfa": {"mode": "OPTIONAL", "factors": []}}, [("mfa.factors", "REQUIRED")]),
    ({"mfa": {"factors": ["TOTP", "TOTP"]}}, [("mfa.factors", "DUPLICATE")]),
    ({"registration": {"enabled": None}}, [("registration.enabled", "REQUIRED")]),
    ({"name": "   "}, [("name", "REQUIRED")]),
    # A null section is refused like a null field; the rules between fields still read the policy's section.
    ({"passwordless": True, "emailSignIn": None}, [("emailSignIn", "REQUIRED"), ("passwordless", "NOT_ALLOWED")]),
    ({"passwordPolicy": None, "sessions": None, "mfa": None},
     [("mfa", "REQUIRED"), ("passwordPolicy", "REQUIRED"), ("sessions", "REQUIRED")]),
], ids=["negative-lifetime", "zero-lifetime", "lifetime-above-a-week", "min-above-max", "min-below-nist",
        "idle-above-absolute", "every-bad-field", "mfa-without-factors", "duplicate-factor", "null-switch",
        "blank-name", "null-section-beside-a-rule", "null-sections"])
async def test_invalid_values_are_refused_with_field_errors_and_nothing_changes(gql, runtime, fields, expected):
    # given an admin and a policy
    admin = await admin_token(runtime, gql)
    policy = await create_policy(gql, admin)

    # when they create a policy, and update the existing one, with the invalid values
    created = assert_no_errors(await gql(CREATE, {"input": {"name": "Refused", **fields}}, token=admin))
    updated = await update_policy(gql, admin, policy, **fields)

    # then both are InvalidInputErrors naming each bad field, and the policy is as it was
    assert field_errors(created["selfServicePolicyCreate"]) == expected
    assert field_errors(updated) == expected
    assert assert_no_errors(await gql(ONE, {"id": policy["id"]}, token=admin))["selfServicePolicy"] == policy


async def test_values_at_the_documented_bounds_are_accepted(gql, runtime):
    # given an admin and a policy
    admin = await admin_token(runtime, gql)
    policy = await create_policy(gql, admin)

    # when every number is set to a bound
    updated = await update_policy(gql, admin, policy, registration={"activationLinkLifetimeMinutes": 5},
                                  passwordReset={"linkLifetimeMinutes": 7 * 24 * 60},
                                  passwordPolicy={"minLength": 64, "maxLength": 64}, accountDeletion={"graceDays": 365},
                                  sessions={"absoluteLifetimeMinutes": 5, "idleTimeoutMinutes": 1},
                                  reauthenticationMaxAgeMinutes=24 * 60)

    # then they are kept
    assert updated["__typename"] == "SelfServicePolicy", updated
    assert updated["passwordPolicy"]["minLength"] == updated["passwordPolicy"]["maxLength"] == 64
    assert updated["sessions"] == {"absoluteLifetimeMinutes": 5, "idleTimeoutMinutes": 1}


async def test_an_update_changes_only_the_given_fields_and_bumps_the_version(gql, runtime):
    # given a policy with a custom activation lifetime
    admin = await admin_token(runtime, gql)
    policy = await create_policy(gql, admin, registration={"activationLinkLifetimeMinutes": 120},
                                 sessions={"idleTimeoutMinutes": 30})

    # when an admin switches registration off, and clears the idle timeout with null
    updated = await update_policy(gql, admin, policy, registration={"enabled": False},
                                  sessions={"idleTimeoutMinutes": None})

    # then only those fields changed, and the version went up by one
    assert updated["registration"] == {"enabled": False, "activationLinkLifetimeMinutes": 120}
    assert updated["sessions"] == {"absoluteLifetimeMinutes": None, "idleTimeoutMinutes": None}
    assert updated["version"] == 2
    assert {k: v for k, v in updated.items() if k not in ("registration", "sessions", "version")} == \
        {k: v for k, v in policy.items() if k not in ("registration", "sessions", "version")}


async def test_two_admins_editing_the_same_version_never_overwrite_each_other(gql, runtime):
    # given a policy that two admins read at version 1
    first, second = await admin_token(runtime, gql), await admin_token(runtime, gql)
    policy = await create_policy(gql, first)

    # when the first saves a change, then the second saves another change read at version 1
    saved = await update_policy(gql, first, policy, passwordPolicy={"minLength": 12})
    stale = await update_policy(gql, second, policy, passwordPolicy={"minLength": 10}, passwordless=True,
                                emailSignIn={"enabled": True})

    # then the second gets a ConflictError with the current version, and the first change stands alone
    assert saved["version"] == 2
    assert stale == {"__typename": "ConflictError", "code": "CONFLICT", "currentVersion": 2, "field": None}
    current = assert_no_errors(await gql(ONE, {"id": policy["id"]}, token=first))["selfServicePolicy"]
    assert current["passwordPolicy"]["minLength"] == 12 and current["passwordless"] is False
    # and re-applied on the current version, the second change goes through
    retried = await update_policy(gql, second, policy, version=2, passwordPolicy={"minLength": 10})
    assert retried["version"] == 3 and retried["passwordPolicy"]["minLength"] == 10


async def test_switching_registration_off_takes_effect_on_the_very_next_request(gql, runtime):
    # given an application with its own policy, whose policy this instance has just read (and cached)
    admin = await admin_token(runtime, gql)
    policy = await create_policy(gql, admin)
    application_id, client_id = await new_application(runtime)
    await gql("mutation($id: ID!, $p: ID!) { applicationUpdate(id: $id, input: {policyId: $p}) { __typename } }",
              {"id": application_id, "p": policy["id"]}, token=admin)
    headers = {"x-application-id": client_id}
    before = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("before"), "password": "a long "
                                                             "enough passphrase"}}, headers=headers))

    # when an admin switches registration off through the API
    updated = await update_policy(gql, admin, policy, registration={"enabled": False})
    assert updated["registration"]["enabled"] is False

    # then the very next registration for that application answers FeatureDisabledError
    after = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("after"), "password": "a long "
                                                            "enough passphrase"}}, headers=headers))
    assert before["accountRegister"]["__typename"] == "AccountRegisterAccepted"
    assert after["accountRegister"]["__typename"] == "FeatureDisabledError"


async def test_a_policy_in_use_and_the_default_policy_cannot_be_deleted(gql, runtime):
    # given a policy assigned to an application, an unassigned one, and the default policy
    admin = await admin_token(runtime, gql)
    used, unused = await create_policy(gql, admin), await create_policy(gql, admin)
    application_id, _ = await new_application(runtime)
    assign = "mutation($id: ID!, $p: ID!) { applicationUpdate(id: $id, input: {policyId: $p}) { __typename } }"
    assert_no_errors(await gql(assign, {"id": application_id, "p": used["id"]}, token=admin))

    # when an admin deletes each of them, and an unknown id
    in_use = assert_no_errors(await gql(DELETE, {"id": used["id"]}, token=admin))["selfServicePolicyDelete"]
    default = assert_no_errors(await gql(DELETE, {"id": "default"}, token=admin))["selfServicePolicyDelete"]
    deleted = assert_no_errors(await gql(DELETE, {"id": unused["id"]}, token=admin))["selfServicePolicyDelete"]
    unknown = assert_no_errors(await gql(DELETE, {"id": unused["id"]}, token=admin))["selfServicePolicyDelete"]

    # then the assigned one is in use, the default one is not allowed, the unused one is gone
    assert in_use["__typename"] == "PolicyInUseError" and in_use["code"] == "POLICY_IN_USE"
    assert default["__typename"] == "InvalidInputError" and default["field"] == "id"
    assert deleted == {"__typename": "SelfServicePolicyDeleted", "id": unused["id"]}
    assert unknown["__typename"] == "NotFoundError"
    assert assert_no_errors(await gql(ONE, {"id": unused["id"]}, token=admin))["selfServicePolicy"] is None
    assert assert_no_errors(await gql(ONE, {"id": used["id"]}, token=admin))["selfServicePolicy"]["id"] == used["id"]
    assert assert_no_errors(await gql(ONE, {"id": "default"}, token=admin))["selfServicePolicy"]["id"] == "default"


async def test_an_update_of_an_unknown_policy_is_not_found(gql, runtime):
    admin = await admin_token(runtime, gql)
    result = await update_policy(gql, admin, {"id": "no-such-policy", "version": 1}, passwordless=True)
    assert result == {"__typename": "NotFoundError", "code": "NOT_FOUND", "field": "id"}


async def test_each_policy_mutation_records_an_audit_event_with_the_admin_as_actor(gql, runtime):
    # given an admin
    admin = await admin_token(runtime, gql)
    me = assert_no_errors(await gql("{ adminMe { id } }", token=admin))["adminMe"]

    # when they create, update and delete a policy
    policy = await create_policy(gql, admin)
    await update_policy(gql, admin, policy, passwordPolicy={"minLength": 12}, passwordless=True,
                        emailSignIn={"enabled": True})
    assert_no_errors(await gql(DELETE, {"id": policy["id"]}, token=admin))

    # then each left one audit event, naming the admin and the changed fields
    assert await audit_types(policy["id"]) == ["policy.created", "policy.updated", "policy.deleted"]
    events = await AuditEventDocument.get_pymongo_collection().find({"subject_id": policy["id"]}).to_list()
    assert {(e["actor_kind"], e["actor_id"]) for e in events} == {("admin", me["id"])}
    updated = next(e for e in events if e["type"] == "policy.updated")
    assert updated["data"] == {"fields": ["emailSignIn.enabled", "passwordPolicy.minLength", "passwordless"],
                               "version": 2}


async def test_policies_need_their_permissions(gql, mailbox, runtime):
    # given a customer, a viewer (policies:read), a support admin (neither), and a policy
    customer = await active_customer(gql, mailbox, unique_email("nosy"))
    viewer, support = await admin_token(runtime, gql, "viewer"), await admin_token(runtime, gql, "support")
    policy = await create_policy(gql, await admin_token(runtime, gql))
    write = {"id": policy["id"], "version": 1, "input": {"passwordless": True}}

    # then nobody signed in is UNAUTHENTICATED, a customer and support are FORBIDDEN, a viewer reads only
    assert_denied(await gql(ALL), "UNAUTHENTICATED")
    assert_denied(await gql(UPDATE, write), "UNAUTHENTICATED")
    for token in (customer, support):
        assert_denied(await gql(ALL, token=token), "FORBIDDEN")
        assert_denied(await gql(ONE, {"id": policy["id"]}, token=token), "FORBIDDEN")
    for token in (customer, viewer, support):
        assert_denied(await gql(UPDATE, write, token=token), "FORBIDDEN")
        assert_denied(await gql(CREATE, {"input": {"name": "x"}}, token=token), "FORBIDDEN")
        assert_denied(await gql(DELETE, {"id": policy["id"]}, token=token), "FORBIDDEN")
    assert assert_no_errors(await gql(ONE, {"id": policy["id"]}, token=viewer))["selfServicePolicy"]["version"] == 1


def test_a_look_up_begun_before_a_drop_never_puts_the_old_documents_back():
    from gateway.runtime import ApplicationCache

    # given a cache, and a look-up that began (and read the documents) before an admin's write dropped it
    cache = ApplicationCache(ttl=60)
    began_at = cache.generation
    cache.forget()

    # when that look-up stores what it read, and a later one stores what it read
    cache.put("client", began_at, "old application", "old policy")
    stale = cache.get("client")
    cache.put("client", cache.generation, "new application", "new policy")

    # then only the later one is kept
    assert stale is None
    assert cache.get("client") == ("new application", "new policy")


async def test_a_policy_assigned_while_it_is_being_deleted_is_put_back_and_in_use(gql, runtime, monkeypatch):
    # given a policy no application uses, and an admin assigning it to an application just as another
    # deletes it (after the delete checked that none uses it)
    from stores import config

    admin = await admin_token(runtime, gql)
    policy = await create_policy(gql, admin, mfa={"mode": "REQUIRED"})
    application_id, client_id = await new_application(runtime)
    real_delete = config.delete_policy

    async def assigned_meanwhile(policy_id):
        await config.update_application(application_id, {"policy_id": policy_id})
        return await real_delete(policy_id)

    monkeypatch.setattr(config, "delete_policy", assigned_meanwhile)

    # when the delete completes
    result = assert_no_errors(await gql(DELETE, {"id": policy["id"]}, token=admin))["selfServicePolicyDelete"]

    # then it answers as if the assignment came first, and the policy is there as it was, serving the application
    assert result["__typename"] == "PolicyInUseError"
    kept = assert_no_errors(await gql(ONE, {"id": policy["id"]}, token=admin))["selfServicePolicy"]
    assert kept == policy
    assert (await config.get_application(application_id)).policy_id == policy["id"]


SELF_SERVICE = "query { me { selfService { dataExport } } }"


async def test_an_application_whose_policy_is_gone_serves_under_the_default_policy_with_a_warning(
        gql, mailbox, runtime, caplog):
    # given an application whose own policy (data export off) was deleted under it
    import logging

    from stores.documents import PolicyDocument

    application_id, client_id = await new_application(runtime, account_management={"data_export": False})
    policy_id = f"policy-{application_id.removeprefix('app-')}"
    await PolicyDocument.get_pymongo_collection().delete_one({"_id": policy_id})
    runtime.forget_applications()
    headers = {"x-application-id": client_id}
    caplog.set_level(logging.WARNING, logger="gateway.policies")

    # when a customer registers, activates and signs in there
    token = await active_customer(gql, mailbox, unique_email("orphan"), headers=headers)
    areas = assert_no_errors(await gql(SELF_SERVICE, token=token, headers=headers))["me"]["selfService"]

    # then it works, under the default policy (data export on), and the gap is logged with both ids
    assert areas == {"dataExport": True}
    warned = [r for r in caplog.records if getattr(r, "missing_policy_id", None) == policy_id]
    assert warned and warned[0].application_id == application_id and warned[0].levelno == logging.WARNING


async def test_a_passwordless_policy_needs_emailed_sign_in(gql, runtime):
    # given an admin and a policy with emailed sign-in off (the default)
    admin = await admin_token(runtime, gql)
    policy = await create_policy(gql, admin)

    # when they make it passwordless alone, then with emailed sign-in, then turn emailed sign-in off
    alone = await update_policy(gql, admin, policy, passwordless=True)
    both = await update_policy(gql, admin, policy, passwordless=True, emailSignIn={"enabled": True})
    off = await update_policy(gql, admin, policy, version=both["version"], emailSignIn={"enabled": False})

    # then a policy whose customers could never sign in is refused, on the field the admin gave
    assert alone["__typename"] == "InvalidInputError" and alone["fields"][0]["field"] == "passwordless"
    assert both["passwordless"] is True
    assert off["__typename"] == "InvalidInputError" and off["fields"][0]["field"] == "emailSignIn.enabled"
