"""HTTP header rules shared by the proxy and by whatever serves a recorded response again."""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Describe the bytes as they crossed the wire once, not as a mock writes them again: the recorded body
# is kept decompressed and re-framed, and the date is the recording's.
NOT_REPLAYED = HOP_BY_HOP | {"content-length", "content-encoding", "date"}


def replayable_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Recorded response headers a mock or a replay sends again (redacted values stay redacted)."""
    return {name: value for name, value in headers if name.lower() not in NOT_REPLAYED}
