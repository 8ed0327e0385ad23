"""mockd: a mock server that records WebSocket and SSE streams and replays them as mocks."""

__version__ = "0.1.0"
