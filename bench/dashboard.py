"""Issue 18: the dashboard's timeline of a 100,000-frame WebSocket recording in headless Chromium.

    .venv/bin/python bench/dashboard.py [--frames 100000] [--runs 3] [--json OUT]

Writes P6's long recording (bench/scenarios.py ``LongShape``: 100 connections, so 200 lanes, one frame in
50 binary) straight into a fresh data directory, starts ``mockd serve`` on it (pinned to CPU 0, which
builds the frame index while it opens the directory), and opens ``/ui/#recording=<id>`` in Debian's
chromium (this process and the browser on CPU 1). For each run, in a fresh browser context: the time
from navigation to ``timelineReady`` (the first page of 10,000 frames drawn and the canvas answering
input) and to ``timelineLoaded`` (every frame drawn), as the page measures them (``performance.now()``,
from the navigation's start) and as seen from here (wall time around ``page.goto``); and, while the rest
loads, the slowest answer of the page to an ``evaluate`` sent every 20 ms (how long its main thread was
busy at a stretch). Exits 1 when a run became interactive later than 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the browser tests' helpers (browserkit.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from harness import mockd, on_client_core
from playwright.async_api import Browser, Page, async_playwright
from scenarios import LongShape, burst_offsets, write_long_recording
from ulid import ULID

from browserkit import VIEWPORT, dashboard_url, launch, timeline_timings, wait_for_hook

INTERACTIVE_TARGET_MS = 2000.0
READY_TIMEOUT = 300.0  # s: mockd indexes the file while it opens the data directory
PAGE_TIMEOUT_MS = 60_000
PROBE_INTERVAL = 0.02  # s between two looks at the page while it loads


async def probe_while_loading(page: Page) -> float:
    """The slowest ``evaluate`` round trip (ms) until every frame is loaded."""
    slowest = 0.0
    while True:
        started = time.perf_counter()
        loaded = await page.evaluate("() => document.body.dataset.timelineLoaded")
        slowest = max(slowest, (time.perf_counter() - started) * 1000)
        if loaded == "1":
            return slowest
        await asyncio.sleep(PROBE_INTERVAL)


async def one_run(browser: Browser, url: str, frames: int) -> dict[str, Any]:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        started = time.perf_counter()
        await page.goto(url, wait_until="commit")
        await wait_for_hook(page, "timelineReady", "1", PAGE_TIMEOUT_MS)
        ready_wall = (time.perf_counter() - started) * 1000
        slowest = await probe_while_loading(page)
        loaded_wall = (time.perf_counter() - started) * 1000
        marks = int(await page.evaluate("() => window.__mockdDashboard.marks"))
        if marks != frames:
            raise RuntimeError(f"the timeline holds {marks} marks, not {frames}")
        timings = await timeline_timings(page)
        return {"ready_ms": timings["ready"], "loaded_ms": timings["loaded"], "ready_wall_ms": ready_wall,
                "loaded_wall_ms": loaded_wall, "slowest_answer_ms": slowest, "marks": marks}
    finally:
        await context.close()


async def measure(admin_url: str, recording_id: str, frames: int, runs: int) -> list[dict[str, Any]]:
    url = dashboard_url(admin_url, recording=recording_id)
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            return [await one_run(browser, url, frames) for _ in range(runs)]
        finally:
            await browser.close()


def report(results: list[dict[str, Any]], frames: int) -> str:
    lines = [f"dashboard timeline, {frames:,}-frame WebSocket recording (200 lanes), headless chromium",
             "run  interactive (page / wall)   all loaded (page / wall)   slowest page answer while loading"]
    for number, run in enumerate(results, 1):
        lines.append(f"{number:>3}  {run['ready_ms']:8.0f} / {run['ready_wall_ms']:5.0f} ms"
                     f"      {run['loaded_ms']:8.0f} / {run['loaded_wall_ms']:5.0f} ms"
                     f"      {run['slowest_answer_ms']:6.0f} ms")
    worst = max(run["ready_ms"] for run in results)
    lines.append(f"median interactive {statistics.median(run['ready_ms'] for run in results):.0f} ms, "
                 f"worst {worst:.0f} ms (target ≤ {INTERACTIVE_TARGET_MS:.0f} ms): "
                 f"{'PASS' if worst <= INTERACTIVE_TARGET_MS else 'MISS'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mockd-dashboard-bench-") as work:
        workdir = Path(work)
        shape = LongShape(str(ULID()), options.frames, burst_offsets(400), time.time_ns())
        data_dir = workdir / "data"
        data_dir.mkdir(mode=0o700)
        write_long_recording(data_dir, shape)
        with mockd(workdir, data_dir, ready_timeout=READY_TIMEOUT) as server, on_client_core():
            results = asyncio.run(measure(server.admin_url, shape.id, options.frames, options.runs))
    print(report(results, options.frames))
    if options.json:
        options.json.write_text(json.dumps({"frames": options.frames, "runs": results}, indent=2))
    return 0 if max(run["ready_ms"] for run in results) <= INTERACTIVE_TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
