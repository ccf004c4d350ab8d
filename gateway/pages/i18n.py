"""Translations of the hosted pages: Babel catalogues, compiled in memory at start-up.

The catalogues are the ``.po`` files in ``gateway/locales/<language>/LC_MESSAGES/messages.po`` (English
is the source language: a message's id is its English text). They are read with Babel and compiled to
``gettext`` translations in memory when first needed, so no generated ``.mo`` file exists in the
repository or has to be built. Messages are extracted from the page templates and ``gateway/pages/``
with ``pybabel extract -F babel.cfg`` (docs/pages.md); a test checks that every extracted message has a
translation in every catalogue.

Which language a page speaks: the signed-in customer's ``locale`` attribute, else the browser's
``Accept-Language`` (RFC 9110 12.5.4, quality values honoured), else English; each negotiated with
Babel against the catalogues we have (``fr-CA`` gets ``fr``).
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE_LOCALE = "en"
MAX_LANGUAGES = 20  # of an Accept-Language header, the first this many are considered


def N_(message: str) -> str:  # noqa: N802 (the conventional name of a gettext marker)
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


@lru_cache(maxsize=1)
def catalogues() -> dict[str, gettext.NullTranslations]:
    """Every language we speak, with its translations (English: the messages as written)."""
    found: dict[str, gettext.NullTranslations] = {SOURCE_LOCALE: gettext.NullTranslations()}
    for path in sorted(LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = path.parent.parent.name
        with path.open("rb") as source:
            catalog = read_po(source, locale=language, domain=DOMAIN)
        compiled = BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)
        compiled.seek(0)
        found[language] = gettext.GNUTranslations(compiled)
    return found


def accept_language(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most preferred first (``q=0`` dropped)."""
    ranked = []
    for position, item in enumerate((header or "").split(",")[:MAX_LANGUAGES]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        tag = tag.strip()
        if tag and tag != "*" and quality > 0 and len(tag) <= 35:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(customer_locale: str | None, accept_language_header: str | None) -> str:
    """The language of a page: the customer's locale if we speak it, else the browser's, else English."""
    available = list(catalogues())
    for preferences in ([customer_locale] if customer_locale else [], accept_language(accept_language_header)):
        chosen = negotiate_locale([p.replace("_", "-") for p in preferences], available, sep="-") \
            if preferences else None
        if chosen:
            return {language.lower(): language for language in available}.get(chosen.lower(), SOURCE_LOCALE)
    return SOURCE_LOCALE
