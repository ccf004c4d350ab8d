"""Production mode hides the schema: no introspection, no GraphiQL, no "Did you mean" hints."""

from __future__ import annotations

import pytest

from tests.conftest import running_gateway
from tests.security.support import messages, production_settings, refused_before_execution

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


async def test_development_keeps_them(http):
    # the same requests in development, so the production checks above are meaningful
    assert (await http.post("/graphql", json={"query": INTROSPECTION})).json()["data"]["__schema"]["types"]
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert "Did you mean" in messages((await http.post("/graphql", json={"query": MISSPELLED})).json()["errors"])
