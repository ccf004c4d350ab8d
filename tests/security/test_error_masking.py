"""Unexpected exceptions are masked for the client and logged, with one error id joining the two."""

from __future__ import annotations

import logging

from stores import customers
from tests.flows import SIGN_IN
from tests.security.support import log_text

SECRET_DETAIL = "connection to mongodb://internal-db-7:27017 lost"


async def test_an_unexpected_exception_is_masked_and_logged_with_its_id(gql, monkeypatch, caplog):
    # given a database that fails in a way nobody planned for
    async def broken(*args, **kwargs):
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(customers, "get_by_identifier", broken)
    caplog.set_level(logging.INFO)

    # when
    response = await gql.post(SIGN_IN, {"input": {"identifier": "someone@example.com", "password": "pw"}})

    # then the client sees a masked top-level error with an id, and no detail
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Unexpected error."
    assert error["path"] == ["sessionCreate"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    error_id = error["extensions"]["errorId"]
    assert len(error_id) >= 8
    for leak in (SECRET_DETAIL, "RuntimeError", "Traceback", "stores/", ".py"):
        assert leak not in response.text

    # and the log holds the stack trace under the same id
    with_id = [r for r in caplog.records if error_id in r.getMessage()]
    assert with_id, log_text(caplog.records)
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in with_id)
    assert "Traceback" in log_text(with_id) and SECRET_DETAIL in log_text(with_id)


async def test_an_unknown_application_is_a_clean_400(http):
    response = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"x-application-id": "nope"})
    assert response.status_code == 400
    assert "Traceback" not in response.text
