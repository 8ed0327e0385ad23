"""What can go wrong with a replay, drawn in one place. The admin layer maps each to its HTTP answer."""

from __future__ import annotations


class ReplayError(Exception):
    """A replay that cannot be made from this recording with these options (the API's 400)."""


class ReplayFailed(Exception):
    """A fault while carrying out a replay: it ends in ``error`` with this message."""


class ReplayConflict(Exception):
    """Not possible in the replay's state (the API's 409, with ``code``)."""

    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class ReplayBadRequest(Exception):
    """Never possible for this replay (the API's 400, with ``code``)."""

    def __init__(self, message: str, code: str = "not_triggered") -> None:
        super().__init__(message)
        self.code = code
