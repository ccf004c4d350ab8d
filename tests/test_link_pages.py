"""Emailed links that change state are confirmed by a person, not by a scanner.

Opening the link (GET or HEAD, or a scanner following everything on the page) only shows a confirm
button; the form POST, with the page's CSRF token and cookie, from our own origin, uses the link.
"""

from __future__ import annotations

import contextlib
import html
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urljoin

import httpx
import pytest

from gateway.app import create_app
from tests.flows import ACTIVATE, activation_token, confirm_from_page, register, sign_in
from tests.support import assert_no_errors, hidden_fields, unique_email, unique_ip
from tests.test_round_trips import counted  # noqa: F401 - a fixture: a gateway that reports its commands

WRITES = {"insert", "update", "delete", "findAndModify"}
LINKED = re.compile(r'(?:href|src|action)="([^"]+)"')


@contextlib.asynccontextmanager
async def browser_on(app, base_url: str = "http://gateway.test"):
    """A browser of its own against a running app: its own cookie jar and client IP."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url,
                                 headers={"x-forwarded-for": unique_ip()}) as client:
        yield client


@pytest.fixture
async def browser(app):
    async with browser_on(app) as client:
        yield client


async def pending(gql, mailbox, prefix: str) -> tuple[str, str]:
    email = unique_email(prefix)
    await register(gql, email)
    return email, await activation_token(mailbox, email)


async def still_pending(gql, email: str) -> bool:
    return (await sign_in(gql, email))["__typename"] == "AccountNotActivatedError"


async def test_opening_the_link_shows_a_confirm_button_and_activates_nothing(gql, browser, mailbox):
    # given a customer with an activation link
    email, token = await pending(gql, mailbox, "look")

    # when the link is opened with GET and HEAD, several times
    pages = [await browser.get("/activate", params={"token": token}) for _ in range(3)]
    heads = [await browser.head("/activate", params={"token": token}) for _ in range(3)]

    # then each shows the confirm form, privately, and the account is still pending
    for page in pages:
        assert page.status_code == 200 and "Activate your account" in page.text
        assert set(hidden_fields(page.text, "/activate")) == {"token", "csrf_token"}
        assert '<button type="submit">Activate my account</button>' in page.text
        assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert [head.status_code for head in heads] == [200] * 3 and all(head.content == b"" for head in heads)
    assert await still_pending(gql, email)

    # and the link still works when the person presses the button
    done = await confirm_from_page(browser, "/activate", token)
    assert done.status_code == 200 and "Your account is activated" in done.text
    assert (await sign_in(gql, email))["__typename"] == "SessionCreated"


async def test_a_scanner_following_everything_on_the_page_writes_nothing(counted, mailbox):  # noqa: F811
    # given a customer with an activation link, and a mail scanner that opens it and everything it links to
    app, gql, commands = counted
    email, token = await pending(gql, mailbox, "scanner")
    await app.state.runtime.drain()
    link = f"http://gateway.test/activate?token={token}"

    async with browser_on(app) as scanner:
        commands.names.clear()
        # when it opens the link, then GETs and HEADs every href, src and form action on every page it
        # reaches, and also "submits" each form as a GET with the form's fields in the query
        visited: dict[str, httpx.Response] = {}
        queue = [link]
        while queue:
            url = queue.pop(0)
            if url in visited:
                continue
            visited[url] = response = await scanner.get(url)
            assert (await scanner.head(url)).status_code == response.status_code
            for target in LINKED.findall(response.text):
                absolute = urljoin(url, html.unescape(target))
                queue.append(absolute)
                if f'<form method="post" action="{target}">' in response.text:
                    queue.append(f"{absolute}?{urlencode(hidden_fields(response.text, target))}")

    # then nothing was written, the account is still pending, and nothing failed
    assert not WRITES & set(commands.names), commands.names
    assert await still_pending(gql, email)
    assert visited[link].status_code == 200 and len(visited) >= 4, list(visited)
    assert all(response.status_code < 500 for response in visited.values())
    # and the link still works
    assert assert_no_errors(await gql(ACTIVATE, {"token": token}))["accountActivate"]["__typename"] == "AccountActivated"


async def test_a_post_without_the_pages_csrf_token_is_refused_and_activates_nothing(app, gql, browser, mailbox):
    # given a customer with an activation link, opened in their browser
    email, token = await pending(gql, mailbox, "forged")
    form = hidden_fields((await browser.get("/activate", params={"token": token})).text, "/activate")
    resend_token = hidden_fields((await browser.get("/activate")).text, "/activate/resend")["csrf_token"]

    # when the form is posted without its token, with a made-up one, with the token of another form,
    # with the token of another browser's cookie, and from a browser without the cookie
    answers = [
        await browser.post("/activate", data={"token": token}),
        await browser.post("/activate", data={"token": token, "csrf_token": "A" * 43}),
        await browser.post("/activate", data={"token": token, "csrf_token": resend_token}),
    ]
    async with browser_on(app) as other:
        await other.get("/activate", params={"token": token})  # holds a cookie of its own
        answers.append(await other.post("/activate", data=form))
    async with browser_on(app) as cookieless:
        answers.append(await cookieless.post("/activate", data=form))

    # then each is refused with a page that offers to start again, and nothing changed
    for answer in answers:
        assert answer.status_code == 403, (answer.status_code, answer.text)
        assert "nothing was changed" in answer.text
        assert f'href="/activate?token={token}"' in answer.text
    assert await still_pending(gql, email)

    # and the real form still works
    done = await browser.post("/activate", data=form)
    assert done.status_code == 200 and "Your account is activated" in done.text


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"},
    {"origin": "null", "sec-fetch-site": "cross-site"},
    {"origin": "http://gateway.test.evil.example"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
    {"origin": "http://gateway.test", "sec-fetch-site": "cross-site"},
])
async def test_a_cross_site_post_is_refused(gql, browser, mailbox, headers):
    # given a customer's open confirm page (cookie and token in hand)
    email, token = await pending(gql, mailbox, "xsite")
    form = hidden_fields((await browser.get("/activate", params={"token": token})).text, "/activate")

    # when the form arrives from another site
    answer = await browser.post("/activate", data=form, headers=headers)

    # then it is refused and the account stays pending
    assert answer.status_code == 403 and "another site" in answer.text
    assert await still_pending(gql, email)

    # while the same form from our own origin activates (a browser says "null" under no-referrer)
    ours = await browser.post("/activate", data=form, headers={"origin": "null", "sec-fetch-site": "same-origin"})
    assert ours.status_code == 200 and "Your account is activated" in ours.text


async def test_a_used_link_says_already_active(gql, browser, mailbox):
    # given a link confirmed from its page
    email, token = await pending(gql, mailbox, "twice")
    form = hidden_fields((await browser.get("/activate", params={"token": token})).text, "/activate")
    assert "Your account is activated" in (await browser.post("/activate", data=form)).text

    # when the form is sent again, and the link opened again
    resent = await browser.post("/activate", data=form)
    reopened = await browser.get("/activate", params={"token": token})

    # then both say the account is already active, with nothing left to press
    for page in (resent, reopened):
        assert page.status_code == 200 and "Your account is already active" in page.text
        assert "<form" not in page.text


async def test_the_resend_form_needs_its_csrf_token(gql, browser, mailbox, runtime):
    # given a pending customer whose link has expired (here: made up), on the "invalid" page
    email, _ = await pending(gql, mailbox, "resend")
    page = await browser.get("/activate", params={"token": "made-up"})
    form = hidden_fields(page.text, "/activate/resend")

    # when the re-send form is posted without its CSRF token
    forged = await browser.post("/activate/resend", data={"client_id": form["client_id"], "email": email})
    await runtime.drain()

    # then it is refused and no mail is sent
    assert forged.status_code == 403 and "nothing was changed" in forged.text
    assert len([m for m in mailbox.to(email) if "activate" in m.subject.lower()]) == 1

    # while the form as the page made it sends a new link
    sent = await browser.post("/activate/resend", data={**form, "email": email})
    assert sent.status_code == 200 and "emailed a new link" in sent.text
    await mailbox.wait_for(email, "activate", count=2)


async def test_a_page_left_open_until_the_link_expires_does_not_activate(gql, browser, mailbox, clock):
    # given a confirm page opened while the link was valid
    email, token = await pending(gql, mailbox, "late")
    form = hidden_fields((await browser.get("/activate", params={"token": token})).text, "/activate")

    # when the button is pressed a day and an hour later
    clock.advance(hours=25)
    late = await browser.post("/activate", data=form)

    # then the link is refused, with a way to ask for a new one, and the account stays pending
    assert late.status_code == 400 and "invalid or has expired" in late.text
    assert hidden_fields(late.text, "/activate/resend")["csrf_token"]
    clock.reset()
    assert await still_pending(gql, email)


def cookie_of(response: httpx.Response) -> tuple[str, dict]:
    jar = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    (name, morsel), = jar.items()
    return name, {key: morsel[key] for key in ("path", "secure", "httponly", "samesite", "max-age", "expires")}


async def test_the_csrf_cookie_is_host_only_and_secure_behind_https(app, settings, clock, gql, mailbox, browser):
    # given the gateway on plain http (development), and the same gateway with an https public URL
    page = await browser.get("/activate", params={"token": "made-up"})
    https_app = create_app(settings.model_copy(update={"public_url": "https://id.example"}), clock=clock)
    async with https_app.router.lifespan_context(https_app), browser_on(https_app, "https://id.example") as secure:
        email, token = await pending(gql, mailbox, "https")
        # when a page with a form is opened on each
        secure_page = await secure.get("/activate", params={"token": token})
        # (and the https one is confirmed, from its own origin)
        done = await secure.post("/activate", data=hidden_fields(secure_page.text, "/activate"),
                                 headers={"origin": "https://id.example", "sec-fetch-site": "same-origin"})

    # then the cookie is HttpOnly, SameSite=Lax, Path=/ and lasts the browser session on both,
    # named __Host- and Secure on https only
    assert cookie_of(page) == ("gw_csrf", {"path": "/", "secure": "", "httponly": True, "samesite": "lax",
                                           "max-age": "", "expires": ""})
    assert cookie_of(secure_page) == ("__Host-gw_csrf", {"path": "/", "secure": True, "httponly": True,
                                                         "samesite": "lax", "max-age": "", "expires": ""})
    assert done.status_code == 200 and "Your account is activated" in done.text
    # and a page that shows no form sets no cookie
    async with browser_on(app) as fresh:
        assert "set-cookie" not in (await fresh.get("/activate", params={"token": token})).headers
