"""Helpers for the hosted pages' tests: forms as a browser sends them, cookies, an application with a brand."""

from __future__ import annotations

import html
import re
import uuid
from http.cookies import SimpleCookie

import httpx

FORM = re.compile(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the page's form posting to ``action``, as a browser would send them."""
    found = [body for target, body in FORM.findall(page) if html.unescape(target) == action]
    assert found, f"no form posting to {action} in:\n{page}"
    return {name: html.unescape(value) for name, value in HIDDEN.findall(found[0])}


async def submit(http: httpx.AsyncClient, page: httpx.Response, action: str, headers: dict | None = None,
                 **fields: str) -> httpx.Response:
    """Fill in and send the page's form posting to ``action`` (from our own origin, as a browser does)."""
    sent = {"sec-fetch-site": "same-origin", **(headers or {})}
    return await http.post(action, data={**form_fields(page.text, action), **fields}, headers=sent)


def set_cookies(response: httpx.Response) -> dict[str, dict]:
    """Every cookie the response sets: name -> its value and attributes."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            found[name] = {"value": morsel.value, **{key: morsel[key] for key in (
                "path", "secure", "httponly", "samesite", "max-age")}}
    return found


def browser_client(app, base_url: str = "http://gateway.test", ip: str | None = None) -> httpx.AsyncClient:
    """A client with its own cookie jar and client IP, like one browser."""
    ip = ip or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 40000)),
                             base_url=base_url, headers={"x-forwarded-for": ip}, follow_redirects=False)


async def branded_application(runtime, name: str = "Acme Shop", *, primary: str = "#0b7285",
                              accent: str = "#ffd43b", **policy_fields) -> tuple[str, str]:
    """An application with its own policy and brand colours; returns (application id, client id)."""
    from stores import config
    from tests.flows import new_application

    application_id, client_id = await new_application(runtime, name=name, **policy_fields)
    await config.update_application(application_id, {"branding.primary_color": primary,
                                                     "branding.accent_color": accent})
    runtime.forget_applications()
    return application_id, client_id
