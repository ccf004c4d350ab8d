"""Validating a document costs time linear in its size, and a refused document says a bounded amount.

The event loop is shared by every request, so a document that takes seconds to validate stalls
the whole gateway: /healthz must keep answering within 100 ms while such documents arrive.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from unittest import mock

import strawberry.schema.schema as strawberry_schema
from graphql import parse, specified_rules

from schema.root import build_schema
from tests.conftest import running_gateway
from tests.security.support import messages, refused_before_execution
from tests.support import GraphQLClient, assert_denied, assert_no_errors

HEALTH_BOUND_SECONDS = 0.1
TOO_COMPLEX = "Validation aborted: the document is too complex to check"


def doubling(levels: int, leaf: str = "__typename", field: str = "", tag: str = "") -> str:
    """``query { ...F0 } fragment F0 on Query { ...F1 ...F1 } ... fragment Fn on Query { leaf }``.

    With ``field``, each level also nests one field (``field { ...F1 ...F1 }``), so depth grows too.
    ``tag`` makes the text unique, so that no cache has seen it.
    """
    def body(inner: str) -> str:
        return f"{field} {{ {inner} }}" if field else inner

    parts = [f"query Q{tag} {{ ...F0 }}"]
    parts += [f"fragment F{i} on Query {{ {body(f'...F{i + 1} ...F{i + 1}')} }}" for i in range(levels)]
    parts.append(f"fragment F{levels} on Query {{ {leaf} }}")
    return " ".join(parts)


def same_name_fields(count: int, tag: str = "") -> str:
    """``{ me { id } me { id } ... }``: every pair is compared when fields are merged."""
    return f"query Q{tag} {{ " + "me { id } " * count + "}"


async def probe_health_while(http, documents: list[str]) -> tuple[list[float], list]:
    """Post the documents one after another while /healthz is probed; the probes' latencies and the answers."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe():
        # Probe after probe; each first hands the loop to the documents, so a stall lands in its latency.
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0)
            response = await http.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200

    async def post_all():
        answers = []
        try:
            for document in documents:
                await asyncio.sleep(0)  # in-process requests may never wait for I/O: let the prober in between
                answers.append(await http.post("/graphql", json={"query": document}))
        finally:
            done.set()
        return answers

    # A full collection of this process's heap (the whole test session's) pauses the loop for about
    # 100 ms whatever the requests are, so the garbage collector waits until the measurement is over.
    gc.collect()
    gc.disable()
    try:
        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.01)  # the prober is running before the first document arrives
        answers = await post_all()
        await prober
    finally:
        gc.enable()
    return latencies, answers


async def test_healthz_answers_within_100_ms_while_exponential_documents_arrive(http):
    for levels in (20, 25):
        # given documents that doubled their validation work per level, each new to every cache
        tag = uuid.uuid4().hex[:8]
        documents = [doubling(levels, tag=f"{tag}x{i}") for i in range(3)]
        documents += [doubling(levels, field="a", tag=f"{tag}d{i}") for i in range(3)]
        assert max(len(d) for d in documents) < 1500

        # when they arrive while /healthz is probed
        latencies, answers = await probe_health_while(http, documents)

        # then every probe was answered in time, and every document got its answer
        assert len(latencies) >= len(documents) and max(latencies) < HEALTH_BOUND_SECONDS, (
            levels, sorted(latencies)[-3:])
        assert [a.status_code for a in answers] == [200] * len(documents)
        assert all(a.json()["data"] == {"__typename": "Query"} for a in answers[:3])
        assert all("exceeds maximum operation depth of 12" in messages(a.json()["errors"]) for a in answers[3:])


async def test_aliases_multiplied_by_fragments_are_counted_without_walking_each_path(gql):
    # given 2^30 aliases behind 30 levels of doubled fragment spreads, in under 1500 characters
    # (a counter that walks every fragment path, as before, takes hours over this)
    document = doubling(30, leaf="a: __typename")
    assert len(document) < 1500

    # when
    errors = refused_before_execution(await gql.post(document))

    # then it is refused by the alias limit, with the exact count
    assert messages(errors) == f"{2 ** 30} aliases found. Allowed: 15"


async def test_a_spread_of_an_unknown_fragment_gets_graphqls_own_error(gql):
    # when
    errors = refused_before_execution(await gql.post("query { me { ...Nope } }"))

    # then the depth and alias checks pass over it, and validation names it
    assert messages(errors) == "Unknown fragment 'Nope'."


async def test_many_fields_under_one_response_name_are_refused_as_too_complex(gql):
    # given 400 copies of one selection: merging them compares every pair (80 000 comparisons)
    document = same_name_fields(400)

    # when
    errors = refused_before_execution(await gql.post(document))

    # then
    assert messages(errors).startswith(TOO_COMPLEX)

    # and a handful of copies, as fragments produce them, passes validation (and is denied: no one signed in)
    assert_denied(await gql(same_name_fields(20)), "UNAUTHENTICATED")


async def test_directive_overloading_is_refused_with_one_error(gql):
    # given about a thousand unknown directives on one field, within the token limit
    document = "{ __typename " + "@aa" * 995 + " }"

    # when
    errors = refused_before_execution(await gql.post(document))

    # then one error says why, instead of one per directive
    assert [e["message"] for e in errors] == ["995 directives found. Allowed: 50"]


async def test_errors_reported_per_document_are_capped(gql):
    # given 40 unknown directives, under the directive limit
    document = "{ __typename " + "@aa" * 40 + " }"

    # when
    errors = refused_before_execution(await gql.post(document))

    # then ten errors are reported, and one more says the limit was reached
    assert len(errors) == 11
    assert errors[-1]["message"] == "Too many validation errors, error limit reached. Validation aborted."


async def test_the_directive_limit_follows_the_setting(settings, clock):
    # given GATEWAY_GRAPHQL_MAX_DIRECTIVES=2
    async with running_gateway(settings.model_copy(update={"graphql_max_directives": 2}), clock) as (_, http):
        gql = GraphQLClient(http)

        # when / then: two directives pass; three, anywhere in the document, are refused
        assert assert_no_errors(await gql("{ __typename @include(if: true) @skip(if: false) }")) == {
            "__typename": "Query"}
        errors = refused_before_execution(await gql.post(
            "query Q @aa { ...F @skip(if: false) } fragment F on Query { __typename @include(if: true) }"))
        assert "3 directives found. Allowed: 2" in messages(errors)


def test_validation_keeps_the_rules_strawberry_adds():
    from schema.validation import STRAWBERRY_RULES

    # given the rules Strawberry's own validation adds to graphql-core's (MaybeNull, OneOf, ...)
    seen = {}

    def capture(schema, document, rules, *args, **kwargs):
        seen["rules"] = tuple(rules)
        return []

    with mock.patch.object(strawberry_schema, "validate", capture):
        strawberry_schema.validate_document(build_schema()._schema, parse("{ __typename }"), ())

    # then the gateway's validation, which replaces Strawberry's, runs them too
    assert seen["rules"] and set(seen["rules"]) <= set(STRAWBERRY_RULES) | set(specified_rules)


async def test_a_repeated_document_is_validated_once(gql):
    import schema.validation

    # given a document no one has sent yet
    document = f"query Once{uuid.uuid4().hex[:8]} {{ __typename }}"

    # when it is sent three times
    with mock.patch.object(schema.validation, "validate", wraps=schema.validation.validate) as validate:
        for _ in range(3):
            assert assert_no_errors(await gql(document)) == {"__typename": "Query"}

    # then graphql-core's rules ran once: the result is cached per parsed document
    assert validate.call_count == 1


async def test_a_long_document_is_not_kept_in_the_caches(gql):
    import schema.validation
    from strawberry.extensions.parser_cache import _get_parse_cache

    # given a valid document of about 25 KB (a comment): over the caching bound, under the length limit
    document = f"query Long{uuid.uuid4().hex[:8]} {{ __typename }}\n# " + "x" * 25_000
    parses = _get_parse_cache(512).cache_info()

    # when it is sent twice
    with mock.patch.object(schema.validation, "validate", wraps=schema.validation.validate) as validate:
        for _ in range(2):
            assert assert_no_errors(await gql(document)) == {"__typename": "Query"}

    # then neither the parser's nor the validator's cache took it: it was parsed and validated each time
    after = _get_parse_cache(512).cache_info()
    assert (after.hits, after.misses) == (parses.hits, parses.misses)
    assert validate.call_count == 2
