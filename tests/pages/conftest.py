"""Browser fixtures for the hosted pages: a live gateway (uvicorn on a loopback port, the embedded database,
the aiosmtpd mailbox), Debian's chromium driven by Playwright (never ``playwright install``), screenshots
into ``var/screenshots/`` (git-ignored) and an axe-core check of every page looked at."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe

from tests.browser import launched_chromium, served_gateway

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = (360, 1280)
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture(scope="module")
async def live_gateway(settings, clock):
    """(base URL, runtime) of the gateway served by uvicorn on a loopback port, emailed links pointing at it."""
    async with served_gateway(settings, clock) as served:
        yield served


@pytest.fixture(scope="module")
async def chromium():
    async with launched_chromium() as browser:
        yield browser


@pytest.fixture
async def context(chromium):
    """One visitor's browser: its own cookies, English, a phone-sized window to start with."""
    context = await chromium.new_context(viewport={"width": 360, "height": 780}, locale="en-GB")
    yield context
    await context.close()


class Looker:
    """Looks at the page as it is now: a screenshot at each width, and axe-core's serious and critical
    violations (which fail the test)."""

    def __init__(self, folder: str) -> None:
        self.folder = SCREENSHOTS / folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.axe = Axe()

    async def __call__(self, page, name: str) -> None:
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 780})
            await page.screenshot(path=str(self.folder / f"{name}-{width}.png"), full_page=True)
            results = await self.axe.run(page)
            blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING_IMPACTS]
            assert not blocking, f"{name} at {width}px:\n" + "\n".join(
                f"{v['id']} ({v['impact']}): {v['help']} {[n['target'] for n in v['nodes']]}" for v in blocking)
        await page.set_viewport_size({"width": 360, "height": 780})


@pytest.fixture
def look(request):
    """``await look(page, "sign-in")``: screenshots into var/screenshots/<test>/ and the axe check."""
    return Looker(request.node.name.removeprefix("test_")[:60])
