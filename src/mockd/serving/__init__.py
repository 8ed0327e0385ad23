"""The mock listener and its process: the server (:mod:`.server`), the one request handler that picks a
mock (:mod:`.registry`), the mocks (:mod:`.mocks`), the proxy to a real upstream (:mod:`.proxy`, with
:mod:`.wsbytes`' byte relay), and what they share on the way out (TLS, headers, JSON errors, the access
log, the ready file)."""
