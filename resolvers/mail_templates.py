"""Email templates: a subject, an HTML body and a text body per kind, rendered in a Jinja2 sandbox.

HTML is autoescaped; subject and text are not (they are not HTML). Defaults ship in
``resolvers/templates/mail/<kind>.{subject,html,text}.jinja``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).parent / "templates" / "mail"
PARTS = ("subject", "html", "text")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True)


@lru_cache(maxsize=64)
def default_source(kind: str, part: str) -> str:
    return (TEMPLATE_DIR / f"{kind}.{part}.jinja").read_text(encoding="utf-8")


def kinds() -> list[str]:
    return sorted({p.name.split(".")[0] for p in TEMPLATE_DIR.glob("*.subject.jinja")})


def render_source(source: str, part: str, variables: dict[str, Any]) -> str:
    template = _env(part == "html").from_string(source)
    return template.render(**variables)


def render(kind: str, variables: dict[str, Any], sources: dict[str, str] | None = None) -> RenderedMail:
    """Render all three parts; ``sources`` overrides the shipped defaults part by part."""
    sources = sources or {}
    out = {part: render_source(sources.get(part) or default_source(kind, part), part, variables) for part in PARTS}
    return RenderedMail(subject=" ".join(out["subject"].split()), html=out["html"], text=out["text"])
