"""Defaults for every test's `mockd` fixture (refine them per test with @pytest.mark.mockd(...))."""

import os

import pytest


@pytest.fixture
def mockd_config() -> dict:
    return {
        # Only used when recording (pytest --mockd-record-mode=once/all); replays never reach it.
        "upstream": os.environ.get("EXAMPLE_UPSTREAM", "http://127.0.0.1:8765"),
        "filter_headers": ["OpenAI-Organization"],  # Authorization, Cookie, X-API-Key... are redacted anyway
    }
