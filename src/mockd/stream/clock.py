"""Waiting against absolute deadlines, so that error never accumulates: one clock for replays, SSE
mocks and WebSocket scenarios.

The clock is ``time.monotonic()`` (uvloop's ``loop.time()`` ticks in whole milliseconds). Timers wake
late: Linux lets ``epoll_wait`` oversleep by 0.1 % of its timeout (timer slack: 2 ms on a 2 s gap), and
uvloop's timers tick in whole milliseconds. So a wait sleeps to a little before its deadline and yields
to the loop (without sleeping) for the last millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

SLACK_FRACTION = 0.002
SPIN = 0.001

now = time.monotonic


def nap_before(remaining: float) -> float:
    """How long to sleep (s) with ``remaining`` s left to a deadline; 0 means only yield to the loop."""
    if remaining <= SPIN:
        return 0.0
    return remaining - max(SPIN, remaining * SLACK_FRACTION)


async def sleep_until(deadline: float, stop: asyncio.Event | None = None) -> bool:
    """Sleep until ``deadline`` (:func:`now` units). Returns False if ``stop`` was set first."""
    while True:
        if stop is not None and stop.is_set():
            return False
        remaining = deadline - now()
        if remaining <= 0:
            return True
        nap = nap_before(remaining)
        if nap == 0:
            await asyncio.sleep(0)
        elif stop is None:
            await asyncio.sleep(nap)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), nap)
