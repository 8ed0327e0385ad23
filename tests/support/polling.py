"""Waiting for something that should happen soon: the one set of polling helpers, async and sync.

A test never sleeps in place of synchronisation: it polls a condition (or fetches a value) with a
deadline. The ``*_until`` / ``*_value`` helpers return what they saw last, so the caller's own
assertion says what was missing; :func:`wait_until` and :func:`poll` fail by themselves, naming what
was awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

SOON = 10.0  # for anything that should happen "soon" on a noisy two-core machine
INTERVAL = 0.02  # between two looks: short against SOON, long enough not to busy a shared core

T = TypeVar("T")


async def poll_until(condition: Callable[[], bool], timeout: float = SOON, interval: float = INTERVAL) -> bool:
    """Poll ``condition`` (yielding to the event loop) until it holds or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        await asyncio.sleep(interval)
    return True


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = SOON,
                     interval: float = 0.01) -> None:
    """:func:`poll_until`, failing after ``timeout`` with a message naming ``what``."""
    assert await poll_until(condition, timeout, interval), f"timed out after {timeout}s waiting for {what}"


async def poll_value(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = SOON,
                     interval: float = INTERVAL) -> T:
    """Await ``fetch()`` until ``done`` holds for what it gave or ``timeout`` passes; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def poll_until_sync(condition: Callable[[], bool], timeout: float = SOON, interval: float = INTERVAL) -> bool:
    """:func:`poll_until` for synchronous tests (blocking the thread between looks)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(interval)
    return True


def poll(condition: Callable[[], bool], what: str, timeout: float = SOON, interval: float = INTERVAL) -> None:
    """:func:`wait_until` for synchronous tests: poll ``condition`` until it holds, or fail after ``timeout``."""
    assert poll_until_sync(condition, timeout, interval), f"timed out after {timeout}s waiting for {what}"


def poll_value_sync(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = SOON,
                    interval: float = INTERVAL) -> T:
    """:func:`poll_value` for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


async def eventually(attempt: Callable[[], Awaitable[None]], timeout: float = SOON, interval: float = 0.05,
                     retry_on: tuple[type[BaseException], ...] = (AssertionError,)) -> None:
    """Retry ``attempt`` until it stops raising ``retry_on`` (for server-side bookkeeping that finishes
    after a close); after ``timeout`` its last failure is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await attempt()
            return
        except retry_on:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)
