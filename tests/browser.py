"""What every browser test shares: the gateway served by uvicorn on a loopback port, and Debian's chromium
driven by Playwright (``executable_path``, never ``playwright install``)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from playwright.async_api import Browser, async_playwright

from gateway.app import create_app
from gateway.runtime import Runtime
from tests.support import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

ASGIApp = Callable[..., Any]


@asynccontextmanager
async def served_gateway(settings, clock, *, passkeys: bool = False,
                         around: Callable[[ASGIApp], ASGIApp] | None = None) -> AsyncIterator[tuple[str, Runtime]]:
    """(base URL, runtime) of the gateway served by uvicorn on a free loopback port, its public URL pointing
    at itself. With ``passkeys`` the base is ``http://localhost:<port>``, a secure context whose host browsers
    accept as the WebAuthn relying party id (and the gateway's settings say so). ``around`` wraps the app
    (a test page served beside it)."""
    port = free_port()
    base = f"http://{'localhost' if passkeys else '127.0.0.1'}:{port}"
    update: dict[str, Any] = {"public_url": base}
    if passkeys:
        update |= {"webauthn_rp_id": "localhost", "webauthn_origins": base}
    app = create_app(settings.model_copy(update=update), clock=clock)
    server = uvicorn.Server(uvicorn.Config(around(app) if around else app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
            assert not task.done(), "uvicorn did not start"
        yield base, app.state.runtime
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    """Debian's headless chromium."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
