"""Run the mockd performance suite (P1–P9, docs/benchmarks.md): a table on stdout, JSON results in a file.

    .venv/bin/python bench/run.py [--quick] [--json OUT] [--only P1,P3]

Every speed figure is a ratio against a baseline measured in the same run (the same client against
the upstream directly; mitmdump in reverse mode when installed; for P9 also nginx and the minimal
aiohttp relay from the peer relays' directory, $MOCKD_BENCH_PEERS, by default ../shared/bench beside
the project) or a timing error. A peer that cannot run here is skipped with a note. ``--quick`` runs
every scenario at a small size (well under a minute); CI runs it to keep the suite working.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RELAYS, placement, relay_missing
from scenarios import SCENARIOS, Context, Row

ALL = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")
COLUMNS = (("id", "id"), ("what", "what"), ("measured", "measured"), ("baseline", "baseline (direct)"),
           ("mitmproxy", "mitmproxy"), ("value", "ratio/value"), ("target", "target"), ("verdict", "verdict"))


def table(rows: list[Row]) -> str:
    cells = [[header for _, header in COLUMNS]] + [[str(getattr(row, key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def machine() -> dict[str, object]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(), "placement": placement(),
            "peers": {name: relay_missing(name) or "available" for name in RELAYS}}


def run(quick: bool, only: set[str]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mockd-bench-") as workdir:
        context = Context(quick=quick, workdir=Path(workdir))
        for ids, scenario in SCENARIOS.items():
            if only & set(ids.split(",")):
                started = time.perf_counter()
                rows += attempt(scenario, context, only, ids)
                print(f"[{ids}] done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return sorted(rows, key=lambda row: row.id)


def attempt(scenario: Callable[[Context, set[str]], list[Row]], context: Context, only: set[str],
            ids: str) -> list[Row]:
    """The scenario's rows, or one ERROR row per id when it failed (the run then exits 1)."""
    try:
        return scenario(context, only)
    except Exception as error:  # noqa: BLE001 - reported in the table, the JSON and the exit status
        traceback.print_exc()
        return [Row(item, "scenario failed", f"{type(error).__name__}: {error}"[:200], "—", "—", "—", "ERROR")
                for item in sorted(only & set(ids.split(",")))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every scenario at a small size")
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "latest.json")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated ids, e.g. P1,P3")
    args = parser.parse_args()
    only = {item.strip().upper() for item in args.only.split(",") if item.strip()}
    if unknown := only - set(ALL):
        parser.error(f"unknown scenario ids: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    rows = run(args.quick, only)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv), "quick": args.quick,
              "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
              "rows": [row.as_dict() for row in rows]}
    print(table(rows))
    print(f"\nmachine: {json.dumps(report['machine'])}; {report['seconds']} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"JSON results: {args.json}")
    return 1 if any(row.verdict == "ERROR" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
