"""A full-page screenshot of results/index.html in headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright; `playwright install` is never run)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 1000}


async def capture(page_file: Path, png: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            await page.goto(page_file.resolve().as_uri())
            await page.wait_for_load_state("load")
            png.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(png), full_page=True)
        finally:
            await browser.close()


def screenshot(page_file: Path, png: Path) -> bool:
    """True when the screenshot was written; False (and nothing written) without Chromium or Playwright."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    if not CHROMIUM.exists():
        return False
    asyncio.run(capture(page_file, png))
    return True
