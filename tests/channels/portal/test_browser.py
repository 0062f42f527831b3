"""In a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright for
Python through ``executable_path``; no browser download) opens the page, presses Download,
and the file that arrives opens with the password. A screenshot of the page is kept in the
test's tmp dir and copied to ``docs/portal-screenshot.png``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pyzipper
from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from bot.messages import portal as msg
from handlers.services import Services
from tests.channels.portal.conftest import Share, link_row, outbox_password

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT_COPY = Path(__file__).resolve().parents[3] / "docs" / "portal-screenshot.png"


@pytest.fixture
def chromium() -> Path:
    """Skip, saying why, where the browser or its driver is not installed."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright; "
                    "the browser itself comes from Debian's chromium package)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    return CHROMIUM


def keep_screenshot(shot: Path) -> None:
    """The screenshot stays in the test's tmp dir; it refreshes the committed copy in docs/
    only when asked (SAFEHAVEN_UPDATE_SCREENSHOTS=1), so a test run leaves the tree clean."""
    if os.environ.get("SAFEHAVEN_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT_COPY.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT_COPY)


async def test_recipient_downloads_in_a_real_browser(services: Services, share: Share,
                                                     tmp_path: Path, chromium: Path) -> None:
    from playwright.async_api import Route, async_playwright

    link = await share()
    app = create_app(services, migrate=False, scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client, \
            async_playwright() as pw:
        url = str(client.make_url(link.path))
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(accept_downloads=True)
            outside: list[str] = []

            async def local_only(route: Route) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    await route.continue_()
                else:
                    outside.append(route.request.url)
                    await route.abort()

            await context.route("**/*", local_only)
            page = await context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))

            response = await page.goto(url)
            assert response is not None and response.status == 200
            heading = page.get_by_role("heading", level=1)
            assert await heading.inner_text() == msg.PAGE_HEADING
            assert link.reference in await page.inner_text("main")
            button = page.get_by_role("button", name=msg.PAGE_BUTTON)
            # The inline style sheet is allowed by its CSP hash, so it applies.
            colour = await button.evaluate("b => getComputedStyle(b).backgroundColor")
            assert colour == "rgb(0, 112, 60)", colour
            shot = tmp_path / "portal-screenshot.png"
            await page.screenshot(path=str(shot), full_page=True)
            keep_screenshot(shot)
            assert (await link_row(services, link.reference)).downloads == 0

            async with page.expect_download() as info:
                await button.click()
            download = await info.value
            assert download.suggested_filename == f"{link.reference}.zip"
            saved = tmp_path / download.suggested_filename
            await download.save_as(str(saved))
        finally:
            await browser.close()

    password = outbox_password(services, link.reference)
    assert password is not None
    with pyzipper.AESZipFile(saved) as zf:
        zf.setpassword(password.encode())
        names: list[Any] = zf.namelist()
        assert "document-1.pdf" in names
        assert zf.read("document-1.pdf").startswith(b"%PDF")
    assert (await link_row(services, link.reference)).downloads == 1
    assert not [m for m in console if "Content Security Policy" in m], console
    assert outside == []
