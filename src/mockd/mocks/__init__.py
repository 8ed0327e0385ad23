"""Mocks: the registry that matches requests to mocks, and one module per kind of mock."""
