"""A refused request is logged by its kind and place, never with the values the client sent."""

from __future__ import annotations

import logging

from tests.flows import SIGN_IN


async def test_a_wrongly_typed_password_is_not_echoed_into_the_log(gql, caplog):
    secret_number = 918273645546372819
    with caplog.at_level(logging.INFO):
        response = await gql.post(SIGN_IN, {"input": {"identifier": "a@example.com", "password": secret_number}})

    assert response.json()["errors"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "graphql request refused" in logged
    assert str(secret_number) not in logged
