"""Cost limits on GraphQL documents: depth, aliases (also via fragments), tokens.

Each is a validation (or parse) error: a top-level error before anything executes, never a 500
and never a RecursionError.
"""

from __future__ import annotations

import logging
import time

from tests.conftest import running_gateway
from tests.flows import SIGN_IN, active_customer
from tests.security.support import at_start_of_window, holds_fragment_of, log_text, messages, refused_before_execution
from tests.support import GraphQLClient, assert_no_errors, unique_email

CIRCULAR_FRAGMENTS = """
query { me { ...A } }
fragment A on Customer { ...B }
fragment B on Customer { ...A }
"""

SELF_SPREAD = "query { me { ...A } } fragment A on Customer { id ...A }"


def nested(depth: int) -> str:
    return "query {" + " a {" * depth + " id" + " }" * depth + " }"


def aliases(count: int, field: str = "__typename") -> str:
    return " ".join(f"a{i}: {field}" for i in range(count))


async def test_a_50_deep_query_gets_a_depth_error(gql):
    # when
    response = await gql.post(nested(50))

    # then
    errors = refused_before_execution(response)
    assert "exceeds maximum operation depth of 12" in messages(errors)


async def test_very_deep_nesting_is_refused_without_recursion_error(gql, caplog):
    # given documents far deeper than Python's recursion limit would survive
    for depth in (300, 1000, 5000):
        # when
        response = await gql.post(nested(depth))

        # then
        errors = refused_before_execution(response)
        assert "RecursionError" not in response.text and "recursion" not in messages(errors).lower()
    assert "RecursionError" not in caplog.text


async def test_circular_fragments_get_a_validation_error(gql):
    for document in (CIRCULAR_FRAGMENTS, SELF_SPREAD):
        # when
        response = await gql.post(document)

        # then
        errors = refused_before_execution(response)
        assert "Cannot spread fragment 'A' within itself" in messages(errors)


async def test_fifteen_aliases_pass_and_sixteen_are_refused(gql):
    # when at the default limit
    at_limit = assert_no_errors(await gql("query { " + aliases(15) + " }"))

    # then all run
    assert len(at_limit) == 15

    # when one over
    errors = refused_before_execution(await gql.post("query { " + aliases(16) + " }"))

    # then
    assert "16 aliases found. Allowed: 15" in messages(errors)


async def test_aliases_are_counted_through_fragment_spreads(gql):
    # given a fragment of 8 aliases, spread twice (16 in all) and once (8)
    fragment = "fragment F on Query { " + aliases(8) + " }"
    twice = "query { ...F ... on Query { ...F } } " + fragment
    once = "query { ...F } " + fragment

    # when / then
    errors = refused_before_execution(await gql.post(twice))
    assert "16 aliases found. Allowed: 15" in messages(errors)
    assert len(assert_no_errors(await gql(once))) == 8


async def test_the_alias_limit_follows_the_setting(settings, clock):
    # given GATEWAY_GRAPHQL_MAX_ALIASES=3
    async with running_gateway(settings.model_copy(update={"graphql_max_aliases": 3}), clock) as (_, http):
        gql = GraphQLClient(http)

        # when / then
        assert len(assert_no_errors(await gql("query { " + aliases(3) + " }"))) == 3
        errors = refused_before_execution(await gql.post("query { " + aliases(4) + " }"))
        assert "4 aliases found. Allowed: 3" in messages(errors)


async def test_a_5kb_alias_bomb_is_rejected_cheaply_and_not_logged(gql, caplog):
    # given about 5 KB of aliases, well over 2000 tokens
    bomb = "query{" + "".join(f"a{i}:me{{id}}" for i in range(480)) + "}"
    assert 5000 <= len(bomb) <= 6000
    caplog.set_level(logging.DEBUG)

    # when
    started = time.perf_counter()
    response = await gql.post(bomb)
    elapsed = time.perf_counter() - started

    # then the parser gave up at the token limit, before validation or execution
    errors = refused_before_execution(response)
    assert "Document contains more than 2000 tokens" in messages(errors)
    assert elapsed < 2.0

    # and the log holds no piece of the document
    logged = log_text(caplog.records)
    shown = log_text([r for r in caplog.records if not r.name.startswith("pymongo")])
    assert not holds_fragment_of(logged, bomb), shown[:1500]


async def test_twenty_aliased_sign_ins_are_rejected_before_any_attempt(settings, clock, mailbox):
    # given an account whose identifier is locked after 5 failures
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_identifier_failures": 5})
    at_start_of_window(clock)
    async with running_gateway(limited, clock) as (_, http):
        gql = GraphQLClient(http)
        email = unique_email("alias-brute")
        await active_customer(gql, mailbox, email)
        guesses = " ".join(
            f'g{i}: sessionCreate(input: {{identifier: "{email}", password: "guess {i}"}}) {{ __typename }}'
            for i in range(20)
        )

        # when 20 guesses arrive as aliases of one mutation
        errors = refused_before_execution(await gql.post("mutation { " + guesses + " }"))

        # then the document is refused by the alias limit
        assert "20 aliases found. Allowed: 15" in messages(errors)

        # and none of the 20 was attempted: the account still has all 5 failures left
        for _ in range(5):
            failed = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": "wrong"}}))
            assert failed["sessionCreate"]["__typename"] == "InvalidCredentialsError"
        throttled = assert_no_errors(await gql(SIGN_IN, {"input": {"identifier": email, "password": "wrong"}}))
        assert throttled["sessionCreate"]["__typename"] == "RateLimitedError"


async def test_each_aliased_sign_in_counts_against_the_rate_limit(settings, clock, mailbox):
    # given an account locked after 5 failures
    limited = settings.model_copy(update={"rate_limit_scale": 1.0, "login_identifier_failures": 5})
    at_start_of_window(clock)
    async with running_gateway(limited, clock) as (_, http):
        gql = GraphQLClient(http)
        email = unique_email("alias-count")
        await active_customer(gql, mailbox, email)
        guesses = " ".join(
            f'g{i}: sessionCreate(input: {{identifier: "{email}", password: "guess {i}"}}) '
            "{ __typename ... on RateLimitedError { retryAfterSeconds } }"
            for i in range(10)
        )

        # when 10 guesses arrive as aliases (under the alias limit)
        data = assert_no_errors(await gql("mutation { " + guesses + " }"))

        # then each was counted: 5 failures, then throttled
        kinds = [data[f"g{i}"]["__typename"] for i in range(10)]
        assert kinds == ["InvalidCredentialsError"] * 5 + ["RateLimitedError"] * 5
        assert all(data[f"g{i}"]["retryAfterSeconds"] > 0 for i in range(5, 10))

        # and the right password is throttled too, from another IP
        other = GraphQLClient(http)
        result = assert_no_errors(await other(SIGN_IN, {"input": {"identifier": email,
                                                                   "password": "correct horse battery staple"}}))
        assert result["sessionCreate"]["__typename"] == "RateLimitedError"


async def test_a_huge_field_name_is_not_logged_in_full(gql, caplog):
    # given one 5 KB name: a single token, so the token limit lets it through to validation
    name = "x" * 5000
    caplog.set_level(logging.DEBUG)

    # when
    errors = refused_before_execution(await gql.post("query { " + name + " }"))

    # then it is refused, and the log does not hold it whole
    assert "Cannot query field" in messages(errors)
    assert name not in log_text(caplog.records)
