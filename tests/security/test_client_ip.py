"""The client IP behind trusted proxies: every X-Forwarded-For line, walked from the right.

The test client's TCP peer is 127.0.0.1, a trusted proxy in the test settings. What the gateway
took as the client IP is visible to the customer as their session's ``ipAddress``, and to an
attacker as whose per-IP rate limit a request counts against.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import running_gateway
from tests.flows import ME, PASSWORD, SIGN_IN, active_customer
from tests.security.support import at_start_of_window
from tests.support import GraphQLClient, assert_no_errors, unique_email, unique_ip

HAPROXY = "198.51.100.7"  # the client address a proxy in front of the gateway appended


def forwarded(*lines: str) -> list[tuple[str, str]]:
    return [("x-forwarded-for", line) for line in lines] + [("content-type", "application/json")]


async def signed_in_from(gql: GraphQLClient, email: str, headers: list[tuple[str, str]]) -> str:
    """Sign in with these headers; the IP address the new session recorded."""
    response = await gql.http.post("/graphql", json={"query": SIGN_IN, "variables": {
        "input": {"identifier": email, "password": PASSWORD}}}, headers=headers)
    token = assert_no_errors(response.json())["sessionCreate"]["token"]
    sessions = assert_no_errors(await gql(ME, token=token))["me"]["sessions"]
    return next(s["ipAddress"] for s in sessions if s["current"])


@pytest.fixture(scope="module")
async def behind_proxies(settings, clock):
    """A gateway that trusts the loopback range and a 10.0.0.0/8 proxy tier."""
    async with running_gateway(settings.model_copy(update={"trusted_proxies": "127.0.0.0/8, 10.0.0.0/8"}),
                               clock) as (_, http):
        yield GraphQLClient(http)


@pytest.fixture(scope="module")
async def customer(behind_proxies, mailbox):
    email = unique_email("client-ip")
    await active_customer(behind_proxies, mailbox, email)
    return email


async def test_a_second_header_line_from_the_proxy_is_believed_not_the_first(behind_proxies, customer):
    # when the client writes one X-Forwarded-For line and the proxy adds its own (HAProxy's option forwardfor)
    recorded = await signed_in_from(behind_proxies, customer, forwarded("203.0.113.99", HAPROXY))

    # then the session is from the address the proxy saw
    assert recorded == HAPROXY


async def test_proxies_in_a_trusted_range_are_walked_past(behind_proxies, customer):
    # when the client's address passed through two proxies of the 10.0.0.0/8 tier
    recorded = await signed_in_from(behind_proxies, customer, forwarded(f"203.0.113.5, {HAPROXY}, 10.1.2.3, 10.9.8.7"))

    # then
    assert recorded == HAPROXY


async def test_a_hop_that_is_not_an_address_ends_the_walk(behind_proxies, customer):
    # when a trusted proxy passed on a hop that does not parse
    recorded = await signed_in_from(behind_proxies, customer, forwarded(f"{HAPROXY}, unknown, 10.1.2.3"))

    # then what lies beyond it is not believed: the proxy that passed it on is the client
    assert recorded == "10.1.2.3"


async def test_an_ipv4_mapped_address_is_the_ipv4_address(behind_proxies, customer):
    recorded = await signed_in_from(behind_proxies, customer, forwarded(f"::ffff:{HAPROXY}"))
    assert recorded == HAPROXY


async def test_rotating_the_client_written_line_does_not_dodge_the_per_ip_limit(settings, clock, mailbox):
    # given 3 sign-ins per client IP, and a customer
    at_start_of_window(clock, settings.login_ip_window_seconds)
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_ip_attempts": 3})
    async with running_gateway(limited, clock) as (_, http):
        email = unique_email("rotate")
        await active_customer(GraphQLClient(http), mailbox, email)
        client = unique_ip()

        # when one client sends 4 sign-ins, each with a fresh address in its own header line
        kinds = []
        for _ in range(4):
            response = await http.post("/graphql", json={"query": SIGN_IN, "variables": {
                "input": {"identifier": email, "password": "wrong password"}}},
                headers=forwarded(f"192.0.2.{uuid.uuid4().int % 250}", client))
            kinds.append(assert_no_errors(response.json())["sessionCreate"]["__typename"])

        # then the fourth is throttled: they all counted against the address the proxy saw
        assert kinds == ["InvalidCredentialsError"] * 3 + ["RateLimitedError"]


# -- the walk, as rules ---------------------------------------------------------------------------

@pytest.mark.parametrize(("peer", "lines", "expected"), [
    ("203.0.113.1", ["198.51.100.7"], "203.0.113.1"),  # an untrusted peer's header is ignored
    ("127.0.0.1", [], "127.0.0.1"),  # no header: the proxy itself
    ("127.0.0.1", ["198.51.100.7, 10.0.0.1", "10.0.0.2"], "198.51.100.7"),
    ("127.0.0.1", ["10.0.0.1, 10.0.0.2"], "10.0.0.1"),  # every hop trusted: the left-most
    ("127.0.0.1", ["198.51.100.7, garbage"], "127.0.0.1"),  # the right-most hop is bad: the peer
    ("127.0.0.1", ["198.51.100.7:4711"], "127.0.0.1"),  # a port is not an address
    ("127.0.0.1", [" , 198.51.100.7 ,"], "198.51.100.7"),  # empty items are skipped
    ("::ffff:127.0.0.1", ["2001:DB8:0:0::1"], "2001:db8::1"),  # mapped peer; compressed IPv6
    ("fd00::5", ["198.51.100.7"], "198.51.100.7"),
    (None, ["198.51.100.7"], None),
])
def test_the_walk(peer, lines, expected):
    from gateway.client_ip import TrustedProxies, resolve_client_ip

    trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, fd00::/8")
    assert resolve_client_ip(peer, lines, trusted) == expected
