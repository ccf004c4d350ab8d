"""The admin API: signing in, roles and permissions, and the customer listing."""

from __future__ import annotations

import base64
import uuid

import pytest

from resolvers.admins import create_admin
from resolvers.context import RequestMeta
from resolvers.roles import ROLE_PERMISSIONS
from stores import admins as admin_store
from stores.documents import AdminDocument
from tests.flows import (ADMIN_PASSWORD, ADMIN_SIGN_IN, PASSWORD, active_customer, admin_token, register)
from tests.support import assert_denied, assert_no_errors, unique_email

ADMIN_ME = "query { adminMe { id email role permissions createdAt } }"

CUSTOMERS = """
query Customers($first: Int!, $after: String, $search: String) {
  customers(first: $first, after: $after, search: $search) {
    __typename edges { cursor node { id email status } } pageInfo { hasNextPage endCursor }
  }
}
"""

CUSTOMER = """
query Customer($id: ID!) {
  customer(id: $id) { id email username status emailVerified sessions { id ipAddress current } }
}
"""

CUSTOMER_NO_SESSIONS = "query Customer($id: ID!) { customer(id: $id) { id email status } }"


async def new_admin(runtime, role: str = "owner") -> tuple[str, str]:
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())
    await create_admin(ctx, email, ADMIN_PASSWORD, role)
    return email, ADMIN_PASSWORD


async def admin_sign_in(gql, email: str, password: str) -> dict:
    return assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": password}}))[
        "adminSessionCreate"]


async def customers_page(gql, token: str, **variables) -> dict:
    return assert_no_errors(await gql(CUSTOMERS, {"first": 20, **variables}, token=token))["customers"]


async def test_an_admin_created_like_the_cli_signs_in_and_sees_role_and_permissions(gql, runtime):
    # given an admin created through the same use case as the CLI
    email, password = await new_admin(runtime, "support")

    # when they sign in (email in another case) and ask who they are
    session = await admin_sign_in(gql, email.upper(), password)
    me = assert_no_errors(await gql(ADMIN_ME, token=session["token"]))["adminMe"]

    # then they get an admin token and see their role and its permissions
    assert session["__typename"] == "SessionCreated" and session["token"].startswith("gwa_")
    assert me["email"] == email and me["role"] == "support"
    assert me["permissions"] == sorted(ROLE_PERMISSIONS["support"])


async def test_wrong_admin_password_unknown_admin_and_customer_credentials_are_refused_alike(gql, mailbox, runtime):
    # given an admin and a customer
    email, _ = await new_admin(runtime)
    customer = unique_email("not-admin")
    await active_customer(gql, mailbox, customer)

    # when each wrong combination is tried on the admin sign-in
    wrong = await admin_sign_in(gql, email, "not the admin password")
    unknown = await admin_sign_in(gql, unique_email("no-admin"), ADMIN_PASSWORD)
    as_customer = await admin_sign_in(gql, customer, PASSWORD)

    # then all three get the same refusal
    assert wrong["__typename"] == "InvalidCredentialsError"
    assert wrong == unknown == as_customer


async def test_customers_page_through_a_search_with_cursors(gql, runtime):
    # given five customers sharing a unique prefix
    prefix = f"pager{uuid.uuid4().hex[:8]}"
    emails = {f"{prefix}-{i}@example.com" for i in range(5)}
    for email in emails:
        await register(gql, email)
    token = await admin_token(runtime, gql)

    # when an admin pages through them two at a time, searching the prefix in capitals
    seen, pages, after = [], [], None
    while True:
        page = await customers_page(gql, token, first=2, after=after, search=prefix.upper())
        assert page["__typename"] == "CustomerConnection", page
        pages.append(len(page["edges"]))
        seen += [edge["node"]["email"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]

    # then they see each customer exactly once, in pages of 2, 2 and 1
    assert pages == [2, 2, 1]
    assert sorted(seen) == sorted(emails)


async def test_search_matches_only_the_start_of_the_email(gql, runtime):
    # given a customer whose email contains a marker in the middle, and one whose email starts with it
    marker = f"mid{uuid.uuid4().hex[:8]}"
    await register(gql, f"x{marker}@example.com")
    await register(gql, f"{marker}.start@example.com")
    token = await admin_token(runtime, gql)

    # when an admin searches the marker, and a regex-looking search
    found = await customers_page(gql, token, search=marker)
    regex = await customers_page(gql, token, search=f".{marker}")

    # then only the customer whose email starts with it is found, and the dot is no wildcard
    assert [e["node"]["email"] for e in found["edges"]] == [f"{marker}.start@example.com"]
    assert regex["edges"] == []


@pytest.mark.parametrize(("variables", "field"), [
    ({"first": 0}, "first"),
    ({"first": 101}, "first"),
    ({"first": -1}, "first"),
    ({"first": 5, "after": "garbage"}, "after"),
    ({"first": 5, "after": "!!!!"}, "after"),
    ({"first": 5, "after": base64.urlsafe_b64encode(b"x:someone").decode()}, "after"),
    ({"first": 5, "search": "s" * 101}, "search"),
], ids=["first-0", "first-101", "first-negative", "after-garbage", "after-not-base64", "after-foreign", "search-long"])
async def test_out_of_range_paging_is_a_bad_user_input_naming_the_argument(gql, runtime, variables, field):
    # given a signed-in admin
    token = await admin_token(runtime, gql)

    # when they page with a bad argument
    result = await gql(CUSTOMERS, {"first": 20, **variables}, token=token)

    # then they get a top-level BAD_USER_INPUT error that names the argument (the connection stays the type)
    assert_denied(result, "BAD_USER_INPUT")
    assert result["errors"][0]["extensions"]["field"] == field
    assert result["errors"][0]["message"].startswith(f"{field}: ")
    assert result["data"] is None


async def test_page_sizes_at_the_limits_are_accepted(gql, runtime):
    # given a signed-in admin
    token = await admin_token(runtime, gql)

    # when they ask for 1 and for 100 customers
    one = await customers_page(gql, token, first=1)
    hundred = await customers_page(gql, token, first=100)

    # then both are pages, of at most that size
    assert one["__typename"] == hundred["__typename"] == "CustomerConnection"
    assert len(one["edges"]) == 1 and 1 <= len(hundred["edges"]) <= 100


async def test_customer_by_id_returns_the_account_or_null(gql, mailbox, runtime):
    # given an active customer with a session, and an admin
    email = unique_email("by-id")
    await active_customer(gql, mailbox, email)
    token = await admin_token(runtime, gql)
    listed = await customers_page(gql, token, search=email)
    customer_id = listed["edges"][0]["node"]["id"]

    # when the admin asks for that id and for ids that do not exist
    found = assert_no_errors(await gql(CUSTOMER, {"id": customer_id}, token=token))["customer"]
    unknown = assert_no_errors(await gql(CUSTOMER, {"id": uuid.uuid4().hex}, token=token))["customer"]
    huge = assert_no_errors(await gql(CUSTOMER, {"id": "x" * 10_000}, token=token))["customer"]

    # then the customer is shown with their session, and the others are null
    assert found["email"] == email and found["status"] == "ACTIVE" and found["emailVerified"] is True
    assert len(found["sessions"]) == 1 and found["sessions"][0]["current"] is False
    assert found["sessions"][0]["ipAddress"] == gql.ip
    assert unknown is None and huge is None


async def test_a_viewer_can_read_customers_and_their_sessions(gql, mailbox, runtime):
    # given a customer with a session, and a signed-in viewer
    email = unique_email("viewed")
    await active_customer(gql, mailbox, email)
    viewer = await admin_token(runtime, gql, role="viewer")

    # when the viewer lists customers and opens one with its sessions
    listed = await customers_page(gql, viewer, search=email)
    customer = assert_no_errors(await gql(CUSTOMER, {"id": listed["edges"][0]["node"]["id"]}, token=viewer))

    # then they see both (viewer holds customers:read and sessions:read)
    assert {"customers:read", "sessions:read"} <= ROLE_PERMISSIONS["viewer"]
    assert customer["customer"]["email"] == email and len(customer["customer"]["sessions"]) == 1


async def test_an_admin_whose_role_grants_nothing_is_forbidden_on_customers(gql, runtime):
    # given an admin whose stored role is not (or no longer) a known role
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    await admin_store.insert(AdminDocument(
        id=uuid.uuid4().hex, email=email, email_norm=email, role="retired-role", created_at=runtime.clock.now(),
        password_hash=await runtime.hasher.hash(ADMIN_PASSWORD)))
    token = (await admin_sign_in(gql, email, ADMIN_PASSWORD))["token"]

    # when they ask for customers, and for one customer
    listing = await gql(CUSTOMERS, {"first": 5}, token=token)
    one = await gql(CUSTOMER_NO_SESSIONS, {"id": "anyone"}, token=token)

    # then both are forbidden, though they can still see who they are
    assert_denied(listing, "FORBIDDEN")
    assert_denied(one, "FORBIDDEN")
    me = assert_no_errors(await gql(ADMIN_ME, token=token))["adminMe"]
    assert me["role"] == "retired-role" and me["permissions"] == []


async def test_a_disabled_admin_is_signed_out_and_cannot_sign_in(gql, runtime):
    # given a signed-in admin
    email, password = await new_admin(runtime)
    token = (await admin_sign_in(gql, email, password))["token"]

    # when the admin is disabled
    await AdminDocument.get_pymongo_collection().update_one({"email_norm": email}, {"$set": {"disabled": True}})

    # then their token stops working and signing in is refused
    assert_denied(await gql(ADMIN_ME, token=token), "UNAUTHENTICATED")
    assert (await admin_sign_in(gql, email, password))["__typename"] == "InvalidCredentialsError"
