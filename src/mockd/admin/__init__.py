"""The admin API: a JSON REST API beside the mock listener (health, mocks; recordings and replays later)."""
