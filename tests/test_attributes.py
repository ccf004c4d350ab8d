"""The attribute schema: admins define custom attributes; customers see and set them, validated."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from resolvers import profile
from resolvers.context import Principal, RequestMeta
from resolvers.errors import InvalidInput
from stores import config
from stores.documents import ApplicationDocument, IdentityStoreDocument
from tests.flows import active_customer, admin_token
from tests.support import assert_denied, assert_no_errors, unique_email

DEFINITION_FIELDS = """
id key label type required maxLength pattern enumValues selfServiceVisible selfServiceEditable archived version
"""

CREATE = """
mutation Create($input: AttributeDefinitionCreateInput!) {
  attributeDefinitionCreate(input: $input) {
    __typename
    ... on AttributeDefinitionSaved { definition { %s } }
    ... on InvalidInputError { fields { field code message } }
  }
}
""" % DEFINITION_FIELDS

UPDATE = """
mutation Update($id: ID!, $input: AttributeDefinitionUpdateInput!) {
  attributeDefinitionUpdate(id: $id, input: $input) {
    __typename
    ... on AttributeDefinitionSaved { definition { %s } }
    ... on ConflictError { currentVersion }
    ... on InvalidInputError { fields { field code } }
    ... on Error { code }
  }
}
""" % DEFINITION_FIELDS

DELETE = """
mutation Delete($id: ID!) {
  attributeDefinitionDelete(id: $id) {
    __typename ... on AttributeDefinitionDeleted { id archived } ... on Error { code }
  }
}
"""

DEFINITIONS = "query { attributeDefinitions { key label type archived } }"

ME_ATTRIBUTES = "query { me { attributes { key label type value editable required archived } } }"

SET_ATTRIBUTES = """
mutation Set($input: ProfileUpdateInput!) {
  profileUpdate(input: $input) {
    __typename
    ... on ProfileUpdated { profile { givenName } attributes { key value editable } }
    ... on InvalidInputError { fields { field code message } }
  }
}
"""

CUSTOMER_ATTRIBUTES = "query Customer($id: ID!) { customer(id: $id) { attributes { key value editable archived } } }"


def key(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def create(gql, admin: str, **fields) -> dict:
    result = assert_no_errors(await gql(CREATE, {"input": fields}, token=admin))["attributeDefinitionCreate"]
    assert result["__typename"] == "AttributeDefinitionSaved", result
    return result["definition"]


async def set_attributes(gql, token: str, values: dict, **standard) -> dict:
    items = [{"key": k, "value": v} for k, v in values.items()]
    return assert_no_errors(await gql(SET_ATTRIBUTES, {"input": {"attributes": items, **standard}},
                                      token=token))["profileUpdate"]


def problems(result: dict) -> dict[str, str]:
    assert result["__typename"] == "InvalidInputError", result
    return {problem["field"]: problem["code"] for problem in result["fields"]}


def mine(attributes: list[dict], keys) -> dict[str, dict]:
    """The store is shared by the whole test run: keep the attributes this test defined."""
    return {a["key"]: a for a in attributes if a["key"] in set(keys)}


async def test_customers_set_every_type_and_read_them_back_typed(gql, mailbox, runtime):
    # given an admin-defined attribute of each type, one visible but not editable, one hidden
    admin = await admin_token(runtime, gql, "admin")
    keys = {t: key(t.lower()) for t in ("STRING", "NUMBER", "BOOLEAN", "DATE", "ENUM")}
    await create(gql, admin, key=keys["STRING"], label="Member number", type="STRING", maxLength=8,
                 pattern="[A-Z]{2}[0-9]{1,6}")
    await create(gql, admin, key=keys["NUMBER"], label="Shoe size", type="NUMBER")
    await create(gql, admin, key=keys["BOOLEAN"], label="Newsletter", type="BOOLEAN")
    await create(gql, admin, key=keys["DATE"], label="Member since", type="DATE")
    await create(gql, admin, key=keys["ENUM"], label="Tier", type="ENUM", enumValues=["silver", "gold"])
    fixed, hidden = key("fixed"), key("hidden")
    await create(gql, admin, key=fixed, label="Loyalty id", type="STRING", selfServiceEditable=False)
    await create(gql, admin, key=hidden, label="Risk", type="NUMBER", selfServiceVisible=False,
                 selfServiceEditable=False)
    token = await active_customer(gql, mailbox, unique_email("attrs"))

    # when the customer sets a value of each editable one
    values = {keys["STRING"]: "AB1234", keys["NUMBER"]: 42.5, keys["BOOLEAN"]: True,
              keys["DATE"]: "2020-02-29", keys["ENUM"]: "gold"}
    result = await set_attributes(gql, token, values)
    seen = mine(assert_no_errors(await gql(ME_ATTRIBUTES, token=token))["me"]["attributes"],
                [*keys.values(), fixed, hidden])

    # then each reads back in its type (a boolean is true, not 1), the fixed one shows as not editable,
    # and the hidden one is not shown at all
    assert result["__typename"] == "ProfileUpdated"
    assert {k: a["value"] for k, a in seen.items()} == {**values, fixed: None}
    assert seen[keys["BOOLEAN"]]["type"] == "BOOLEAN" and seen[keys["BOOLEAN"]]["value"] is True
    assert seen[fixed]["editable"] is False and all(seen[k]["editable"] for k in keys.values())
    assert hidden not in seen


async def test_unknown_hidden_fixed_and_invalid_attributes_are_all_named_and_nothing_is_saved(gql, mailbox, runtime):
    # given attributes with rules, one required, one fixed and one hidden, and a customer with values
    admin = await admin_token(runtime, gql, "admin")
    code, size, tier, since = key("code"), key("size"), key("tier"), key("since")
    needed, fixed, hidden = key("needed"), key("fixed"), key("hidden")
    await create(gql, admin, key=code, label="Code", type="STRING", maxLength=4, pattern="[a-z]+")
    await create(gql, admin, key=size, label="Size", type="NUMBER")
    await create(gql, admin, key=tier, label="Tier", type="ENUM", enumValues=["silver", "gold"])
    await create(gql, admin, key=since, label="Since", type="DATE")
    await create(gql, admin, key=needed, label="Needed", type="BOOLEAN", required=True)
    await create(gql, admin, key=fixed, label="Fixed", type="STRING", selfServiceEditable=False)
    await create(gql, admin, key=hidden, label="Hidden", type="STRING", selfServiceVisible=False,
                 selfServiceEditable=False)
    token = await active_customer(gql, mailbox, unique_email("bad"), givenName="Grace")
    await set_attributes(gql, token, {code: "abc", needed: False})

    # when one request changes the given name and sends a bad value for every attribute
    result = assert_no_errors(await gql(SET_ATTRIBUTES, {"input": {"givenName": "Ada", "attributes": [
        {"key": code, "value": "ABC"}, {"key": size, "value": "42"}, {"key": tier, "value": "platinum"},
        {"key": since, "value": "2021-02-29"}, {"key": needed, "value": None}, {"key": fixed, "value": "x"},
        {"key": hidden, "value": "x"}, {"key": "nosuchkey", "value": 1}, {"key": size, "value": 1},
    ]}}, token=token))["profileUpdate"]

    # then each bad field is named (a hidden one looks unknown), and nothing changed at all
    assert result["__typename"] == "InvalidInputError"
    assert sorted((f["field"], f["code"]) for f in result["fields"]) == sorted([
        (f"attributes.{code}", "PATTERN_MISMATCH"), (f"attributes.{size}", "INVALID"),
        (f"attributes.{tier}", "INVALID"), (f"attributes.{since}", "INVALID"), (f"attributes.{needed}", "REQUIRED"),
        (f"attributes.{fixed}", "NOT_EDITABLE"), (f"attributes.{hidden}", "UNKNOWN"),
        ("attributes.nosuchkey", "UNKNOWN"), (f"attributes.{size}", "DUPLICATE")])
    me = assert_no_errors(await gql("query { me { givenName attributes { key value } } }", token=token))["me"]
    assert me["givenName"] == "Grace"
    assert {a["key"]: a["value"] for a in me["attributes"] if a["key"] in (code, needed)} == {code: "abc", needed: False}


async def test_a_catastrophic_pattern_times_out_into_a_field_error(gql, mailbox, runtime):
    # given an attribute whose admin-written pattern backtracks exponentially on a near miss
    admin = await admin_token(runtime, gql, "admin")
    evil = key("evil")
    await create(gql, admin, key=evil, label="Evil", type="STRING", pattern="(a|aa)+$")
    token = await active_customer(gql, mailbox, unique_email("redos"))

    # when a customer sends a value that makes it backtrack (2^60 paths without a time limit)
    result = await set_attributes(gql, token, {evil: "a" * 90 + "!"})
    healthy = await gql.http.get("/healthz")

    # then the match gives up and the field is named, and the gateway still answers
    assert problems(result) == {f"attributes.{evil}": "PATTERN_TIMEOUT"}
    assert healthy.status_code == 200


async def test_definitions_are_validated_when_saved(gql, runtime):
    # given an admin
    admin = await admin_token(runtime, gql, "admin")
    taken = key("taken")
    await create(gql, admin, key=taken, label="Taken", type="STRING")

    # when they save definitions that break each rule
    cases = [
        ({"key": key("p"), "label": "Bad pattern", "type": "STRING", "pattern": "([a-z]+"}, "pattern", "INVALID"),
        ({"key": key("p"), "label": "Pattern on a number", "type": "NUMBER", "pattern": "[0-9]+"}, "pattern",
         "NOT_ALLOWED"),
        ({"key": "Not valid!", "label": "Key", "type": "STRING"}, "key", "INVALID"),
        ({"key": "givenName", "label": "Shadow", "type": "STRING"}, "key", "RESERVED"),
        ({"key": taken, "label": "Again", "type": "STRING"}, "key", "TAKEN"),
        ({"key": key("e"), "label": "Empty enum", "type": "ENUM"}, "enumValues", "REQUIRED"),
        ({"key": key("e"), "label": "Twice", "type": "ENUM", "enumValues": ["a", "a"]}, "enumValues", "DUPLICATE"),
        ({"key": key("m"), "label": "Long", "type": "STRING", "maxLength": 5000}, "maxLength", "OUT_OF_RANGE"),
        ({"key": key("v"), "label": "Hidden edit", "type": "STRING", "selfServiceVisible": False},
         "selfServiceEditable", "NOT_ALLOWED"),
        ({"key": key("l"), "label": "  ", "type": "STRING"}, "label", "REQUIRED"),
    ]
    results = [assert_no_errors(await gql(CREATE, {"input": fields}, token=admin))["attributeDefinitionCreate"]
               for fields, _, _ in cases]

    # then each is refused with the field at fault, and none was stored
    assert [problems(result) for result in results] == [{field: code} for _, field, code in cases]
    listed = {d["key"] for d in assert_no_errors(await gql(DEFINITIONS, token=admin))["attributeDefinitions"]}
    assert not listed & {fields["key"] for fields, _, _ in cases if fields["key"] != taken}


async def test_update_is_partial_and_a_stale_version_is_a_conflict(gql, runtime):
    # given a definition read at version 1
    admin = await admin_token(runtime, gql, "admin")
    created = await create(gql, admin, key=key("tier"), label="Tier", type="ENUM", enumValues=["a", "b"])

    # when one admin relabels it, and another, still at version 1, changes its values; then an unknown id
    first = assert_no_errors(await gql(UPDATE, {"id": created["id"], "input": {"version": 1, "label": "Level"}},
                                       token=admin))["attributeDefinitionUpdate"]
    stale = assert_no_errors(await gql(UPDATE, {"id": created["id"], "input": {"version": 1, "enumValues": ["c"]}},
                                       token=admin))["attributeDefinitionUpdate"]
    unknown = assert_no_errors(await gql(UPDATE, {"id": "nope", "input": {"version": 1, "label": "x"}},
                                         token=admin))["attributeDefinitionUpdate"]

    # then the first applies (only the label changed), the stale one is a conflict naming version 2
    assert first["definition"] == {**created, "label": "Level", "version": 2}
    assert stale == {"__typename": "ConflictError", "code": "CONFLICT", "currentVersion": 2}
    assert unknown == {"__typename": "NotFoundError", "code": "NOT_FOUND"}


async def test_a_definition_in_use_is_archived_and_its_values_kept(gql, mailbox, runtime):
    # given two definitions, a customer holding a value for one of them
    admin = await admin_token(runtime, gql, "admin")
    used = await create(gql, admin, key=key("used"), label="Used", type="STRING")
    unused = await create(gql, admin, key=key("unused"), label="Unused", type="STRING")
    token = await active_customer(gql, mailbox, unique_email("archive"))
    await set_attributes(gql, token, {used["key"]: "kept"})
    customer_id = assert_no_errors(await gql("query { me { id } }", token=token))["me"]["id"]

    # when the admin deletes both
    deleted = [assert_no_errors(await gql(DELETE, {"id": d["id"]}, token=admin))["attributeDefinitionDelete"]
               for d in (used, unused)]

    # then the unused one is gone, the used one archived: hidden from the customer, who can no longer set it,
    # and shown to admins with the value kept
    assert [d["archived"] for d in deleted] == [True, False]
    listed = {d["key"]: d for d in assert_no_errors(await gql(DEFINITIONS, token=admin))["attributeDefinitions"]}
    assert listed[used["key"]]["archived"] is True and unused["key"] not in listed
    own = assert_no_errors(await gql(ME_ATTRIBUTES, token=token))["me"]["attributes"]
    assert used["key"] not in {a["key"] for a in own}
    assert problems(await set_attributes(gql, token, {used["key"]: "new"})) == {f"attributes.{used['key']}": "UNKNOWN"}
    seen = assert_no_errors(await gql(CUSTOMER_ATTRIBUTES, {"id": customer_id}, token=admin))["customer"]
    assert mine(seen["attributes"], [used["key"]]) == {
        used["key"]: {"key": used["key"], "value": "kept", "editable": False, "archived": True}}


async def test_the_attribute_schema_needs_its_permissions(gql, mailbox, runtime):
    # given a viewer (attributes:read only), a support agent (neither) and a customer
    viewer = await admin_token(runtime, gql, "viewer")
    support = await admin_token(runtime, gql, "support")
    customer = await active_customer(gql, mailbox, unique_email("perm"))
    fields = {"input": {"key": key("x"), "label": "X", "type": "STRING"}}

    # when each reads and writes the schema
    viewer_reads = await gql(DEFINITIONS, token=viewer)
    viewer_writes = await gql(CREATE, fields, token=viewer)
    support_reads = await gql(DEFINITIONS, token=support)
    customer_reads = await gql(DEFINITIONS, token=customer)
    anonymous = await gql(DEFINITIONS)

    # then only the read with attributes:read passes
    assert "errors" not in viewer_reads
    assert_denied(viewer_writes, "FORBIDDEN")
    assert_denied(support_reads, "FORBIDDEN")
    assert_denied(customer_reads, "FORBIDDEN")
    assert_denied(anonymous, "UNAUTHENTICATED")


async def test_a_definition_of_another_identity_store_is_not_found(gql, runtime):
    # given a definition in the default store, and an application of another identity store
    admin = await admin_token(runtime, gql, "admin")
    defined = await create(gql, admin, key=key("own"), label="Own", type="STRING")
    suffix = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    await config.insert_if_missing(IdentityStoreDocument(id=f"store-{suffix}", name="Other", created_at=now))
    await config.insert_if_missing(ApplicationDocument(
        id=f"app-{suffix}", client_id=f"client-{suffix}", name="Other store", policy_id="default",
        identity_store_id=f"store-{suffix}", created_at=now))
    other = {"x-application-id": f"client-{suffix}"}

    # when the admin, acting for the other store's application, changes, deletes and lists it
    changed = await gql(UPDATE, {"id": defined["id"], "input": {"version": 1, "label": "x"}}, token=admin,
                        headers=other)
    deleted = await gql(DELETE, {"id": defined["id"]}, token=admin, headers=other)
    listed = await gql(DEFINITIONS, token=admin, headers=other)

    # then the answers are those of an id that does not exist, and the other store lists nothing of ours
    assert assert_no_errors(changed)["attributeDefinitionUpdate"] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    assert assert_no_errors(deleted)["attributeDefinitionDelete"] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    assert defined["key"] not in {d["key"] for d in assert_no_errors(listed)["attributeDefinitions"]}


async def test_an_admin_update_may_set_what_customers_cannot_under_the_same_rules(gql, mailbox, runtime):
    # given a hidden, admin-only attribute with a pattern, and a customer
    admin = await admin_token(runtime, gql, "admin")
    risk = key("risk")
    await create(gql, admin, key=risk, label="Risk", type="STRING", pattern="low|high",
                 selfServiceVisible=False, selfServiceEditable=False)
    token = await active_customer(gql, mailbox, unique_email("admin-set"))
    customer_id = assert_no_errors(await gql("query { me { id } }", token=token))["me"]["id"]
    ctx = await runtime.context(client_id=None, request=RequestMeta(), principal=Principal(
        kind="admin", subject_id="admin-test", session_id="s", permissions=frozenset({"customers:write"})))

    # when the admin's use case (customerUpdate) sets it, then tries a value the pattern refuses
    updated = await profile.update_attributes(ctx, customer_id, {"attributes": [(risk, "high")]}, by_admin=True)
    try:
        await profile.update_attributes(ctx, customer_id, {"attributes": [(risk, "medium")]}, by_admin=True)
        refused = None
    except InvalidInput as exc:
        refused = {p.field: p.code for p in exc.problems}

    # then the first is stored and the second refused, and the customer still does not see it
    assert updated.attributes[risk] == "high"
    assert refused == {f"attributes.{risk}": "PATTERN_MISMATCH"}
    own = assert_no_errors(await gql(ME_ATTRIBUTES, token=token))["me"]["attributes"]
    assert risk not in {a["key"] for a in own}
