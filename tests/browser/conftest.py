"""Browser tests: the whole server + PBX emulator (the e2e harness) and Debian's Chromium
driven by Playwright for Python. No browser is ever downloaded: Playwright starts
``/usr/bin/chromium`` (installed by ``scripts/bootstrap`` with ``fonts-noto-cjk``).

Screenshots of every screen, 1280×800 and 390×844, go to ``test-artifacts/browser/``
(gitignored; the path is printed). Every page fails the test on a console error or an
uncaught exception.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import pbx_overrides, server, server_overrides  # noqa: F401  (the whole-stack fixtures)

CHROMIUM = os.environ.get("CALLCORE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.browser)


@dataclass
class Tab:
    """One browser page with its console errors collected."""

    page: Any
    name: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    #: while the test keeps the server down on purpose, Chromium's own "WebSocket connection
    #: ... failed" messages for the page's reconnect attempts are expected, not page errors
    outage: bool = False

    def console(self, kind: str, text: str) -> None:
        if kind != "error":
            return
        if self.outage and "WebSocket connection to" in text and "ERR_CONNECTION_REFUSED" in text:
            return
        self.errors.append(f"console.{kind}: {text}")

    async def shot(self, label: str) -> list[Path]:
        """Screenshots of the page now, wide and narrow (then back to wide)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        out = []
        for size, suffix in ((WIDE, "1280x800"), (NARROW, "narrow")):
            await self.page.set_viewport_size(size)
            path = ARTIFACTS / f"{label}-{suffix}.png"
            await self.page.screenshot(path=str(path), full_page=True)
            out.append(path)
        await self.page.set_viewport_size(WIDE)
        print(f"screenshots: {', '.join(str(p) for p in out)}")
        return out


@pytest.fixture
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/bootstrap installs Debian's chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def open_tab(browser, server):  # noqa: F811
    """``await open_tab("agent-a")`` → a :class:`Tab` on the server's ``/`` (Korean locale)."""
    tabs: list[Tab] = []
    contexts = []

    async def _open(name: str, locale: str = "ko-KR") -> Tab:
        ctx = await browser.new_context(viewport=WIDE, locale=locale)
        contexts.append(ctx)
        page = await ctx.new_page()
        tab = Tab(page, name)
        page.on("console", lambda m, tab=tab: tab.console(m.type, m.text))
        page.on("pageerror", lambda e, tab=tab: tab.errors.append(f"uncaught: {e}"))
        page.on("request", lambda r, tab=tab: tab.requests.append(r.url))
        await page.goto(server.base_url + "/")
        tabs.append(tab)
        return tab

    yield _open
    try:
        for tab in tabs:
            assert tab.errors == [], f"{tab.name}: console errors: {tab.errors}"
            # nothing left the server the page came from (no CDN, no font service)
            foreign = [u for u in tab.requests if not u.startswith((server.base_url, server.base_url.replace("http", "ws"), "blob:", "data:"))]
            assert foreign == [], f"{tab.name}: requests to other hosts: {foreign}"
    finally:
        for ctx in contexts:
            await ctx.close()


async def sign_in(tab: Tab, agent_id: str, pin: str) -> None:
    page = tab.page
    await page.fill("#signin-id", agent_id)
    await page.fill("#signin-pin", pin)
    await page.press("#signin-pin", "Enter")  # the keyboard, not the mouse
    await page.wait_for_selector("#conn.on", timeout=10_000)


def clean_artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
