"""Who may call what, over the whole schema: every root field is public (an explicit list), a customer
field, or an admin field with a declared permission; each admin field is tried with no token, a
customer token, an admin lacking its permission and one holding it. docs/permissions.md is current.

Fields are read from the running schema (introspection) and their requirement from the
PermissionExtension declared on each, so fields added later are covered without editing this file
(unless they are public: then they must be added to PUBLIC, on purpose).
"""

from __future__ import annotations

import json
import uuid

import pytest

from resolvers.roles import PERMISSIONS, ROLE_PERMISSIONS
from schema.admins import FieldAccess, field_access, permissions_markdown
from schema.root import build_schema
from stores.documents import AdminDocument
from tests.flows import ADMIN_PASSWORD, ADMIN_SIGN_IN, active_customer, admin_token
from tests.support import GraphQLClient, assert_no_errors, unique_email

# Fields anyone may call, without a token: each one here on purpose.
PUBLIC = frozenset({
    "accountRegister", "accountActivate", "accountActivationResend", "sessionCreate", "passwordResetRequest",
    "passwordReset", "usernameReminderRequest", "adminSessionCreate", "adminInvitationAccept",
    "adminPasswordResetRequest", "adminPasswordReset",
    # the token in hand is the credential: the emailed link, or the sign-in's second-factor challenge
    "emailChangeConfirm", "sessionMfaVerify", "sessionMfaCodeSend",
    # social sign-in: the application's providers, a flow's start, and the grant the redirect carried
    "socialSignInProviders", "socialSignInStart", "socialSignInComplete",
    # other ways in: a passkey's signature, an emailed code or the grant of a confirmed sign-in link
    "passkeySignInStart", "passkeySignInFinish", "emailSignInRequest", "emailSignInCodeVerify", "emailSignInComplete",
})
# Admin fields about the signed-in admin itself: any admin, no permission.
ADMIN_SELF = frozenset({"adminMe"})
DENIALS = {"UNAUTHENTICATED", "FORBIDDEN"}

SCHEMA = build_schema()
ACCESS = {access.name: access for access in field_access(SCHEMA)}
ADMIN_FIELDS = sorted(name for name, access in ACCESS.items() if access.who in {"admin", "permission"})
CUSTOMER_FIELDS = sorted(name for name, access in ACCESS.items() if access.who == "customer")
SIGNED_IN_FIELDS = sorted(name for name, access in ACCESS.items() if access.who == "authenticated")

TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"
INTROSPECTION = """
{ __schema {
    queryType { name } mutationType { name }
    types { kind name enumValues { name } inputFields { name defaultValue type { %s } }
            fields { name args { name defaultValue type { %s } } type { %s } } } } }
""" % (TYPE_REF, TYPE_REF, TYPE_REF)
SCALARS = {"String": '"x"', "ID": '"x"', "Int": "1", "Float": "1.0", "Boolean": "false",
           "DateTime": '"2030-01-01T00:00:00+00:00"', "Date": '"2030-01-01"', "JSON": "{}"}


class Operations:
    """A valid document for each root field, built from introspection: required arguments get
    made-up values of their types, and object results select ``__typename``."""

    def __init__(self, introspected: dict) -> None:
        schema = introspected["__schema"]
        self.types = {t["name"]: t for t in schema["types"]}
        self.roots = {"query": schema["queryType"]["name"], "mutation": schema["mutationType"]["name"]}

    def _named(self, ref: dict) -> dict:
        while ref.get("ofType"):
            ref = ref["ofType"]
        return self.types[ref["name"]]

    def _value(self, ref: dict, depth: int = 0) -> str:
        if ref["kind"] == "NON_NULL":
            return self._value(ref["ofType"], depth)
        if ref["kind"] == "LIST":
            return f"[{self._value(ref['ofType'], depth)}]"
        named = self.types[ref["name"]]
        if named["kind"] == "ENUM":
            return named["enumValues"][0]["name"]
        if named["kind"] == "INPUT_OBJECT":
            required = [f for f in named["inputFields"] if f["type"]["kind"] == "NON_NULL" and f["defaultValue"] is None]
            return "{" + ", ".join(f"{f['name']}: {self._value(f['type'], depth + 1)}" for f in required) + "}"
        return SCALARS.get(named["name"], '"x"')

    def document(self, name: str) -> str:
        for operation, root in self.roots.items():
            field = next((f for f in self.types[root]["fields"] if f["name"] == name), None)
            if field is None:
                continue
            required = [a for a in field["args"] if a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None]
            values = ", ".join(f"{a['name']}: {self._value(a['type'])}" for a in required)
            args = f"({values})" if required else ""
            selection = " { __typename }" if self._named(field["type"])["kind"] in {"OBJECT", "UNION", "INTERFACE"} \
                else ""
            return f"{operation} {{ {name}{args}{selection} }}"
        raise KeyError(name)


_principals: dict[str, str] = {}
_operations: list[Operations] = []


async def principal(runtime, gql: GraphQLClient, mailbox, who: str) -> str | None:
    """A token for: "none", "customer", a role name, or "no-role" (an admin whose role grants nothing)."""
    if who == "none":
        return None
    if who not in _principals:
        if who == "customer":
            _principals[who] = await active_customer(gql, mailbox, unique_email("table"))
        elif who == "no-role":
            email = unique_email("no-role-admin")
            await AdminDocument.get_pymongo_collection().insert_one(AdminDocument(
                id=uuid.uuid4().hex, email=email, email_norm=email, role="no-role", created_at=runtime.clock.now(),
                password_hash=await runtime.hasher.hash(ADMIN_PASSWORD)).model_dump(by_alias=True))
            signed = assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": ADMIN_PASSWORD}}))
            _principals[who] = signed["adminSessionCreate"]["token"]
        else:
            _principals[who] = await admin_token(runtime, gql, who)
    return _principals[who]


async def operations(gql: GraphQLClient) -> Operations:
    if not _operations:
        _operations.append(Operations(assert_no_errors(await gql(INTROSPECTION))))
    return _operations[0]


def codes(result: dict) -> set[str]:
    return {(error.get("extensions") or {}).get("code") for error in result.get("errors") or []}


def lacking_and_holding(access: FieldAccess) -> tuple[str | None, str]:
    """An admin role without the field's permission (the one with most permissions; "no-role" when every
    role has it), and the role with fewest permissions that has it."""
    if access.permission is None:
        return None, min(ROLE_PERMISSIONS, key=lambda role: len(ROLE_PERMISSIONS[role]))
    without = [role for role, granted in ROLE_PERMISSIONS.items() if access.permission not in granted]
    holders = [role for role, granted in ROLE_PERMISSIONS.items() if access.permission in granted]
    return (max(without, key=lambda r: len(ROLE_PERMISSIONS[r])) if without else "no-role",
            min(holders, key=lambda r: len(ROLE_PERMISSIONS[r])))


def test_every_root_field_is_public_on_purpose_or_declares_who_may_call_it():
    # given every root field of the schema and what its PermissionExtension declares
    undeclared = sorted(name for name, access in ACCESS.items() if access.who == "public" and name not in PUBLIC)
    declared_public = sorted(name for name in PUBLIC if name in ACCESS and ACCESS[name].who != "public")
    any_admin = sorted(name for name, access in ACCESS.items() if access.who == "admin" and name not in ADMIN_SELF)
    unknown = sorted({a.permission for a in ACCESS.values() if a.permission and a.permission not in PERMISSIONS})

    # then nothing outside the public list lacks a declaration, no admin field but the admin's own skips a
    # permission, the lists are true, and every permission exists
    assert undeclared == [], f"fields without a declared permission (add one, or list them in PUBLIC): {undeclared}"
    assert any_admin == [], f"admin fields without a permission (declare HasPermission): {any_admin}"
    assert declared_public == []
    assert unknown == [], f"permissions not in resolvers/roles.py: {unknown}"


@pytest.mark.parametrize("field", ADMIN_FIELDS)
async def test_an_admin_field_answers_each_principal_as_declared(gql, runtime, mailbox, field):
    # given the field's declared requirement, and the four principals
    access = ACCESS[field]
    lacking, holding = lacking_and_holding(access)
    document = (await operations(gql)).document(field)

    # when each calls it
    anonymous = await gql(document)
    customer = await gql(document, token=await principal(runtime, gql, mailbox, "customer"))
    without = await gql(document, token=await principal(runtime, gql, mailbox, lacking)) if lacking else None
    holder = await gql(document, token=await principal(runtime, gql, mailbox, holding))

    # then: UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, and no denial
    shown = f"{field} ({access.permission or 'any admin'}): {document}"
    assert codes(anonymous) == {"UNAUTHENTICATED"}, (shown, anonymous)
    assert codes(customer) == {"FORBIDDEN"}, (shown, customer)
    if without is not None:
        assert codes(without) == {"FORBIDDEN"}, (shown, lacking, without)
    assert not codes(holder) & DENIALS, (shown, holding, json.dumps(holder)[:500])


@pytest.mark.parametrize("field", CUSTOMER_FIELDS)
async def test_a_customer_field_refuses_anonymous_callers_and_admins(gql, runtime, mailbox, field):
    # given a customer field, and a customer of its own (a made-up call may end their session)
    document = (await operations(gql)).document(field)
    own = await active_customer(gql, mailbox, unique_email("customer-field"))

    # when it is called without a token, with an owner's token, and with the customer's
    anonymous = await gql(document)
    owner = await gql(document, token=await principal(runtime, gql, mailbox, "owner"))
    customer = await gql(document, token=own)

    # then: UNAUTHENTICATED, FORBIDDEN, and no denial
    assert codes(anonymous) == {"UNAUTHENTICATED"}, (field, anonymous)
    assert codes(owner) == {"FORBIDDEN"}, (field, owner)
    assert not codes(customer) & DENIALS, (field, customer)


@pytest.mark.parametrize("field", SIGNED_IN_FIELDS)
async def test_a_field_for_anyone_signed_in_refuses_anonymous_callers(gql, field):
    # given a field for any signed-in customer or admin
    document = (await operations(gql)).document(field)

    # when it is called without a token
    anonymous = await gql(document)

    # then it is UNAUTHENTICATED
    assert codes(anonymous) == {"UNAUTHENTICATED"}, (field, anonymous)


def test_docs_permissions_md_is_generated_from_the_code(repo_root):
    # given the role table and the schema
    expected = permissions_markdown(SCHEMA)

    # when docs/permissions.md is read
    current = (repo_root / "docs" / "permissions.md").read_text(encoding="utf-8")

    # then it is what `identity-gateway export-permissions` prints
    assert current == expected, "docs/permissions.md is stale: run .venv/bin/identity-gateway export-permissions " \
                                "> docs/permissions.md"
