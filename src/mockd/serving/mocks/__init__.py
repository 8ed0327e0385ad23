"""The mocks mockd serves from its config: canned HTTP, SSE event schedules, WebSocket scenarios."""
