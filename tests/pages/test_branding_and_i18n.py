"""Branding (colours checked for WCAG AA at save, readable text picked for the pages), the strict
Content-Security-Policy, and the translation catalogues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from resolvers.applications import contrast_ratio, readable_text_color
from tests.flows import admin_token
from tests.pages.support import branded_application, browser_client

ROOT = Path(__file__).resolve().parents[2]

UPDATE = """
mutation($id: ID!, $branding: BrandingInput!) {
  applicationUpdate(id: $id, input: {branding: $branding}) {
    __typename ... on InvalidInputError { fields { field code message } }
  }
}
"""
CREATE = 'mutation { applicationCreate(input: {name: "Contrast"}) { ... on Application { id } } }'


@pytest.mark.parametrize(("first", "second", "ratio"), [
    ("#000000", "#ffffff", 21.0), ("#ffffff", "#ffffff", 1.0), ("#777777", "#ffffff", 4.48),
    ("#2563eb", "#ffffff", 5.17), ("#f59e0b", "#ffffff", 2.15),
])
def test_contrast_ratio_follows_wcag(first, second, ratio):
    assert round(contrast_ratio(first, second), 2) == ratio


@pytest.mark.parametrize(("background", "text"), [
    ("#ffd43b", "#000000"), ("#f59e0b", "#000000"), ("#ffffff", "#000000"),
    ("#1e3a8a", "#ffffff"), ("#2563eb", "#ffffff"), ("#000000", "#ffffff"),
])
def test_the_readable_text_colour_is_never_white_on_yellow(background, text):
    assert readable_text_color(background) == text
    assert contrast_ratio(background, readable_text_color(background)) >= 4.5


def test_black_or_white_reaches_aa_on_every_grey():
    assert min(contrast_ratio(f"#{v:02x}{v:02x}{v:02x}", readable_text_color(f"#{v:02x}{v:02x}{v:02x}"))
               for v in range(256)) >= 4.5


async def test_a_primary_colour_too_light_for_text_is_refused_at_save(runtime, gql):
    # given an admin and an application
    token = await admin_token(runtime, gql)
    application_id = (await gql(CREATE, token=token))["data"]["applicationCreate"]["id"]
    # when they save a yellow primary colour (text and links in it would be unreadable on white)
    refused = (await gql(UPDATE, {"id": application_id, "branding": {"primaryColor": "#ffd43b"}},
                         token=token))["data"]["applicationUpdate"]
    # then the field error names the contrast and what AA needs
    assert refused["__typename"] == "InvalidInputError"
    (problem,) = refused["fields"]
    assert (problem["field"], problem["code"]) == ("branding.primaryColor", "LOW_CONTRAST")
    assert "1.4" in problem["message"] and "4.5:1" in problem["message"]
    # and a yellow accent (only ever a background, with text picked for it) is accepted
    accepted = (await gql(UPDATE, {"id": application_id, "branding": {"accentColor": "#ffd43b"}},
                          token=token))["data"]["applicationUpdate"]
    assert accepted["__typename"] == "Application"


async def test_each_application_gets_its_colours_with_readable_text_from_a_hashed_stylesheet(app, runtime):
    # given an application with a teal primary and a yellow accent
    _, client_id = await branded_application(runtime, "Sunny Shop", primary="#0b7285", accent="#ffd43b")
    async with browser_client(app) as browser:
        page = await browser.get("/sign-in", params={"app": client_id})
        default = await browser.get("/sign-in")
        href = re.search(r'<link rel="stylesheet" href="(/assets/brand/[^"]+)">', page.text).group(1)
        stylesheet = await browser.get(href)
        stale = await browser.get(href.split("?")[0] + "?v=old")
    # then its pages name it and load its stylesheet, whose text on yellow is black and on teal white
    assert "Sign in to Sunny Shop" in page.text and href.startswith(f"/assets/brand/{client_id}.css?v=")
    assert "--brand-accent:#ffd43b;--brand-on-accent:#000000" in stylesheet.text
    assert "--brand-primary:#0b7285;--brand-on-primary:#ffffff" in stylesheet.text
    assert stylesheet.headers["content-type"].startswith("text/css")
    assert "immutable" in stylesheet.headers["cache-control"] and stale.headers["cache-control"] == "no-cache"
    # and the default application has its own
    assert href not in default.text and "/assets/brand/" in default.text


async def test_a_low_contrast_primary_saved_before_the_rule_is_not_used_for_links(app, runtime):
    # given an application stored with a yellow primary colour (before the save rule existed)
    _, client_id = await branded_application(runtime, "Old Shop", primary="#ffd43b", accent="#0b7285")
    async with browser_client(app) as browser:
        page = await browser.get("/sign-in", params={"app": client_id})
        href = re.search(r'href="(/assets/brand/[^"]+)"', page.text).group(1)
        stylesheet = (await browser.get(href)).text
    # then buttons get black text on it, and links fall back to the page's text colour
    assert "--brand-on-primary:#000000" in stylesheet and "--brand-link:#1f2933" in stylesheet


async def test_pages_have_no_inline_script_or_style_and_a_strict_policy(app):
    async with browser_client(app) as browser:
        for path in ("/sign-in", "/register", "/forgot-password", "/reset-password?token=x", "/activate?token=x"):
            page = await browser.get(path)
            policy = dict(d.split(" ", 1) for d in page.headers["content-security-policy"].split("; "))
            assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", path
            assert "unsafe" not in page.headers["content-security-policy"], path
            assert not re.search(r"<script(?![^>]*\ssrc=)", page.text), path
            assert "<style" not in page.text and " style=" not in page.text, path
            assert not re.search(r"(src|href)=\"(https?:)?//", page.text), path  # nothing from elsewhere


def extracted_messages() -> set[str]:
    """What ``pybabel extract -F babel.cfg -k N_ -k gettext:2`` finds in the pages' code and templates."""
    method_map = [("gateway/pages/**.py", "python"), ("gateway/oauth.py", "python"),
                  ("gateway/templates/pages/**.html", "jinja2")]
    keywords = {"_": None, "gettext": (2,), "N_": None}
    options = {"gateway/templates/pages/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map=options, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_page_message_is_translated_in_every_catalogue():
    messages = extracted_messages()
    assert "Sign in" in messages and "Activate my account" in messages and len(messages) > 100
    catalogues = sorted((ROOT / "gateway" / "locales").glob("*/LC_MESSAGES/messages.po"))
    assert catalogues, "no catalogue"
    for path in catalogues:
        with path.open("rb") as source:
            catalogue = {m.id: m for m in read_po(source) if m.id}
        missing = sorted(m for m in messages if m not in catalogue or not catalogue[m].string
                         or catalogue[m].fuzzy)
        assert not missing, f"{path}: untranslated {missing}"
        for message in messages:
            placeholders = sorted(re.findall(r"%\((\w+)\)s", message))
            assert sorted(re.findall(r"%\((\w+)\)s", catalogue[message].string)) == placeholders, message
