"""The data export download: ``GET /me/export/<token>.json`` or ``.html`` (``resolvers/export.py``).

The URL is its own credential (a browser opens it without a bearer token): one use, 5 minutes. The
answer is an attachment (``Content-Disposition``), never cached (``no-store``, from SecurityHeaders),
and an unknown, used or expired link gets 404. ``HEAD`` only checks the link and does not use it up.

JSON and HTML come from one structure. The HTML is one self-contained page: inline styles, no
scripts, no external assets, every value escaped by Jinja2's autoescape, and a Content-Security-Policy
``<meta>`` that keeps it inert when it is opened from disk (where our response headers are gone).

The link is checked and the data read on the event loop (async database reads); shaping the document and
serialising it, the CPU-bound part, run in a worker thread (``asyncio.to_thread``, as pattern matching of
custom attributes does).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.pages import page_context
from gateway.runtime import Runtime
from resolvers import export
from resolvers.context import RequestMeta
from resolvers.errors import InvalidToken

PATH = export.PATH + "{filename}"
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))
MEDIA_TYPES = {export.ExportFormat.JSON: "application/json", export.ExportFormat.HTML: "text/html; charset=utf-8"}
GONE = "This download link is invalid, used or expired. Ask for a new export."


def _split(filename: str) -> tuple[str, export.ExportFormat] | None:
    token, _, extension = filename.rpartition(".")
    try:
        return token, export.ExportFormat(extension)
    except ValueError:
        return None


def render_html(document: dict[str, Any]) -> str:
    return TEMPLATES.get_template("export.html").render(data=document)


def serialise(source: export.ExportSource, export_format: export.ExportFormat) -> bytes:
    """The download's body: the export document (``resolvers.export.shape``) as JSON or the HTML page, in
    UTF-8. CPU-bound (up to 5,000 consent and 5,000 audit events): called in a worker thread, never on the
    event loop, so other requests are answered meanwhile."""
    document = export.shape(source)
    if export_format is export.ExportFormat.JSON:
        return json.dumps(document, ensure_ascii=False, indent=2).encode()
    return render_html(document).encode()


def routes(runtime: Runtime, meta: Callable[[Request], RequestMeta]) -> list[Route]:
    """The download route; ``meta`` reads a request's client IP, user agent, request id and locale."""

    async def download(request: Request) -> Response:
        parsed = _split(request.path_params["filename"])
        if parsed is None:
            return PlainTextResponse(GONE, status_code=404)
        token, export_format = parsed
        ctx = await page_context(runtime, meta(request), link_token=token)
        try:
            if request.method == "HEAD":
                await export.check_download(ctx, token)
                return Response(status_code=200, media_type=MEDIA_TYPES[export_format])
            source = await export.download(ctx, token)
        except InvalidToken:
            return PlainTextResponse(GONE, status_code=404)
        body = await asyncio.to_thread(serialise, source, export_format)
        filename = f"{source.filename}.{export_format}"
        return Response(body, media_type=MEDIA_TYPES[export_format],
                        headers={"content-disposition": f'attachment; filename="{filename}"'})

    return [Route(PATH, download, methods=["GET"])]  # HEAD comes with GET
