"""Admins and roles: invitations, role changes, disabling, the last owner, and admin password recovery."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from pydantic import SecretStr

from resolvers.admins import create_admin
from resolvers.context import RequestMeta
from resolvers.roles import ROLE_PERMISSIONS
from gateway.embedded import EmbeddedDatabase
from tests.conftest import REAL_MONGODB_URI, running_gateway
from tests.flows import ADMIN_PASSWORD, ADMIN_SIGN_IN, admin_token
from tests.support import GraphQLClient, assert_denied, assert_no_errors, hidden_fields, unique_email, unique_ip

ADMIN_FIELDS = "id email role status permissions"
ADMIN_CREATE = """
mutation Create($input: AdminCreateInput!) {
  adminCreate(input: $input) {
    __typename ... on AdminCreated { admin { %s } }
    ... on Error { code message field } ... on InvalidInputError { fields { field code } }
  }
}
""" % ADMIN_FIELDS
ROLE_SET = """
mutation RoleSet($input: AdminRoleSetInput!) {
  adminRoleSet(input: $input) {
    __typename ... on AdminUpdated { admin { %s } } ... on Error { code message field }
  }
}
""" % ADMIN_FIELDS
DISABLE = """
mutation Disable($id: ID!) {
  adminDisable(id: $id) { __typename ... on AdminUpdated { admin { %s } } ... on Error { code message } }
}
""" % ADMIN_FIELDS
ENABLE = """
mutation Enable($id: ID!) {
  adminEnable(id: $id) { __typename ... on AdminUpdated { admin { %s } } ... on Error { code message } }
}
""" % ADMIN_FIELDS
ACCEPT = """
mutation Accept($input: AdminInvitationAcceptInput!) {
  adminInvitationAccept(input: $input) {
    __typename ... on AdminInvitationAccepted { admin { %s } }
    ... on Error { code message field } ... on PasswordPolicyError { reasons }
  }
}
""" % ADMIN_FIELDS
RESET_REQUEST = """
mutation ResetRequest($email: String!) {
  adminPasswordResetRequest(input: {email: $email}) { __typename ... on Error { code } }
}
"""
RESET = """
mutation Reset($input: AdminPasswordResetInput!) {
  adminPasswordReset(input: $input) { __typename ... on Error { code message field } }
}
"""
ADMINS = "query { admins { %s lastSignInAt } }" % ADMIN_FIELDS
ADMIN_ME = "query { adminMe { id email role permissions status } }"
APPLICATIONS = "query { applications { id } }"
NEW_PASSWORD = "another long admin passphrase"


async def sign_in(gql: GraphQLClient, email: str, password: str = ADMIN_PASSWORD) -> dict:
    return assert_no_errors(await gql(ADMIN_SIGN_IN, {"input": {"email": email, "password": password}}))[
        "adminSessionCreate"]


async def new_admin(runtime, role: str = "owner") -> tuple[str, str]:
    """An active admin made like the CLI does: (id, email)."""
    email = unique_email("admin")
    ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta())
    admin = await create_admin(ctx, email, ADMIN_PASSWORD, role)
    return admin.id, email


async def signed_in_admin(runtime, gql: GraphQLClient, role: str = "owner") -> tuple[str, str, str]:
    """(id, email, token)."""
    admin_id, email = await new_admin(runtime, role)
    return admin_id, email, (await sign_in(gql, email))["token"]


async def invite(gql: GraphQLClient, token: str, email: str, role: str = "support") -> dict:
    return assert_no_errors(await gql(ADMIN_CREATE, {"input": {"email": email, "role": role}}, token=token))[
        "adminCreate"]


async def accept(gql: GraphQLClient, link_token: str, password: str = NEW_PASSWORD, confirm: str | None = None) -> dict:
    return assert_no_errors(await gql(ACCEPT, {"input": {"token": link_token, "password": password,
                                                         "confirmPassword": password if confirm is None else confirm}}))[
        "adminInvitationAccept"]


@contextlib.asynccontextmanager
async def own_database(settings, clock, tmp_path, **overrides):
    """A gateway on a database of its own, so that "the last owner" is not any other test's owner.

    nx-27017 shares collections between database names, so it gets a server of its own.
    """
    name = f"gw_owners_{uuid.uuid4().hex[:8]}"
    embedded = None if REAL_MONGODB_URI else EmbeddedDatabase(tmp_path / "owners")
    uri = REAL_MONGODB_URI or await asyncio.to_thread(embedded.acquire)
    try:
        isolated = settings.model_copy(update={"mongodb_uri": SecretStr(uri), "database_name": name, **overrides})
        async with running_gateway(isolated, clock) as (app, http):
            yield app.state.runtime, GraphQLClient(http)
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.release)


async def test_an_invited_admin_accepts_by_link_then_signs_in(gql, runtime, mailbox):
    # given an owner, and an address to invite
    _, _, owner = await signed_in_admin(runtime, gql)
    email = unique_email("invited")

    # when the owner invites it as support
    created = await invite(gql, owner, email)
    mail = await mailbox.wait_for(email, "invited")
    before = await sign_in(gql, email, NEW_PASSWORD)
    accepted = await accept(gql, mail.token("/admin/invitation"))
    after = await sign_in(gql, email, NEW_PASSWORD)

    # then the admin is INVITED and cannot sign in until the link sets a password; then it is active
    assert created["__typename"] == "AdminCreated"
    assert created["admin"]["status"] == "INVITED" and created["admin"]["role"] == "support"
    assert "support" in mail.text and "72 hours" not in mail.subject
    assert before["__typename"] == "InvalidCredentialsError"
    assert accepted["__typename"] == "AdminInvitationAccepted" and accepted["admin"]["status"] == "ACTIVE"
    me = assert_no_errors(await gql(ADMIN_ME, token=after["token"]))["adminMe"]
    assert me["email"] == email and me["permissions"] == sorted(ROLE_PERMISSIONS["support"])


async def test_the_invitation_page_sets_the_password_without_javascript(gql, http, runtime, mailbox):
    # given an invitation
    _, _, owner = await signed_in_admin(runtime, gql)
    email = unique_email("page")
    await invite(gql, owner, email, "viewer")
    token = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")

    # when the invitee opens the link, fills in the form and sends it; then opens the link again
    page = await http.get("/admin/invitation", params={"token": token})
    fields = hidden_fields(page.text, "/admin/invitation")
    done = await http.post("/admin/invitation",
                           data={**fields, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    again = await http.get("/admin/invitation", params={"token": token})

    # then the page shows a form, the form makes the admin active, and the link is used up
    assert page.status_code == 200 and 'type="password"' in page.text
    assert done.status_code == 200 and "ready" in done.text
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"
    assert again.status_code == 400 and 'type="password"' not in again.text


async def test_an_invitation_page_form_from_elsewhere_changes_nothing(gql, http, runtime, mailbox):
    # given an invitation
    _, _, owner = await signed_in_admin(runtime, gql)
    email = unique_email("csrf")
    await invite(gql, owner, email)
    token = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")

    # when a form without the page's CSRF token is posted
    refused = await http.post("/admin/invitation", data={"token": token, "password": NEW_PASSWORD,
                                                          "confirm_password": NEW_PASSWORD})

    # then it is refused and the invitation still works
    assert refused.status_code == 403
    assert (await accept(gql, token))["__typename"] == "AdminInvitationAccepted"


async def test_an_invitation_expires_and_inviting_again_sends_a_new_link(gql, runtime, mailbox, clock):
    # given an invitation three days old, and its owner signed in again
    _, owner_email, owner = await signed_in_admin(runtime, gql)
    email = unique_email("late")
    await invite(gql, owner, email)
    old = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")
    clock.advance(hours=72, minutes=1)
    owner = (await sign_in(gql, owner_email))["token"]

    # when the invitee uses it, and the owner invites the address again (as viewer) and the new link is used
    expired = await accept(gql, old)
    again = await invite(gql, owner, email, "viewer")
    new = (await mailbox.wait_for(email, "invited", count=2)).token("/admin/invitation")
    accepted = await accept(gql, new)

    # then the old link is refused, the second invitation replaces the first, and its link works
    assert expired["__typename"] == "InvalidTokenError"
    assert again["__typename"] == "AdminCreated" and again["admin"]["role"] == "viewer"
    assert accepted["__typename"] == "AdminInvitationAccepted" and accepted["admin"]["role"] == "viewer"


async def test_an_active_admins_address_cannot_be_invited(gql, runtime):
    # given an active admin
    _, email, owner = await signed_in_admin(runtime, gql)

    # when their address (in capitals) is invited, and a bad role and a bad address are tried
    taken = await invite(gql, owner, email.upper())
    bad = assert_no_errors(await gql(ADMIN_CREATE, {"input": {"email": "not an email", "role": "root"}},
                                     token=owner))["adminCreate"]

    # then each is an InvalidInputError naming the field
    assert taken["__typename"] == "InvalidInputError" and taken["fields"] == [{"field": "email", "code": "TAKEN"}]
    assert {f["field"] for f in bad["fields"]} == {"email", "role"}


async def test_an_invitation_password_follows_the_admin_policy(gql, runtime, mailbox):
    # given an invitation
    _, _, owner = await signed_in_admin(runtime, gql)
    email = unique_email("policy")
    await invite(gql, owner, email)
    token = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")

    # when the invitee chooses an 11-character password, then two that differ
    short = await accept(gql, token, "elevenchars")
    mismatch = await accept(gql, token, NEW_PASSWORD, NEW_PASSWORD + "!")

    # then both are refused, and the link still works
    assert short["__typename"] == "PasswordPolicyError" and short["reasons"][0].startswith("TOO_SHORT")
    assert mismatch["__typename"] == "PasswordMismatchError" and mismatch["field"] == "confirmPassword"
    assert (await accept(gql, token))["__typename"] == "AdminInvitationAccepted"


async def test_a_role_change_applies_to_the_admins_next_request(gql, runtime):
    # given an owner and a signed-in admin of role "admin", who can read applications
    _, _, owner = await signed_in_admin(runtime, gql)
    admin_id, _, token = await signed_in_admin(runtime, gql, "admin")
    assert_no_errors(await gql(APPLICATIONS, token=token))

    # when the owner makes them support
    changed = assert_no_errors(await gql(ROLE_SET, {"input": {"id": admin_id, "role": "support"}},
                                         token=owner))["adminRoleSet"]

    # then their very next request with the same token is judged by the new role
    assert changed["__typename"] == "AdminUpdated" and changed["admin"]["role"] == "support"
    assert_denied(await gql(APPLICATIONS, token=token), "FORBIDDEN")
    listed = {a["id"]: a for a in assert_no_errors(await gql(ADMINS, token=owner))["admins"]}
    assert listed[admin_id]["role"] == "support" and listed[admin_id]["lastSignInAt"]


async def test_unknown_admins_and_roles_are_refused(gql, runtime):
    # given an owner and another admin
    _, _, owner = await signed_in_admin(runtime, gql)
    other, _ = await new_admin(runtime, "viewer")

    # when they change an id that does not exist, and give a role that does not exist
    unknown = [assert_no_errors(await gql(query, variables, token=owner)) for query, variables in (
        (ROLE_SET, {"input": {"id": uuid.uuid4().hex, "role": "viewer"}}),
        (DISABLE, {"id": uuid.uuid4().hex}), (ENABLE, {"id": "x" * 1000}))]
    bad_role = assert_no_errors(await gql(ROLE_SET, {"input": {"id": other, "role": "superuser"}}, token=owner))

    # then the ids are NotFoundError and the role is an InvalidInputError on role
    assert [next(iter(r.values()))["__typename"] for r in unknown] == ["NotFoundError"] * 3
    assert bad_role["adminRoleSet"]["__typename"] == "InvalidInputError"
    assert bad_role["adminRoleSet"]["field"] == "role"


async def test_a_disabled_admin_is_signed_out_and_enabled_again(gql, runtime):
    # given an owner and a signed-in admin
    _, _, owner = await signed_in_admin(runtime, gql)
    admin_id, email, token = await signed_in_admin(runtime, gql, "admin")

    # when the owner disables them
    disabled = assert_no_errors(await gql(DISABLE, {"id": admin_id}, token=owner))["adminDisable"]

    # then their token is dead and they cannot sign in
    assert disabled["admin"]["status"] == "DISABLED"
    assert_denied(await gql(ADMIN_ME, token=token), "UNAUTHENTICATED")
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"

    # when they are enabled again, then they can sign in
    enabled = assert_no_errors(await gql(ENABLE, {"id": admin_id}, token=owner))["adminEnable"]
    assert enabled["admin"]["status"] == "ACTIVE"
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_an_invitation_dies_when_its_admin_is_disabled(gql, runtime, mailbox):
    # given an invitation
    _, _, owner = await signed_in_admin(runtime, gql)
    email = unique_email("revoked")
    invited = (await invite(gql, owner, email))["admin"]
    token = (await mailbox.wait_for(email, "invited")).token("/admin/invitation")

    # when the invited admin is disabled, then enabled again
    assert_no_errors(await gql(DISABLE, {"id": invited["id"]}, token=owner))
    refused = await accept(gql, token)
    enabled = assert_no_errors(await gql(ENABLE, {"id": invited["id"]}, token=owner))["adminEnable"]
    fresh = (await mailbox.wait_for(email, "invited", count=2)).token("/admin/invitation")

    # then the first link is dead, and enabling invites again with a new link
    assert refused["__typename"] == "InvalidTokenError"
    assert enabled["admin"]["status"] == "INVITED"
    assert (await accept(gql, fresh))["__typename"] == "AdminInvitationAccepted"


async def test_the_last_active_owner_can_be_neither_demoted_nor_disabled(settings, clock, mailbox, tmp_path):
    async with own_database(settings, clock, tmp_path) as (runtime, gql):
        # given the only owner, signed in
        owner_id, _, owner = await signed_in_admin(runtime, gql)

        # when they try to demote and to disable themselves
        demoted = assert_no_errors(await gql(ROLE_SET, {"input": {"id": owner_id, "role": "admin"}}, token=owner))
        disabled = assert_no_errors(await gql(DISABLE, {"id": owner_id}, token=owner))

        # then both are LastOwnerError and they are still an active owner
        assert demoted["adminRoleSet"]["__typename"] == "LastOwnerError"
        assert disabled["adminDisable"]["__typename"] == "LastOwnerError"
        me = assert_no_errors(await gql(ADMIN_ME, token=owner))["adminMe"]
        assert me["role"] == "owner" and me["status"] == "ACTIVE"

        # when an invited owner (not yet active) is there, then it does not count
        email = unique_email("second-owner")
        await invite(gql, owner, email, "owner")
        still = assert_no_errors(await gql(DISABLE, {"id": owner_id}, token=owner))["adminDisable"]
        assert still["__typename"] == "LastOwnerError"

        # when the invited owner accepts, then the first owner may step down
        await accept(gql, (await mailbox.wait_for(email, "invited")).token("/admin/invitation"))
        stepped_down = assert_no_errors(await gql(ROLE_SET, {"input": {"id": owner_id, "role": "admin"}}, token=owner))
        assert stepped_down["adminRoleSet"]["__typename"] == "AdminUpdated"


async def test_of_two_concurrent_removals_of_the_last_two_owners_one_wins(settings, clock, tmp_path):
    async with own_database(settings, clock, tmp_path) as (runtime, gql):
        # given exactly two active owners, each signed in
        first_id, _, first = await signed_in_admin(runtime, gql)
        second_id, _, second = await signed_in_admin(runtime, gql)
        for round_ in range(6):
            # when each removes the other at the same time (disable, then demote, in turns)
            if round_ % 2 == 0:
                results = await asyncio.gather(gql(DISABLE, {"id": second_id}, token=first),
                                               gql(DISABLE, {"id": first_id}, token=second))
            else:
                results = await asyncio.gather(gql(ROLE_SET, {"input": {"id": second_id, "role": "viewer"}}, token=first),
                                               gql(ROLE_SET, {"input": {"id": first_id, "role": "viewer"}}, token=second))

            # then exactly one wins, the other gets LastOwnerError, and one active owner is left
            kinds = sorted(next(iter(assert_no_errors(r).values()))["__typename"] for r in results)
            assert kinds == ["AdminUpdated", "LastOwnerError"], (round_, results)
            admins = [a for a in await _admins(runtime) if a.role == "owner" and a.status == "active"]
            assert len(admins) == 1, (round_, admins)

            # (restore two owners, signed in, for the next round)
            survivor = admins[0].id
            loser = second_id if survivor == first_id else first_id
            survivor_token = first if survivor == first_id else second
            assert_no_errors(await gql(ENABLE, {"id": loser}, token=survivor_token))
            assert_no_errors(await gql(ROLE_SET, {"input": {"id": loser, "role": "owner"}}, token=survivor_token))
            loser_email = next(a.email for a in await _admins(runtime) if a.id == loser)
            loser_token = (await sign_in(gql, loser_email))["token"]
            first, second = (survivor_token, loser_token) if survivor == first_id else (loser_token, survivor_token)


async def _admins(runtime):
    from stores import admins

    return await admins.list_all()


async def test_an_admin_recovers_their_password_by_link_and_is_signed_out_everywhere(gql, http, runtime, mailbox):
    # given a signed-in admin
    _, email, token = await signed_in_admin(runtime, gql, "support")

    # when they ask for a reset, and use the emailed link's page to choose a new password
    asked = assert_no_errors(await gql(RESET_REQUEST, {"email": email.upper()}))["adminPasswordResetRequest"]
    link = (await mailbox.wait_for(email, "reset your")).token("/admin/reset-password")
    page = await http.get("/admin/reset-password", params={"token": link})
    done = await http.post("/admin/reset-password", data={**hidden_fields(page.text, "/admin/reset-password"),
                                                           "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})

    # then the old session and password are dead, the new password works, and the link is used up
    assert asked["__typename"] == "AdminPasswordResetRequested"
    assert done.status_code == 200 and "changed" in done.text
    assert_denied(await gql(ADMIN_ME, token=token), "UNAUTHENTICATED")
    assert (await sign_in(gql, email))["__typename"] == "InvalidCredentialsError"
    assert (await sign_in(gql, email, NEW_PASSWORD))["__typename"] == "SessionCreated"
    reused = assert_no_errors(await gql(RESET, {"input": {"token": link, "newPassword": NEW_PASSWORD + "2",
                                                          "confirmPassword": NEW_PASSWORD + "2"}}))
    assert reused["adminPasswordReset"]["__typename"] == "InvalidTokenError"


async def test_a_reset_request_answers_alike_and_mails_only_active_admins(gql, runtime, mailbox):
    # given an active admin, an invited one and an unknown address
    _, active, owner = await signed_in_admin(runtime, gql)
    invited = unique_email("invited-reset")
    await invite(gql, owner, invited)
    unknown = unique_email("nobody")

    # when a reset is asked for each
    bodies = [(await gql.post(RESET_REQUEST, {"email": e})).content for e in (active, invited, unknown)]
    await mailbox.wait_for(active, "reset your")
    await runtime.drain()

    # then the answers are identical and only the active admin gets a link
    assert bodies[0] == bodies[1] == bodies[2]
    assert [m for m in mailbox.to(invited) if "reset" in m.subject.lower()] == []
    assert mailbox.to(unknown) == []


async def test_a_throttled_owner_gets_back_in_with_a_reset_link(settings, clock, mailbox):
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_identifier_failures": 3,
                                          "login_ip_attempts": 1000})
    async with running_gateway(limited, clock) as (app, http):
        runtime, gql = app.state.runtime, GraphQLClient(http)
        # given an owner whose account budget was spent by failed sign-ins from many places
        _, email = await new_admin(runtime)
        for _ in range(4):
            await sign_in(GraphQLClient(gql.http, unique_ip()), email, "a wrong guess at the password")
        throttled = await sign_in(GraphQLClient(gql.http, unique_ip()), email)

        # when the owner resets their password by the emailed link
        assert_no_errors(await gql(RESET_REQUEST, {"email": email}))
        link = (await mailbox.wait_for(email, "reset your")).token("/admin/reset-password")
        reset = assert_no_errors(await gql(RESET, {"input": {"token": link, "newPassword": NEW_PASSWORD,
                                                             "confirmPassword": NEW_PASSWORD}}))

        # then they were locked out before, and sign in with the new password after
        assert throttled["__typename"] == "RateLimitedError"
        assert reset["adminPasswordReset"]["__typename"] == "AdminPasswordResetDone"
        assert (await sign_in(GraphQLClient(gql.http, unique_ip()), email, NEW_PASSWORD))["__typename"] == \
            "SessionCreated"


async def test_the_cli_use_case_still_creates_active_admins(gql, runtime):
    # given an admin made by the CLI's use case
    token = await admin_token(runtime, gql, "viewer")

    # when they ask who they are
    me = assert_no_errors(await gql(ADMIN_ME, token=token))["adminMe"]

    # then they are active with the role's permissions
    assert me["status"] == "ACTIVE" and me["permissions"] == sorted(ROLE_PERMISSIONS["viewer"])
