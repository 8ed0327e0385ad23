"""The ``mockd`` command: the server commands (:mod:`.main`) and the stream-recordings commands."""
