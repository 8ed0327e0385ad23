"""Plumbing every layer may use and which uses none of them: atomic private files (:mod:`.files`), the
files by which processes find a running mockd (:mod:`.runtime`), the log formats (:mod:`.logs`)."""
