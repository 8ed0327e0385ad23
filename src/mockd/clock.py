"""Waiting against absolute deadlines on the event loop clock, so that error never accumulates."""

from __future__ import annotations

import asyncio


async def wait_until(deadline: float, stop: asyncio.Event | None = None) -> bool:
    """Sleep until ``deadline`` (``loop.time()`` units). Returns False if ``stop`` was set first."""
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if stop is None:
        if delay > 0:
            await asyncio.sleep(delay)
        return True
    if stop.is_set():
        return False
    if delay <= 0:
        return True
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return True
    return False
