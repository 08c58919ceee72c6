"""Debian's Chromium, driven by Playwright, with every request leaving the machine aborted and recorded: the
browser half of the drop-in tests (no CDN, no browser download)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

__all__ = ["BROWSER_UA", "CHROMIUM", "guarded_page"]

CHROMIUM = Path("/usr/bin/chromium")
# a desktop Chrome's: the bot rules take it for a person (Playwright's own says HeadlessChrome)
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Safari/537.36"


@contextlib.asynccontextmanager
async def guarded_page(hosts: set[str], outside: list[str]) -> AsyncIterator[Page]:
    """A page of a fresh browser that reaches only ``hosts`` (every ``*.test`` name resolves to 127.0.0.1); any
    other request is aborted and its URL appended to ``outside``. navigator.webdriver is false, as a person's."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP *.test 127.0.0.1",
            "--disable-background-networking", "--disable-blink-features=AutomationControlled"],
            ignore_default_args=["--enable-automation"])
        context = await browser.new_context(user_agent=BROWSER_UA)

        async def guard(route: Any) -> None:
            host = route.request.url.split("/")[2].split(":")[0]
            if host in hosts:
                await route.continue_()
            else:  # nothing may leave the machine
                outside.append(route.request.url)
                await route.abort()

        await context.route("**/*", guard)
        try:
            yield await context.new_page()
        finally:
            await browser.close()
