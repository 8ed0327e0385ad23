"""What the browser tests share: Debian's chromium, driven by playwright through ``executable_path``
(a browser is never downloaded); a module that needs it calls :func:`require_chromium` first."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip the calling test module when chromium is not installed."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (the Debian chromium package is required)",
                    allow_module_level=True)
