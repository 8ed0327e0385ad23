"""Shared fixtures: a real ``mockd serve`` process on free ports, reached over real sockets.

The helpers these fixtures and the tests use live in ``tests/support`` (on ``sys.path`` through
``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import MockdFactory


@pytest.fixture
def mockd(tmp_path: Path) -> Iterator[MockdFactory]:
    """Start mockd servers with ``mockd.start(config, *extra_args)``; all are stopped after the test."""
    factory = MockdFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def mockd_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockdFactory]:
    """As ``mockd``, but servers live for the whole test module (for tests that share one config)."""
    factory = MockdFactory(tmp_path_factory.mktemp("mockd"))
    yield factory
    factory.stop_all()
