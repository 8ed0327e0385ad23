"""CI keeps the benchmark suite working: ``bench/run.py --quick`` must run every scenario P1–P9 and
write its JSON. The figures are not asserted (shared CI machines are noisy); they are judged from full
runs, in docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IDS = {f"P{n}" for n in range(1, 10)}


@pytest.mark.timeout(330)
def test_quick_benchmark_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
                          check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {row["id"] for row in report["rows"]} == IDS
    assert all(row["verdict"] in {"PASS", "MISS", "—"} for row in report["rows"])
    assert "| verdict" in done.stdout


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("kind", "messages"), [("ws", "20"), ("sse", "2000")])
def test_the_profiling_helper_reports_cpu_per_message_with_and_without_a_session(kind: str, messages: str,
                                                                                  tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "profile.py"), kind, "--messages", messages,
                           "--rounds", "1"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["no session", "recording"], done.stdout
    assert all("× direct" in line and "µs per message" in line for line in lines), done.stdout
