"""What every producer of a stream shares: the stream events they emit (:mod:`.events`), the wire
formats (:mod:`.ssewire`, :mod:`.wsscan`), the WebSocket close rules (:mod:`.wsclose`) and absolute
deadlines (:mod:`.clock`)."""
