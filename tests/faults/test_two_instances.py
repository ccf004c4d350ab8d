"""Two gateway instances on one database share their rate limits (the counters live in the database)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.conftest import LOGIN_IP_ATTEMPTS
from tests.flows import SIGN_IN
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
