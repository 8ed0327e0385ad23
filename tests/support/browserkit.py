"""Driving the admin dashboard (``/ui/``, docs/dashboard.md) in Debian's chromium, for its browser tests
and its benchmark (bench/dashboard.py): the page's address, the browser, and the page's own hooks
(``document.body.dataset`` and ``window.__mockdDashboard``) waited on with deadlines."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from playwright.async_api import Browser, Page, Playwright

from chromium import CHROMIUM, CHROMIUM_ARGS

VIEWPORT = {"width": 1280, "height": 860}
TOKEN_KEY = "mockd.adminToken"  # where the page keeps the token (sessionStorage, api.js)


def dashboard_url(admin_url: str, *, recording: str | None = None, view: str | None = None,
                  token: str | None = None) -> str:
    """``/ui/`` on the admin listener, with the fragment the page reads: a view, a recording, a token."""
    fragment = [f"token={quote(token, safe='')}"] if token else []
    fragment += [f"recording={quote(recording, safe='')}"] if recording else []
    fragment += [view] if view else []
    return f"{admin_url}/ui/" + ("#" + "&".join(fragment) if fragment else "")


async def launch(playwright: Playwright) -> Browser:
    """Headless Debian chromium (never a downloaded browser)."""
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


async def wait_for_hook(page: Page, name: str, value: str, timeout_ms: float) -> None:
    """Wait until ``document.body.dataset[name]`` is ``value``."""
    await page.wait_for_function("([name, value]) => document.body.dataset[name] === value", arg=[name, value],
                                 timeout=timeout_ms)


async def wait_for_marks(page: Page, at_least: int, timeout_ms: float) -> int:
    """Wait until the timeline holds at least ``at_least`` marks; how many it holds then."""
    await page.wait_for_function("(n) => Number(document.body.dataset.timelineMarks) >= n", arg=at_least,
                                 timeout=timeout_ms)
    return int(await page.evaluate("() => Number(document.body.dataset.timelineMarks)"))


async def timeline_timings(page: Page) -> dict[str, Any]:
    """The page's own ms since navigation: ``ready`` (first page drawn, input answered), ``loaded``."""
    timings: dict[str, Any] = await page.evaluate("() => window.__mockdDashboard.timings")
    return timings
