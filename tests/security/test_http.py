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


# -- request bodies ---------------------------------------------------------------------------------

SMALL_LIMIT = 4096


def json_of_size(size: int) -> bytes:
    """A valid GraphQL request of exactly ``size`` bytes (padded with an ignored member)."""
    shell = json.dumps({"query": "{ __typename }", "padding": ""}).encode()
    return shell[:-2] + b"x" * (size - len(shell)) + shell[-2:]


class CountingBody:
    """A request body streamed in chunks, counting what the server pulled."""

    def __init__(self, chunks: int, chunk: bytes = b" " * 65536) -> None:
        self.chunks, self.chunk, self.pulled = chunks, chunk, 0

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.pulled += len(self.chunk)
            yield self.chunk


@pytest.fixture(scope="module")
async def small_limit(settings, clock):
    """A gateway that takes bodies of at most 4 KiB."""
    async with running_gateway(settings.model_copy(update={"max_body_bytes": SMALL_LIMIT}), clock) as (_, http):
        yield http


async def test_a_body_over_one_mebibyte_is_refused_by_default(http):
    # given a valid request padded to the default limit, and one byte more
    at_limit, over = json_of_size(1024 * 1024), json_of_size(1024 * 1024 + 1)

    # when / then
    accepted = await http.post("/graphql", content=at_limit, headers={"content-type": "application/json"})
    assert accepted.json() == {"data": {"__typename": "Query"}}
    refused = await http.post("/graphql", content=over, headers={"content-type": "application/json"})
    assert refused.status_code == 413
    assert "too large" in assert_bad_request(refused, statuses=(413,))


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(small_limit):
    # given a 40 MiB body announced with its Content-Length
    body = CountingBody(chunks=640)

    # when
    response = await small_limit.post("/graphql", content=body, headers={
        "content-type": "application/json", "content-length": str(640 * 65536)})

    # then it is refused without reading any of it
    assert response.status_code == 413 and "too large" in assert_bad_request(response, statuses=(413,))
    assert body.pulled == 0


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(small_limit):
    # given a 40 MiB body sent in chunks, without a Content-Length
    body = CountingBody(chunks=40 * 1024, chunk=b" " * 1024)

    # when
    response = await small_limit.post("/graphql", content=body, headers={"content-type": "application/json"})

    # then it is refused once a little more than the limit has arrived
    assert response.status_code == 413 and "too large" in assert_bad_request(response, statuses=(413,))
    assert SMALL_LIMIT < body.pulled <= SMALL_LIMIT + 1024


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_pages_refuse_large_bodies_too(small_limit, declared):
    # given a form post to a page, over the limit
    form = b"email=someone%40example.com&client_id=&padding=" + b"x" * SMALL_LIMIT
    content = form if declared else CountingBody(chunks=1, chunk=form)

    # when
    response = await small_limit.post("/activate/resend", content=content,
                                      headers={"content-type": "application/x-www-form-urlencoded"})

    # then: plain text, as pages are not GraphQL
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/plain") and "too large" in response.text


async def test_bodies_under_the_limit_still_work_in_chunks(small_limit):
    # given a valid request under the limit, streamed without a Content-Length
    body = json_of_size(SMALL_LIMIT)

    async def chunks():
        for start in range(0, len(body), 1000):
            yield body[start:start + 1000]

    # when
    response = await small_limit.post("/graphql", content=chunks(), headers={"content-type": "application/json"})

    # then
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("body", [
    b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    b'{"query": "{ __typename }", "variables": {"a": ' + b'{"b": ' * 5000 + b"1" + b"}" * 5000 + b"}}",
    b'{"query": "{ __typename }", "variables": {"n": ' + b"9" * 5000 + b"}}",
    b'{"query": "{ __typename \xc3 }"}',
    b"\xff\xfe{\x00",
    b'{"query": "{ __typename }"} trailing',
    b"{not json",
], ids=["nested-arrays", "nested-objects", "integer-over-4300-digits", "invalid-utf-8", "utf-16-garbage",
        "trailing-data", "broken"])
async def test_json_the_parser_cannot_handle_is_a_400_bad_request(http, body):
    # when
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})

    # then a client error in GraphQL's shape, never a 500
    assert "parse request body as JSON" in assert_bad_request(response)


@pytest.mark.parametrize("body", [b'"x"', b"null", b"123", b"true", b"[]",
                                  json.dumps([{"query": "{ __typename }"}]).encode("utf-16")],
                         ids=["string", "null", "number", "boolean", "empty-array", "utf-16-batch"])
async def test_a_json_body_that_is_not_one_object_is_a_400_bad_request(http, body, caplog):
    # when a body parses as JSON but is not one request object (a batch in UTF-16 included)
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})

    # then a client error in GraphQL's shape, never a 500, and nothing logged as an error
    message = assert_bad_request(response)
    assert "parse request body as JSON" in message or "Batched operations" in message
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_document_longer_than_the_limit_is_refused_before_it_is_parsed(http, monkeypatch):
    import graphql

    # given a document that is a handful of tokens but 100 KB long (one comment), and a spy on the parser
    parsed = []
    original = graphql.language.parser.Parser.parse_document
    monkeypatch.setattr(graphql.language.parser.Parser, "parse_document",
                        lambda self: parsed.append(1) or original(self))
    long_document = "#" + "x" * 100_000 + "\n{ __typename }"

    # when it is posted, and a document just under the limit too
    refused = await http.post("/graphql", json={"query": long_document})
    accepted = await http.post("/graphql", json={"query": "#" + "x" * 32_000 + "\n{ __typename }"})

    # then the long one is refused without being parsed, and the other one works
    assert refused.json()["errors"][0]["message"] == "The document is too long: at most 32768 characters."
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert accepted.json() == {"data": {"__typename": "Query"}}
    assert parsed == [1]


async def test_variable_coercion_errors_are_capped(http):
    # given twenty thousand unknown input fields in a variable
    document = "mutation M($i: SessionCreateInput!) { sessionCreate(input: $i) { __typename } }"
    variables = {"i": {"identifier": "a", "password": "b", **{f"x{n}": 1 for n in range(20_000)}}}

    # when it is sent
    errors = (await http.post("/graphql", json={"query": document, "variables": variables})).json()["errors"]

    # then at most ten errors (and one saying there were more) come back
    assert len(errors) <= 11, len(errors)
