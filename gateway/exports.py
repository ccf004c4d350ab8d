"""The data export download: ``GET /me/export/<token>.json`` or ``.html`` (``resolvers/export.py``).

The URL is its own credential (a browser opens it without a bearer token): one use, 5 minutes. The
answer is an attachment (``Content-Disposition``), never cached (``no-store``, from SecurityHeaders),
and an unknown, used or expired link gets 404. ``HEAD`` only checks the link and does not use it up.

JSON and HTML come from one structure. The HTML is one self-contained page: inline styles, no
scripts, no external assets, every value escaped by Jinja2's autoescape, and a Content-Security-Policy
``<meta>`` that keeps it inert when it is opened from disk (where our response headers are gone).
"""

from __future__ import annotations

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
            document = await export.download(ctx, token)
        except InvalidToken:
            return PlainTextResponse(GONE, status_code=404)
        if export_format is export.ExportFormat.JSON:
            body = json.dumps(document, ensure_ascii=False, indent=2)
        else:
            body = render_html(document)
        filename = f"account-data-{document['exportedAt'][:10]}.{export_format}"
        return Response(body, media_type=MEDIA_TYPES[export_format],
                        headers={"content-disposition": f'attachment; filename="{filename}"'})

    return [Route(PATH, download, methods=["GET"])]  # HEAD comes with GET
