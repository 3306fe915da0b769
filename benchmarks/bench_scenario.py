"""One scenario end to end: wall time, peak memory and seconds per generator and stage.

Run from the repository root::

    python benchmarks/bench_scenario.py scenarios/census_100k.yaml            # the 100k-row scenario
    python benchmarks/bench_scenario.py scenarios/census_100k.yaml --workers 2

The scenario runs in a child process (`python -m suite run ... --quiet`) into a temporary folder;
its scorecard gives the seconds of every stage (fit, sample, each check) per generator.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness import emit, machine, secs, table
from run import PACKAGES, ROOT, generator_rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before the run is stopped")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "suite", "run", str(args.scenario), "--out", tmp, "--quiet"]
        command += ["--workers", str(args.workers)] if args.workers > 1 else []
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - start
        cards = sorted(Path(tmp).glob("*/scorecard.json"))
        card = json.loads(cards[0].read_text()) if cards else None
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child (Linux: KiB)
    emit(f"# {args.scenario.name} end to end")
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()
    shown = " ".join(c if not c.startswith("/tmp") else "<tmpdir>" for c in command[1:])
    emit(f"`python {shown}`: **{secs(wall)} s** wall, exit code {proc.returncode}, peak RSS {peak_mb:,.0f} MB.")
    emit()
    if card is None:
        emit(f"No scorecard.json was written. stderr:\n\n```\n{proc.stderr[-2000:]}\n```")
        return 1
    data = card["dataset"]
    emit(
        f"Data: {data['rows']:,} rows x {data['columns']} columns; train {data['train_rows']:,}, "
        f"control {data['control_rows']:,}, reference {data['reference_rows']:,}."
    )
    emit()
    headers, rows = generator_rows(card)
    emit(table(headers, rows))
    emit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
