"""HTTP-level refusals on /graphql, and the security headers on every response.

CSRF: the gateway authenticates with bearer tokens only (``Authorization: Bearer ...``), never with a
cookie, so a cross-site page cannot make a browser send credentials on its own. Were cookie
authentication ever added, such requests would also need a custom header or a matching Origin.
Independently of that, POSTs whose content type a browser may send cross-site without a CORS
preflight (text/plain, application/x-www-form-urlencoded, multipart/form-data) are refused before
any GraphQL work, as are batched (JSON array) bodies.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import running_gateway
from tests.flows import ME, SIGN_OUT, active_customer
from tests.security.support import production_settings
from tests.support import assert_no_errors, unique_email

PAGE_PATHS = ["/activate?token=not-a-token", "/reset-password?token=not-a-token"]


def assert_bad_request(response, statuses=(400,)) -> str:
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST", body
    assert "data" not in body
    return body["errors"][0]["message"]


async def test_a_batched_array_post_is_refused(gql, mailbox):
    # given a signed-in customer
    token = await active_customer(gql, mailbox, unique_email("batch"))
    batch = json.dumps([{"query": SIGN_OUT}, {"query": "{ __typename }"}])

    # when two operations arrive as one JSON array (with leading whitespace, to be sure)
    response = await gql.http.post("/graphql", content="  \n" + batch, headers={
        "content-type": "application/json", "authorization": f"Bearer {token}", "x-forwarded-for": gql.ip})

    # then they are refused, and the sign-out in the batch did not run
    assert "Batched operations" in assert_bad_request(response)
    assert assert_no_errors(await gql(ME, token=token))["me"]["email"]


@pytest.mark.parametrize("content_type,body", [
    ("text/plain", json.dumps({"query": SIGN_OUT})),
    ("text/plain;charset=UTF-8", json.dumps({"query": SIGN_OUT})),
    ("application/x-www-form-urlencoded", "query=mutation%20%7B%20sessionEnd%20%7B%20ended%20%7D%20%7D"),
    ("multipart/form-data; boundary=X", '--X\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
                                        + json.dumps({"query": SIGN_OUT}) + "\r\n--X--\r\n"),
    ("application/json-seq", json.dumps({"query": SIGN_OUT})),
    (None, json.dumps({"query": SIGN_OUT})),
])
async def test_posts_a_browser_could_send_cross_site_are_refused(gql, mailbox, content_type, body):
    # given a signed-in customer
    token = await active_customer(gql, mailbox, unique_email("csrf"))
    headers = {"authorization": f"Bearer {token}", "x-forwarded-for": gql.ip}
    if content_type:
        headers["content-type"] = content_type

    # when a sign-out arrives in a content type other than application/json
    response = await gql.http.post("/graphql", content=body.encode(), headers=headers)

    # then it is refused before execution: the session still works
    assert_bad_request(response, statuses=(400, 415))
    assert assert_no_errors(await gql(ME, token=token))["me"]["email"]


async def test_json_with_a_charset_is_accepted(gql):
    response = await gql.http.post("/graphql", content=json.dumps({"query": "{ __typename }"}),
                                   headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


async def test_a_mutation_over_get_is_refused(gql, mailbox):
    # given a signed-in customer
    token = await active_customer(gql, mailbox, unique_email("get"))

    # when a sign-out arrives as a GET (a link or an <img> could send it)
    response = await gql.http.get("/graphql", params={"query": SIGN_OUT},
                                  headers={"authorization": f"Bearer {token}", "x-forwarded-for": gql.ip})

    # then it is refused and did not run
    assert response.status_code in (400, 405), response.text
    assert "mutations are not allowed when using GET" in response.text
    assert assert_no_errors(await gql(ME, token=token))["me"]["email"]


async def test_queries_over_get_still_work(http):
    response = await http.get("/graphql", params={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


def assert_common_headers(response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["referrer-policy"] in ("no-referrer", "strict-origin-when-cross-origin", "same-origin")
    assert "frame-ancestors 'none'" in headers["content-security-policy"], response.url
    assert headers["x-frame-options"] == "DENY"


async def all_kinds_of_response(http) -> list:
    return [
        await http.post("/graphql", json={"query": "{ __typename }"}),
        await http.post("/graphql", json={"query": "{ nope }"}),
        await http.post("/graphql", content="x", headers={"content-type": "text/plain"}),
        await http.get("/graphql", headers={"accept": "text/html"}),
        *[await http.get(path) for path in PAGE_PATHS],
        await http.get("/assets/reset-password.js"),
        await http.get("/healthz"),
        await http.get("/readyz"),
        await http.get("/no-such-page"),
    ]


async def test_security_headers_on_every_response_and_no_hsts_in_development(http):
    for response in await all_kinds_of_response(http):
        assert_common_headers(response)
        assert "strict-transport-security" not in response.headers


async def test_pages_get_a_restrictive_content_security_policy(http):
    for path in PAGE_PATHS:
        response = await http.get(path)
        assert response.headers["content-type"].startswith("text/html")
        policy = {d.split()[0]: d.split()[1:] for d in response.headers["content-security-policy"].split("; ")}
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"]
        assert policy["base-uri"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]


async def test_hsts_in_production(settings, clock):
    async with running_gateway(production_settings(settings), clock) as (_, http):
        for response in await all_kinds_of_response(http):
            assert_common_headers(response)
            hsts = response.headers["strict-transport-security"]
            assert int(hsts.split("max-age=")[1].split(";")[0]) >= 31536000
