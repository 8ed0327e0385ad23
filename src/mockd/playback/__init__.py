"""The way back from a recording: into a mock config (:mod:`.convert`) or onto a socket again (replay)."""
