"""R4 (docs/faults.md): the admin API fuzzed from its own ``/openapi.json`` with schemathesis (valid and
invalid inputs): no 5xx, every response matches its documented schema and content type, and every status a route
returns is documented for that route.

Schemathesis runs as its ``st run`` CLI in a subprocess against a throwaway ``mockd serve`` (seeded with a
mock and a finished recording), so operations with side effects (DELETE, stop, vacuum, replay) cannot
break anything but that server. The run is bounded: ``MOCKD_FUZZ_EXAMPLES`` examples per operation
(default 20) and ``MOCKD_FUZZ_SECONDS`` for the whole run (default 30); ``MOCKD_FUZZ_SEED`` fixes the
seed (default a constant, so CI runs are reproducible).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from dataclasses import dataclass

import pytest

from processes import MockdFactory, RunningMockd
from configs import http_mock, mocks_config, ws_mock
from httpclient import call

pytestmark = pytest.mark.fault

EXAMPLES = int(os.environ.get("MOCKD_FUZZ_EXAMPLES", "20"))
SECONDS = int(os.environ.get("MOCKD_FUZZ_SECONDS", "30"))
SEED = os.environ.get("MOCKD_FUZZ_SEED", "20260501")
# Each R4 demand, the schemathesis check that verifies it, and the failure codes that check reports.
CHECKS: dict[str, tuple[str, set[str]]] = {
    "not_a_server_error": ("no 5xx", {"ST101", "ST102"}),
    "status_code_conformance": ("every status a route returns is documented", {"ST103"}),
    "response_schema_conformance": ("every response matches its schema",
                                    {"ST108", "ST109", "ST110", "ST111", "ST114", "ST115"}),
    "content_type_conformance": ("every response has its documented content type", {"ST104", "ST105", "ST106"}),
}


@dataclass
class FuzzRun:
    server: RunningMockd
    returncode: int
    output: str
    failures: dict[str, int]  # "ST101 Server error" -> count


def st_command() -> list[str]:
    script = Path(sys.executable).with_name("st")
    if script.exists():
        return [str(script)]
    found = shutil.which("st")
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return [found]


@pytest.fixture(scope="module")
def fuzz_run(mockd_module: MockdFactory) -> FuzzRun:
    """One bounded schemathesis run with every R4 check, against a throwaway seeded server."""
    command = st_command()
    server = mockd_module.start(mocks_config(http_mock("hello", "/hello", {"hi": 1}), ws_mock("echo", "/ws/echo")))
    started = call("POST", f"{server.admin_url}/stream-recordings/start", {"protocol": "websocket", "path": "/ws/echo"})
    assert started.status == 201, started.text
    stopped = call("POST", f"{server.admin_url}/stream-recordings/{started.json()['recordingId']}/stop")
    assert stopped.status == 200, stopped.text
    command += ["run", f"{server.admin_url}/openapi.json", "--checks", ",".join(CHECKS),
                "--max-examples", str(EXAMPLES), "--max-time", str(SECONDS), "--seed", SEED,
                "--workers", "1", "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all",
                "--request-timeout", "10", "--no-color"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 60,
                            env={**os.environ, "NO_COLOR": "1"})
    output = result.stdout + result.stderr
    failures = {name: int(count) for name, count in re.findall(r"❌ (ST\d+ [^:\n]+): (\d+)", output)}
    return FuzzRun(server, result.returncode, output, failures)


def test_r4_schemathesis_ran_every_operation(fuzz_run: FuzzRun) -> None:
    match = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", fuzz_run.output)
    assert match, f"schemathesis did not run: {fuzz_run.output[-3000:]}"
    selected, total, tested = map(int, match.groups())
    assert selected == total == tested > 0
    assert fuzz_run.server.process.poll() is None, "mockd died under the fuzzer"


@pytest.mark.parametrize("check", list(CHECKS), ids=list(CHECKS))
def test_r4_admin_api_fuzzed_from_its_openapi(fuzz_run: FuzzRun, check: str) -> None:
    demand, codes = CHECKS[check]
    found = {name: count for name, count in fuzz_run.failures.items() if name.split()[0] in codes}
    assert not found, (f"{demand}: schemathesis found {found}; its report:\n{fuzz_run.output[-6000:]}"
                       f"\nmockd's log:\n{fuzz_run.server.stderr[-3000:]}")


def test_r4_no_failure_outside_the_checked_codes(fuzz_run: FuzzRun) -> None:
    known = set().union(*(codes for _, codes in CHECKS.values()))
    assert all(name.split()[0] in known for name in fuzz_run.failures), fuzz_run.failures
    assert fuzz_run.returncode == (1 if fuzz_run.failures else 0), fuzz_run.output[-3000:]
