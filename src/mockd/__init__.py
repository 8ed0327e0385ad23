"""mockd: a mock server that records WebSocket and SSE streams and replays them as mocks.

The Python API: :class:`mockd.Server` (start mockd in this process or as a subprocess) and
:class:`mockd.Client` (a typed client of the admin API). Both are imported on first use, so that
``import mockd`` — and the ``mockd`` command — stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ApiError", "Client", "Server", "ServerError", "__version__"]

if TYPE_CHECKING:
    from mockd.admin.client import ApiError, Client
    from mockd.testing.embedded import Server, ServerError

_LAZY = {"Client": "mockd.admin.client", "ApiError": "mockd.admin.client", "Server": "mockd.testing.embedded",
         "ServerError": "mockd.testing.embedded"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mockd' has no attribute {name!r}")
