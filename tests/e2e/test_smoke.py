"""The server starts, serves an HTTP mock, and stops cleanly on SIGTERM."""

import urllib.request

from configs import mocks_config


def test_serves_http_mock_and_stops_with_status_zero(mockd):
    server = mockd.start(mocks_config({"id": "hello", "type": "http", "http": {
        "matcher": {"method": "GET", "path": "/api/hello"},
        "response": {"statusCode": 200, "body": {"msg": "hi"}}}}))
    with urllib.request.urlopen(f"{server.mock_url}/api/hello") as response:
        assert response.status == 200
        assert response.read() == b'{"msg":"hi"}'
        assert response.headers["Content-Type"].startswith("application/json")
    assert server.stop() == 0
