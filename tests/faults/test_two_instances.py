"""Two gateway instances on one database share their rate limits (the counters live in the database), and an
admin's change to a self-service policy reaches both: at once on its own instance, within 5 s on the other."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.conftest import LOGIN_IP_ATTEMPTS
from tests.faults.live import create_admin
from tests.flows import ADMIN_PASSWORD, ADMIN_SIGN_IN, REGISTER, SIGN_IN
from tests.support import GraphQLClient, assert_no_errors, unique_email, unique_ip


def login_count(metrics_text: str, outcome: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "gateway_logins":
            return sum(s.value for s in family.samples
                       if s.name == "gateway_logins_total" and s.labels == {"kind": "customer", "outcome": outcome})
    return 0.0


async def test_sign_in_limit_per_ip_is_shared_between_instances(gateway_pair):
    # given two instances on one database, 5 sign-in attempts per IP, and one client IP
    first, second = gateway_pair
    assert "reusing nx-27017" in second.log_text()  # B runs on A's database server
    ip = unique_ip()
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http_a, \
            httpx.AsyncClient(base_url=second.url, timeout=30) as http_b:
        instances = [GraphQLClient(http_a, ip), GraphQLClient(http_b, ip)]
        limited_before = login_count((await http_b.get("/metrics")).text, "rate_limited")

        # when the client alternates between the instances, 5 wrong attempts in all
        for attempt in range(LOGIN_IP_ATTEMPTS):
            result = assert_no_errors(await instances[attempt % 2](
                SIGN_IN, {"input": {"identifier": unique_email("shared"), "password": "not the password"}}))
            assert result["sessionCreate"]["__typename"] == "InvalidCredentialsError", (attempt, result)

        # then the 6th attempt overall is throttled, on the instance that saw only 2 of them
        sixth = assert_no_errors(await instances[1](
            SIGN_IN, {"input": {"identifier": unique_email("shared"), "password": "not the password"}}))
        assert sixth["sessionCreate"]["__typename"] == "RateLimitedError", sixth
        assert sixth["sessionCreate"]["retryAfterSeconds"] > 0

        # and so it is on the other instance
        seventh = assert_no_errors(await instances[0](
            SIGN_IN, {"input": {"identifier": unique_email("shared"), "password": "not the password"}}))
        assert seventh["sessionCreate"]["__typename"] == "RateLimitedError", seventh

        # and the throttled attempt shows in that instance's metrics
        assert login_count((await http_b.get("/metrics")).text, "rate_limited") == limited_before + 1


PROPAGATION_SECONDS = 5.0

CREATE_POLICY = """mutation { selfServicePolicyCreate(input: {name: "Propagation"}) {
  __typename ... on SelfServicePolicy { id version } } }"""
CREATE_APPLICATION = """mutation($policy: ID!) { applicationCreate(input: {name: "Propagation", policyId: $policy}) {
  __typename ... on Application { clientId } } }"""
REGISTRATION_OFF = """mutation($id: ID!, $version: Int!) {
  selfServicePolicyUpdate(id: $id, version: $version, input: {registration: {enabled: false}}) {
    __typename ... on SelfServicePolicy { registration { enabled } } } }"""


async def registration_answer(gql: GraphQLClient, client_id: str) -> str:
    result = assert_no_errors(await gql(REGISTER, {"input": {"email": unique_email("propagation"),
                                                             "password": "a long enough passphrase"}},
                                        headers={"x-application-id": client_id}))
    return result["accountRegister"]["__typename"]


async def test_a_policy_change_applies_at_once_here_and_within_5_seconds_on_the_other_instance(gateway_pair):
    # given two instances, an admin, and an application with its own policy that both instances have read
    first, second = gateway_pair
    email = await asyncio.to_thread(create_admin, first.env)
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http_a, \
            httpx.AsyncClient(base_url=second.url, timeout=30) as http_b:
        on_a, on_b = GraphQLClient(http_a), GraphQLClient(http_b)
        admin = assert_no_errors(await on_a(ADMIN_SIGN_IN, {"input": {"email": email, "password": ADMIN_PASSWORD}}))[
            "adminSessionCreate"]["token"]
        policy = assert_no_errors(await on_a(CREATE_POLICY, token=admin))["selfServicePolicyCreate"]
        client_id = assert_no_errors(await on_a(CREATE_APPLICATION, {"policy": policy["id"]}, token=admin))[
            "applicationCreate"]["clientId"]
        assert await registration_answer(on_a, client_id) == "AccountRegisterAccepted"
        assert await registration_answer(on_b, client_id) == "AccountRegisterAccepted"

        # when an admin switches registration off on the first instance
        changed_at = time.monotonic()
        updated = assert_no_errors(await on_a(REGISTRATION_OFF, {"id": policy["id"], "version": policy["version"]},
                                              token=admin))["selfServicePolicyUpdate"]
        assert updated == {"__typename": "SelfServicePolicy", "registration": {"enabled": False}}

        # then the very next registration there is refused
        assert await registration_answer(on_a, client_id) == "FeatureDisabledError"

        # and the other instance refuses too, within 5 seconds of the change, with no restart
        while (answer := await registration_answer(on_b, client_id)) != "FeatureDisabledError":
            assert answer == "AccountRegisterAccepted"
            assert time.monotonic() - changed_at < PROPAGATION_SECONDS, "not seen by the other instance within 5 s"
            await asyncio.sleep(0.1)
        assert time.monotonic() - changed_at <= PROPAGATION_SECONDS
