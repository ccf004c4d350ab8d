"""Production mode hides the schema: no introspection, no GraphiQL, no "Did you mean" hints, no open /metrics."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from gateway.app import create_app
from schema.root import build_schema
from tests.conftest import running_gateway
from tests.security.support import log_text, messages, production_settings, refused_before_execution

INTROSPECTION = "{ __schema { queryType { name } types { name } } }"
TYPE_LOOKUP = '{ __type(name: "Customer") { fields { name } } }'
MISSPELLED = "{ mee { id } }"


@pytest.fixture(scope="module")
async def production(settings, clock):
    async with running_gateway(production_settings(settings), clock) as (_, http):
        yield http


async def test_introspection_is_refused(production):
    for document in (INTROSPECTION, TYPE_LOOKUP):
        errors = refused_before_execution(await production.post("/graphql", json={"query": document}))
        assert "introspection has been disabled" in messages(errors)


async def test_typename_still_works(production):
    response = await production.post("/graphql", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_graphiql_is_not_served(production):
    response = await production.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


async def test_no_field_suggestions(production):
    errors = refused_before_execution(await production.post("/graphql", json={"query": MISSPELLED}))
    assert "Cannot query field 'mee'" in messages(errors)
    assert "Did you mean" not in messages(errors)


# Each kind of name a misspelling can be matched against: (document, variables).
MISSPELLINGS = {
    "field": ("{ mee { id } }", None),
    "argument": ('{ customer(idd: "1") { id } }', None),
    "directive argument": ("{ __typename @skip(iff: true) }", None),
    "variable type": ("query Q($x: Strin) { __typename }", None),
    "fragment on unknown type": ("{ ...F } fragment F on Quer { __typename }", None),
    "inline fragment on unknown type": ("{ ... on Quer { __typename } }", None),
    "input field (literal)": ('mutation { sessionCreate(input: {identifer: "a", password: "b"}) { __typename } }',
                              None),
    "input field (variable)": ("mutation M($i: SessionCreateInput!) { sessionCreate(input: $i) { __typename } }",
                               {"i": {"identifier": "a", "identifer": "a", "password": "b"}}),
    "enum value": ("query Q($s: CustomerStatus = ACTIV) { __typename }", None),
    "directive": ("{ __typename @skp(if: true) }", None),
}


@pytest.mark.parametrize("kind", MISSPELLINGS)
async def test_no_suggestion_of_any_kind(production, http, kind, caplog):
    # given a misspelling that development answers with a suggestion (the directive kind has none there either)
    document, variables = MISSPELLINGS[kind]
    development = (await http.post("/graphql", json={"query": document, "variables": variables})).json()["errors"]
    assert ("Did you mean" in messages(development)) is (kind != "directive"), messages(development)
    caplog.set_level(logging.WARNING, logger="gateway.errors")

    # when production gets it
    response = await production.post("/graphql", json={"query": document, "variables": variables})

    # then it is refused without naming anything the client did not write
    errors = refused_before_execution(response)
    assert "Did you mean" not in response.text and "Did you mean" not in messages(errors)

    # and graphql-core left the suggestion out itself: the backstop that strips one had nothing to do
    assert "suggestion reached the error policy" not in log_text(caplog.records)


def test_execution_gets_hide_suggestions_from_strawberrys_hook():
    # Strawberry passes `_get_custom_context_kwargs(...)` to graphql-core's execute (a private hook)
    assert build_schema(production=True)._get_custom_context_kwargs(None)["hide_suggestions"] is True
    assert build_schema(production=False)._get_custom_context_kwargs(None)["hide_suggestions"] is False


async def test_metrics_are_off_without_a_token(production):
    # when a scraper without credentials asks (production, no GATEWAY_METRICS_TOKEN)
    response = await production.get("/metrics")

    # then there is nothing there
    assert response.status_code == 404
    assert "gateway_" not in response.text


def test_start_up_says_how_to_turn_metrics_on(settings, caplog):
    # when a production gateway without GATEWAY_METRICS_TOKEN is built
    with caplog.at_level(logging.WARNING):
        create_app(production_settings(settings))

    # then the log says /metrics is off and how to enable it
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("/metrics" in w and "GATEWAY_METRICS_TOKEN" in w for w in warnings), warnings


async def test_metrics_need_their_token_in_production(settings, clock):
    # given a production gateway with a metrics token
    guarded = production_settings(settings, metrics_token=SecretStr("scrape-secret-456"))
    async with running_gateway(guarded, clock) as (_, http):
        # then scrapes without it, or with another, are refused, and with it they work
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": "Bearer nope"})).status_code == 401
        scraped = await http.get("/metrics", headers={"authorization": "Bearer scrape-secret-456"})
        assert scraped.status_code == 200 and "gateway_http_responses_total" in scraped.text


async def test_development_keeps_them(http):
    # the same requests in development, so the production checks above are meaningful
    assert (await http.post("/graphql", json={"query": INTROSPECTION})).json()["data"]["__schema"]["types"]
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert "Did you mean" in messages((await http.post("/graphql", json={"query": MISSPELLED})).json()["errors"])
