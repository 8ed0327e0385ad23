"""The ``mockd`` pytest plugin run as users run it: pytest in a subprocess (pytester), loading the plugin
through its ``pytest11`` entry point, against a local fake upstream that is stopped before the replays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from mockd.config.model import mocks_from_document, parse_document
from mockd.testing.plugin import cassette_path, decide
from upstreams import HttpUpstream, ReceivedRequest, http_upstream

pytest_plugins = ["pytester"]

SECRET = "sk-live-secret"

USER_TESTS = f'''
import json, os, urllib.request
import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.mockd(upstream=os.environ.get("UPSTREAM"))
NAME = os.environ.get("NAME", "ann")


def get(url):
    request = urllib.request.Request(url, headers={{"Authorization": "Bearer {SECRET}"}})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def stream(url, prompt):
    request = urllib.request.Request(url + "/v1/chat", data=json.dumps({{"prompt": prompt}}).encode(),
                                     headers={{"Content-Type": "application/json"}}, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        return [line[6:] for line in response.read().decode().split("\\n") if line.startswith("data: ")]


def test_conversation(mockd):
    assert get(mockd.url + "/hello?name=" + NAME) == {{"hi": NAME}}
    assert stream(mockd.url, "one") == ["answer", "to", "one", "[DONE]"]
    assert stream(mockd.url, "two") == ["answer", "to", "two", "[DONE]"]
    with connect(mockd.ws_url("/ws")) as ws:
        assert ws.recv() == "welcome"
        ws.send("ping")
        assert ws.recv() == "echo ping"


class TestNamed:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, mockd, n):
        assert mockd.mode in ("record", "replay")
        assert get(mockd.url + f"/hello?name={{n}}") == {{"hi": str(n)}}
'''


async def fake_api(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
    if request.path == "/hello":
        return web.json_response({"hi": request.query.get("name", "")})
    if request.path == "/v1/chat":
        prompt = json.loads(received.body)["prompt"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        for word in ["answer", "to", prompt, "[DONE]"]:
            await response.write(f"data: {word}\n\n".encode())
        await response.write_eof()
        return response
    if request.path == "/ws":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("welcome")
        async for message in ws:
            await ws.send_str(f"echo {message.data}")
        return ws
    return web.Response(status=404)


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    async with http_upstream(fake_api) as running:
        yield running


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=120)


async def arun(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a subprocess while this loop keeps serving the upstream."""
    return await asyncio.to_thread(run, pytester, *args)


def cassettes(pytester: pytest.Pytester) -> list[str]:
    return sorted(str(path.relative_to(pytester.path)) for path in pytester.path.glob("cassettes/**/*.json"))


async def record_once(pytester: pytest.Pytester, upstream: HttpUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's tests recorded with ``once`` against the fake upstream."""
    pytester.makepyfile(test_user=USER_TESTS)
    monkeypatch.setenv("UPSTREAM", upstream.url)
    recorded = await arun(pytester, "--mockd-record-mode=once")
    recorded.assert_outcomes(passed=3)


# --- pure parts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "exists", "expected"), [
    ("none", True, "replay"), ("none", False, "missing"), ("once", True, "replay"), ("once", False, "record"),
    ("new_episodes", True, "new_episodes"), ("new_episodes", False, "record"), ("all", True, "record"),
    ("all", False, "record"),
])
def test_record_modes(mode: str, exists: bool, expected: str) -> None:
    assert decide(mode, exists) == expected


def test_cassette_paths_name_the_module_class_and_parameters(tmp_path: Path) -> None:
    test_file = tmp_path / "tests" / "test_chat.py"
    assert cassette_path(test_file, "test_x") == tmp_path / "tests" / "cassettes" / "test_chat" / "test_x.json"
    assert cassette_path(test_file, "test_p[a/b c]", "TestRoom").name == "TestRoom.test_p[a_b_c].json"


# --- as users run it --------------------------------------------------------------------------------


async def test_once_records_and_the_same_tests_pass_offline(pytester: pytest.Pytester, upstream: HttpUpstream,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    await record_once(pytester, upstream, monkeypatch)
    assert cassettes(pytester) == ["cassettes/test_user/TestNamed.test_param[1].json",
                                   "cassettes/test_user/TestNamed.test_param[2].json",
                                   "cassettes/test_user/test_conversation.json"]
    cassette = pytester.path / "cassettes/test_user/test_conversation.json"
    raw = cassette.read_text()
    assert SECRET not in raw, "a secret the client sent reached the cassette"
    kinds = sorted(mock.__struct_config__.tag for mock in mocks_from_document(parse_document(raw, "c"), "c"))
    assert kinds == ["http", "http", "http", "websocket"]  # GET, two streams, the WebSocket
    requests_recorded = len(upstream.requests)

    monkeypatch.setenv("UPSTREAM", "http://127.0.0.1:9")  # nothing answers there: replays must not need it
    replayed = await arun(pytester)
    replayed.assert_outcomes(passed=3)
    assert len(upstream.requests) == requests_recorded, "a replay reached the upstream"


async def test_a_changed_request_fails_with_the_near_miss(pytester: pytest.Pytester, upstream: HttpUpstream,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    await record_once(pytester, upstream, monkeypatch)
    monkeypatch.setenv("NAME", "bob")
    changed = await arun(pytester, "-k", "conversation")
    changed.assert_outcomes(failed=1, errors=1)
    changed.stdout.fnmatch_lines(["*mockd: the cassette *test_conversation.json does not match what the test did:*",
                                  "*No mock matches GET /hello; the closest is mock * (GET /hello): the "
                                  "request's query name is 'bob', not 'ann'*"])


async def test_a_missing_cassette_fails_with_one_line_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    missing = await arun(pytester, "-k", "conversation")
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines(["*mockd: no cassette at *cassettes/test_user/test_conversation.json; record it "
                                  "with: pytest --mockd-record-mode=once test_user.py::test_conversation*"])


async def test_new_episodes_adds_what_was_missing_and_keeps_the_rest(pytester: pytest.Pytester,
                                                                     upstream: HttpUpstream,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    await record_once(pytester, upstream, monkeypatch)
    cassette = pytester.path / "cassettes/test_user/test_conversation.json"
    before = json.loads(cassette.read_text())["mocks"]
    served_before = len(upstream.requests)
    monkeypatch.setenv("NAME", "bob")
    added = await arun(pytester, "-k", "conversation", "--mockd-record-mode=new_episodes")
    added.assert_outcomes(passed=1)
    after = json.loads(cassette.read_text())["mocks"]
    assert after[:len(before)] == before, "new_episodes changed what the cassette held"
    new = after[len(before):]
    assert [mock["http"]["matcher"]["query"] for mock in new] == [{"name": "bob"}]
    assert len(upstream.requests) == served_before + 1, "only the new request went upstream"

    monkeypatch.setenv("UPSTREAM", "http://127.0.0.1:9")
    for name in ("ann", "bob"):
        monkeypatch.setenv("NAME", name)
        (await arun(pytester, "-k", "conversation")).assert_outcomes(passed=1)


async def test_all_records_again(pytester: pytest.Pytester, upstream: HttpUpstream,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    await record_once(pytester, upstream, monkeypatch)
    cassette = pytester.path / "cassettes/test_user/test_conversation.json"
    first_ids = [mock["id"] for mock in json.loads(cassette.read_text())["mocks"]]
    (await arun(pytester, "-k", "conversation", "--mockd-record-mode=all")).assert_outcomes(passed=1)
    second_ids = [mock["id"] for mock in json.loads(cassette.read_text())["mocks"]]
    assert len(second_ids) == len(first_ids) and set(second_ids).isdisjoint(first_ids)


async def test_two_xdist_workers_record_and_replay(pytester: pytest.Pytester, upstream: HttpUpstream,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    pytester.makepyfile(test_user=USER_TESTS)
    monkeypatch.setenv("UPSTREAM", upstream.url)
    (await arun(pytester, "-n", "2", "--mockd-record-mode=once")).assert_outcomes(passed=3)
    assert len(cassettes(pytester)) == 3
    monkeypatch.setenv("UPSTREAM", "http://127.0.0.1:9")
    (await arun(pytester, "-n", "2")).assert_outcomes(passed=3)


ASYNC_USER_TESTS = '''
import asyncio, json
from pathlib import Path
import pytest
from websockets.asyncio.client import connect

RECORDING = Path(__file__).parent / "chat.json"


@pytest.mark.asyncio
@pytest.mark.mockd(cassette=Path(__file__).parent / "empty.json")
async def test_an_async_test_drives_a_triggered_replay(mockd):
    replay = mockd.replay_async(RECORDING, mode="triggered")
    async with connect(mockd.ws_url("/ws/chat")) as ws:
        await replay.wait_for("playing")
        assert (await replay.advance()).frames_sent == 1
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "welcome"
        assert (await replay.advance(until='"n": 1')).frames_sent == 3
        assert (await replay.status()).frames_sent == 4


@pytest.mark.mockd(allow_unused=False)
def test_unused_recordings_fail_when_asked(mockd):
    pass  # the cassette holds a request this test never makes
'''


async def test_async_replay_handles_and_allow_unused(pytester: pytest.Pytester, upstream: HttpUpstream,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "pytest"
    (pytester.path / "chat.json").write_bytes((examples / "recordings" / "chat.json").read_bytes())
    (pytester.path / "empty.json").write_text('{"version": "1.0", "mocks": []}')
    cassette = pytester.path / "cassettes" / "test_async_user" / "test_unused_recordings_fail_when_asked.json"
    cassette.parent.mkdir(parents=True)
    cassette.write_text(json.dumps({"version": "1.0", "mocks": [
        {"id": "never-asked", "type": "http", "http": {"matcher": {"method": "GET", "path": "/x"},
                                                        "response": {"body": "x"}}}]}))
    pytester.makepyfile(test_async_user=ASYNC_USER_TESTS)
    result = await arun(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*recorded mock 'never-asked' was never used*"])


async def test_timing_scale_zero_replays_a_slow_stream_at_once(pytester: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A cassette whose stream has a 3 s gap, replayed with timing_scale=0: well within the test's 2 s."""
    cassette = pytester.path / "cassettes" / "test_slow" / "test_slow_stream.json"
    cassette.parent.mkdir(parents=True)
    cassette.write_text(json.dumps({"version": "1.0", "mocks": [{"id": "slow", "type": "http", "http": {
        "matcher": {"method": "GET", "path": "/events"},
        "sse": {"events": [{"data": "a"}, {"data": "b"}], "timing": {"perEventDelays": [0, 3000]}}}}]}))
    pytester.makepyfile(test_slow="""
import time, urllib.request, pytest

@pytest.mark.mockd(timing_scale=0)
def test_slow_stream(mockd):
    started = time.monotonic()
    assert urllib.request.urlopen(mockd.url + "/events").read() == b"data: a\\n\\ndata: b\\n\\n"
    assert time.monotonic() - started < 2
""")
    (await arun(pytester)).assert_outcomes(passed=1)
