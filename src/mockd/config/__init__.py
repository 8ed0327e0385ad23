"""What mockd is told: the mock config file (:mod:`.model`), the process settings (:mod:`.settings`) and
the duration syntax both use (:mod:`.durations`)."""
