"""Sign-in outcomes are counted where they happen (around the sign-in resolvers), including the second-factor step."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from stores import customers
from tests.flows import PASSWORD, active_customer, add_totp_factor
from tests.support import assert_no_errors, unique_email

SIGN_IN = """
mutation SignIn($input: SessionCreateInput!) { sessionCreate(input: $input) { __typename } }
"""


def logins(text: str, outcome: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_logins_total" and sample.labels == {"kind": "customer", "outcome": outcome}:
                return sample.value
    return 0.0


async def test_a_password_step_that_asks_for_a_second_factor_is_counted_as_such(http, gql, mailbox, runtime):
    # given an active customer with a confirmed TOTP factor
    email = unique_email("mfa-metric")
    await active_customer(gql, mailbox, email)
    customer = await customers.get_by_normalized_email("default", email)
    await add_totp_factor(customer.id, runtime.clock.now())
    before = (await http.get("/metrics")).text

    # when they sign in with the right password
    result = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": PASSWORD}}))
    after = (await http.get("/metrics")).text

    # then the answer asks for the second factor, and the metrics count exactly that outcome
    assert result["sessionCreate"]["__typename"] == "MfaRequired"
    assert logins(after, "mfa_required") - logins(before, "mfa_required") == 1
    assert logins(after, "other") == logins(before, "other")
