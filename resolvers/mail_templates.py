"""Email templates: a subject, an HTML body and a text body per kind, rendered in a sandbox under a budget.

HTML is autoescaped; subject and text are not (they are not HTML). Defaults ship in
``resolvers/templates/mail/<kind>.{subject,html,text}.jinja`` (English), and translated ones in
``resolvers/templates/mail/<language>/`` for the kinds translated so far: a customer whose locale is
``fr`` or ``fr-CA`` gets the French default of a kind where it exists, else the English one. Every part, default or override, renders
through the runtime's ``RenderPool`` (``resolvers.template_sandbox``: Jinja's immutable sandbox, a time
limit and a size limit, off the event loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from resolvers.context import RenderPool

TEMPLATE_DIR = Path(__file__).parent / "templates" / "mail"
PARTS = ("subject", "html", "text")
MAX_SUBJECT_CHARACTERS = 998  # RFC 5322 2.1.1: a header line, and so a subject, is at most 998 characters


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


@lru_cache(maxsize=256)
def default_source(kind: str, part: str, locale: str | None = None) -> str:
    """The shipped default of one part, in the locale's language when it is translated, else English."""
    language = (locale or "").replace("_", "-").split("-")[0].lower()
    if language.isalpha() and language != "en":
        translated = TEMPLATE_DIR / language / f"{kind}.{part}.jinja"
        if translated.is_file():
            return translated.read_text(encoding="utf-8")
    return (TEMPLATE_DIR / f"{kind}.{part}.jinja").read_text(encoding="utf-8")


def kinds() -> list[str]:
    return sorted({p.name.split(".")[0] for p in TEMPLATE_DIR.glob("*.subject.jinja")})


async def render(pool: RenderPool, kind: str, variables: dict[str, Any],
                 sources: dict[str, str] | None = None, locale: str | None = None) -> RenderedMail:
    """Render all three parts; ``sources`` overrides the shipped defaults (in ``locale``'s language) part by part.

    Raises what the first failing part raises (``TemplateTooSlow``, ``TemplateTooLarge``, a Jinja error …).
    """
    sources = sources or {}
    out = {part: await pool.render(sources.get(part) or default_source(kind, part, locale), part, variables)
           for part in PARTS}
    subject = " ".join(out["subject"].split())
    if len(subject) > MAX_SUBJECT_CHARACTERS:
        raise ValueError(f"The subject renders to more than {MAX_SUBJECT_CHARACTERS} characters.")
    return RenderedMail(subject=subject, html=out["html"], text=out["text"])
