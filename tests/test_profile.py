"""Personal information: me.profile, and profileUpdate (only the fields given, validated, all or nothing)."""

from __future__ import annotations

from datetime import timedelta

from stores import config
from tests.flows import active_customer, admin_token, new_application, sign_in
from tests.test_round_trips import counted  # noqa: F401 (fixture)
from tests.support import assert_denied, assert_no_errors, unique_email

PROFILE_FIELDS = """
givenName middleName familyName email phoneNumber birthdate locale
address { streetAddress locality region postalCode country }
"""

ME_PROFILE = "query { me { givenName familyName profile { %s } } }" % PROFILE_FIELDS

PROFILE_UPDATE = """
mutation Update($input: ProfileUpdateInput!) {
  profileUpdate(input: $input) {
    __typename
    ... on ProfileUpdated { profile { %s } }
    ... on Error { code message field }
    ... on InvalidInputError { fields { field code message } }
  }
}
""" % PROFILE_FIELDS

CUSTOMER_PROFILE = """
query Customer($id: ID!) { customer(id: $id) { id profile { givenName phoneNumber address { country } } } }
"""


async def update(gql, token: str, **fields) -> dict:
    return assert_no_errors(await gql(PROFILE_UPDATE, {"input": fields}, token=token))["profileUpdate"]


def problems(result: dict) -> dict[str, str]:
    assert result["__typename"] == "InvalidInputError", result
    return {problem["field"]: problem["code"] for problem in result["fields"]}


async def test_only_the_given_fields_change_normalised_and_every_session_shows_them_at_once(gql, mailbox):
    # given a customer registered as Grace Hopper, signed in twice (two sessions)
    email = unique_email("profile")
    token = await active_customer(gql, mailbox, email, givenName="Grace", familyName="Hopper")
    other_session = (await sign_in(gql, email))["token"]

    # when they give a middle name, a phone number, an address, a birthdate and a locale
    result = await update(gql, token, middleName=" Brewster ", phoneNumber="044 668 18 00",
                          address={"streetAddress": "Bahnhofstrasse 1\n2nd floor", "locality": "Zürich",
                                   "postalCode": "8001", "country": "ch"},
                          birthdate="1906-12-09", locale="fr-ch")

    # then each is stored in its canonical form (E.164 read in the address's country, upper-case country,
    # BCP 47 case), the name they did not mention stays, and both sessions show it on the next request
    expected = {"givenName": "Grace", "middleName": "Brewster", "familyName": "Hopper", "email": email,
                "phoneNumber": "+41446681800", "birthdate": "1906-12-09", "locale": "fr-CH",
                "address": {"streetAddress": "Bahnhofstrasse 1\n2nd floor", "locality": "Zürich", "region": None,
                            "postalCode": "8001", "country": "CH"}}
    assert result == {"__typename": "ProfileUpdated", "profile": expected}
    for session in (token, other_session):
        me = assert_no_errors(await gql(ME_PROFILE, token=session))["me"]
        assert me["profile"] == expected and me["givenName"] == "Grace"


async def test_an_explicit_null_clears_a_field_and_an_address_changes_part_by_part(gql, mailbox):
    # given a customer with a name, a phone number and an address
    token = await active_customer(gql, mailbox, unique_email("clear"), givenName="Ada", familyName="Lovelace")
    await update(gql, token, phoneNumber="+44 20 7946 0958",
                 address={"locality": "London", "postalCode": "SW1A 1AA", "country": "GB"})

    # when they clear the phone number and the family name, and change only the postcode of the address
    result = await update(gql, token, phoneNumber=None, familyName=None, address={"postalCode": "EC1A 1BB"})

    # then those are gone, the rest of the address stays, and the given name (not mentioned) too
    profile = result["profile"]
    assert profile["phoneNumber"] is None and profile["familyName"] is None and profile["givenName"] == "Ada"
    assert profile["address"] == {"streetAddress": None, "locality": "London", "region": None,
                                  "postalCode": "EC1A 1BB", "country": "GB"}
    me = assert_no_errors(await gql("query { me { familyName profile { address { postalCode } } } }", token=token))
    assert me["me"] == {"familyName": None, "profile": {"address": {"postalCode": "EC1A 1BB"}}}

    # and a null address clears all of it
    assert (await update(gql, token, address=None))["profile"]["address"] is None


async def test_every_invalid_field_is_named_and_nothing_is_saved(gql, mailbox, clock):
    # given a customer
    token = await active_customer(gql, mailbox, unique_email("invalid"), givenName="Grace")
    tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()

    # when one request holds a valid change and a bad value for every other field
    result = await update(gql, token, givenName="Ada", familyName="x" * 101, middleName="Bell\u0007",
                          phoneNumber="+1 555 0100", address={"country": "XX", "locality": "L" * 101},
                          birthdate=tomorrow, locale="xx-invalid-tag")

    # then each bad field is named with its reason, and not even the valid change was saved
    assert problems(result) == {"familyName": "TOO_LONG", "middleName": "INVALID", "phoneNumber": "INVALID",
                                "address.country": "INVALID", "address.locality": "TOO_LONG",
                                "birthdate": "IN_FUTURE", "locale": "INVALID"}
    me = assert_no_errors(await gql(ME_PROFILE, token=token))["me"]
    assert me["givenName"] == "Grace" and me["profile"]["givenName"] == "Grace"


async def test_malformed_dates_and_tags_are_invalid_and_the_clock_decides_the_future(gql, mailbox, clock):
    # given a customer, and the day after today by the gateway's clock
    email = unique_email("dates")
    token = await active_customer(gql, mailbox, email)
    tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()

    # when they give dates that are not YYYY-MM-DD calendar dates, then tomorrow, then tomorrow a day later
    malformed = [problems(await update(gql, token, birthdate=value))["birthdate"]
                 for value in ("20000101", "2000-02-30", "1990-W01-1", "yesterday")]
    early = await update(gql, token, birthdate=tomorrow)
    clock.advance(days=1)
    on_the_day = await update(gql, (await sign_in(gql, email))["token"], birthdate=tomorrow)

    # then the malformed ones are invalid, tomorrow is refused until it is today
    assert malformed == ["INVALID"] * 4
    assert problems(early) == {"birthdate": "IN_FUTURE"}
    assert on_the_day["profile"]["birthdate"] == tomorrow


async def test_profile_update_needs_a_signed_in_customer_and_the_area_on(gql, mailbox, runtime):
    # given a customer of an application whose policy turns personal information off, and an admin
    application_id, client_id = await new_application(runtime, name="Locked profile")
    headers = {"x-application-id": client_id}
    token = await active_customer(gql, mailbox, unique_email("area"), headers=headers)
    application = await config.get_application(application_id)
    await config.update_policy(application.policy_id, {"account_management.personal_information": False})
    runtime.forget_applications()
    admin = await admin_token(runtime, gql, "owner")

    # when each of them (and nobody) tries to change a profile
    off = assert_no_errors(await gql(PROFILE_UPDATE, {"input": {"givenName": "X"}}, token=token,
                                     headers=headers))["profileUpdate"]
    anonymous = await gql(PROFILE_UPDATE, {"input": {"givenName": "X"}})
    as_admin = await gql(PROFILE_UPDATE, {"input": {"givenName": "X"}}, token=admin)

    # then the area switch answers FeatureDisabledError, and the others are denied
    assert off["__typename"] == "FeatureDisabledError"
    assert_denied(anonymous, "UNAUTHENTICATED")
    assert_denied(as_admin, "FORBIDDEN")


async def test_an_admin_reads_the_profile_of_the_customer_asked_for(gql, mailbox, runtime):
    # given two customers with different profiles, and an admin who may read customers
    ada = await active_customer(gql, mailbox, unique_email("ada"), givenName="Ada")
    bob = await active_customer(gql, mailbox, unique_email("bob"), givenName="Bob")
    await update(gql, ada, phoneNumber="+41 44 668 18 00", address={"country": "CH"})
    await update(gql, bob, phoneNumber="+1 212 555 0100")
    ada_id = assert_no_errors(await gql("query { me { id } }", token=ada))["me"]["id"]
    admin = await admin_token(runtime, gql, "viewer")

    # when the admin reads Ada, and Bob reads himself
    read = assert_no_errors(await gql(CUSTOMER_PROFILE, {"id": ada_id}, token=admin))["customer"]
    bob_self = assert_no_errors(await gql(ME_PROFILE, token=bob))["me"]["profile"]

    # then the admin sees Ada's data (not their own, nor anyone else's), and Bob only his
    assert read["profile"] == {"givenName": "Ada", "phoneNumber": "+41446681800", "address": {"country": "CH"}}
    assert bob_self["givenName"] == "Bob" and bob_self["phoneNumber"] == "+12125550100"
    assert bob_self["address"] is None


async def test_the_email_is_not_editable_through_profile_update(gql, mailbox):
    # given a customer
    email = unique_email("noemail")
    token = await active_customer(gql, mailbox, email)

    # when they try to send an email with their profile update
    response = await gql(PROFILE_UPDATE, {"input": {"email": unique_email("other")}}, token=token)

    # then the input type has no such field, and the email stays
    assert response["errors"] and "email" in response["errors"][0]["message"]
    assert assert_no_errors(await gql(ME_PROFILE, token=token))["me"]["profile"]["email"] == email


async def test_me_profile_is_one_round_trip_and_attributes_add_one_read(counted, mailbox):
    # given a signed-in customer who has set a profile (on a gateway that counts database commands)
    app, gql, counter = counted
    token = await active_customer(gql, mailbox, unique_email("trip"), givenName="Grace")
    await update(gql, token, phoneNumber="+41 44 668 18 00", address={"country": "CH"}, locale="de-CH")
    await app.state.runtime.drain()

    # when they read their profile, then their profile and custom attributes
    counter.names.clear()
    me = assert_no_errors(await gql(ME_PROFILE, token=token))["me"]
    profile_only = list(counter.names)
    counter.names.clear()
    assert_no_errors(await gql("query { me { profile { givenName } attributes { key value } } }", token=token))

    # then the profile comes with the session (one find), and the attribute definitions cost one more
    assert me["profile"]["phoneNumber"] == "+41446681800" and me["profile"]["locale"] == "de-CH"
    assert profile_only == ["find"]
    assert counter.names == ["find", "find"]


async def test_a_second_customer_reaches_nothing_of_the_first(gql, mailbox):
    # given two customers, the first with a phone number
    ada = await active_customer(gql, mailbox, unique_email("idor-ada"), givenName="Ada")
    bob = await active_customer(gql, mailbox, unique_email("idor-bob"), givenName="Bob")
    await update(gql, ada, phoneNumber="+41 44 668 18 00")
    ada_id = assert_no_errors(await gql("query { me { id } }", token=ada))["me"]["id"]

    # when the second reads the first by id, and changes "a" profile (the input names no account)
    read = await gql(CUSTOMER_PROFILE, {"id": ada_id}, token=bob)
    await update(gql, bob, phoneNumber="+1 212 555 0100", givenName="Robert")

    # then reading is refused (an admin field), and only the second's own profile changed
    assert_denied(read, "FORBIDDEN")
    ada_profile = assert_no_errors(await gql(ME_PROFILE, token=ada))["me"]["profile"]
    assert ada_profile["givenName"] == "Ada" and ada_profile["phoneNumber"] == "+41446681800"
