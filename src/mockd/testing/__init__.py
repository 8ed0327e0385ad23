"""mockd from Python and pytest: an in-process or subprocess server (:mod:`.embedded`), cassettes
(:mod:`.cassettes`) and the pytest plugin (:mod:`.plugin`)."""
