"""Large tables on a Dask cluster: the same run on a local cluster and in one process, timed and compared.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_scale.py                  # 200k and 400k rows, about 15 minutes here
    PYTHONPATH=. python benchmarks/bench_scale.py --rows 10000 20000 --blocked-pairs 1e6 --block-rows 4000  # a look

For every size N: N census rows drawn with replacement from data/census_kdd.parquet, the six measured numeric
columns (JITTERED) jittered by Normal(0, JITTER x the column's standard deviation) and kept as floats, so that
a row drawn twice is not an exact copy, written to a temporary parquet. One scenario (the `holdout`
generator: real unseen rows as the release, so no fit time; checks collisions, dcr and membership with the
distance attacker; split 50/25/25) runs twice with `python -m suite run`: on a LocalCluster of `--workers`
worker processes that this script starts (`--executor dask --address ...`), with searches above
`--blocked-pairs` pairs split into blocks of `--block-rows` rows, and in one process (`--executor local`).
Printed: wall time, peak RSS of every worker (VmHWM, read on the worker) and of the `suite run` process, the
seconds of every stage from the scorecards, and whether the two scorecards hold the same measurements
(exactly, and by `suite compare`). The 1M-row estimate extrapolates every stage from the two largest sizes
with the exponent they show (searches grow as N^2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from harness import emit, log, machine, secs, table

ROOT = Path(__file__).resolve().parents[1]
CENSUS = ROOT / "data" / "census_kdd.parquet"
JITTER = 0.01  # numeric jitter, as a share of the column's standard deviation
#: the measured numbers of the table (the industry and occupation recodes are codes: left alone)
JITTERED = ["age", "wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks", "weeks_worked_in_year"]
IDENTIFIERS = ["instance_weight", "split"]  # not people's attributes (as scenarios/census_100k.yaml)
CHECKS = ["collisions", "dcr", {"name": "membership", "params": {"attackers": ["distance"]}}]
PACKAGES = ("numpy", "pandas", "numba", "dask", "distributed")
TARGET = 1_000_000


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` census rows drawn with replacement, the JITTERED columns jittered (see the module docstring)."""
    census = pd.read_parquet(CENSUS)
    rng = np.random.default_rng(seed)
    out = census.iloc[rng.integers(0, len(census), rows)].reset_index(drop=True)
    for col in JITTERED:
        out[col] = out[col] + rng.normal(0.0, JITTER * float(census[col].std()), rows)
    return out


def write_scenario(folder: Path, data: Path) -> Path:
    scenario = {
        "name": "scale",
        "dataset": {
            "path": str(data),
            "roles": {
                "identifiers": IDENTIFIERS,
                "quasi_identifiers": ["age", "sex", "race", "education", "marital_stat"],
                "secrets": ["income_gt_50k"],
                "target": "income_gt_50k",
            },
        },
        "split": {"holdout": 0.5, "seed": 0},
        "generators": [{"name": "holdout"}],
        "checks": CHECKS,
        "output": str(folder / "runs"),
    }
    path = folder / "scale.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def run_suite(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MB of the `suite run` process, exit code, stderr tail)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "suite", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    return wall, usage.ru_maxrss / 1024, proc.returncode, tail


def worker_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measurements(card: dict[str, Any]) -> list[tuple]:
    return [
        (g["name"], m["name"], m.get("repeat"), repr(m["value"]), repr(m.get("ci")))
        for g in card["generators"]
        for m in g["measurements"]
    ]


def one_size(rows: int, folder: Path, workers: int, pairs: float, block_rows: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster, get_task_stream

    data = folder / f"census_{rows}.parquet"
    make_table(rows).to_parquet(data)
    scenario = write_scenario(folder, data)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SUITE_BLOCKED_PAIRS": f"{pairs:g}",
        "SUITE_BLOCK_ROWS": str(block_rows),
    }
    common = ["run", str(scenario), "--quiet", "--no-plan", "--keep-cache"]
    result: dict[str, Any] = {"rows": rows}
    log(f"[{rows:,} rows] on a LocalCluster of {workers} worker processes")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            address = cluster.scheduler_address
            out = folder / f"cluster_{rows}"
            with get_task_stream(client) as stream:
                wall, peak, code, err = run_suite(
                    [*common, "--out", str(out), "--executor", "dask", "--address", address], env
                )
            result["cluster"] = {"wall": wall, "client_mb": peak, "code": code, "err": err, "out": out}
            result["cluster"]["blocks"] = sum(str(t["key"]).startswith("suite-nearest-") for t in stream.data)
            result["cluster"]["workers_mb"] = sorted(client.run(worker_peak_mb).values())
    log(f"[{rows:,} rows] in one process")
    out = folder / f"local_{rows}"
    wall, peak, code, err = run_suite([*common, "--out", str(out)], env)
    result["local"] = {"wall": wall, "client_mb": peak, "code": code, "err": err, "out": out}
    cards, files = {}, {}
    for how in ("cluster", "local"):
        found = sorted(result[how]["out"].glob("*/scorecard.json"))
        files[how] = str(found[0]) if found else ""
        cards[how] = json.loads(found[0].read_text()) if found else None
        result[how]["card"] = cards[how]
    if cards["cluster"] and cards["local"]:
        result["equal"] = measurements(cards["cluster"]) == measurements(cards["local"])
        exact = ["--abs-tol", "0", "--rel-tol", "0"]
        compare = [sys.executable, "-m", "suite", "compare", files["local"], files["cluster"], *exact]
        result["compare_code"] = subprocess.run(compare, cwd=ROOT, env=env, capture_output=True).returncode
        result["n_measurements"] = len(measurements(cards["local"]))
        data_info = cards["local"]["dataset"]
        result["split"] = (data_info["train_rows"], data_info["control_rows"], data_info["reference_rows"])
    data.unlink()
    return result


def stages(card: dict[str, Any] | None) -> dict[str, float]:
    if card is None:
        return {}
    (g,) = card["generators"]
    return dict(g["seconds"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 400_000], help="table sizes, ascending")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--blocked-pairs", type=float, default=2e9, help="SUITE_BLOCKED_PAIRS for the cluster run")
    parser.add_argument("--block-rows", type=int, default=25_000, help="SUITE_BLOCK_ROWS for the cluster run")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sorted(args.rows):
            results.append(one_size(rows, Path(tmp), args.workers, args.blocked_pairs, args.block_rows))
    emit("# Large tables on a Dask cluster")
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()
    emit(
        f"Census rows drawn with replacement; {', '.join(JITTERED)} jittered by Normal(0, {JITTER} x sd); "
        "split 50/25/25; generator `holdout`; checks collisions, dcr, membership (distance attacker). "
        "Cluster: a LocalCluster of "
        f"{args.workers} worker processes x 1 thread, searches above {args.blocked_pairs:g} pairs in blocks of "
        f"{args.block_rows:,} rows. One process: `--executor local`."
    )
    emit()
    names = list(dict.fromkeys(s for r in results for how in ("cluster", "local") for s in stages(r[how]["card"])))
    headers = ["rows (train / control / reference)", "run", "wall s", *[f"{s} s" for s in names], "peak MB"]
    body = []
    for r in results:
        split = " / ".join(f"{v:,}" for v in r.get("split", ()))
        for how in ("cluster", "local"):
            run = r[how]
            seconds = stages(run["card"])
            if how == "cluster":
                peak = f"client {run['client_mb']:,.0f}; workers " + ", ".join(f"{v:,.0f}" for v in run["workers_mb"])
            else:
                peak = f"{run['client_mb']:,.0f}"
            cells = [secs(seconds[s]) if s in seconds else "" for s in names]
            label = f"{r['rows']:,} ({split})" if how == "cluster" else ""
            blocks = f", {run['blocks']:,} block tasks" if how == "cluster" else ""
            body.append([label, f"{how} (exit {run['code']}{blocks})", secs(run["wall"]), *cells, peak])
    emit(table(headers, body))
    emit()
    for r in results:
        same = r.get("equal")
        verdict = "identical" if same else "DIFFERENT" if same is not None else "not compared (a run failed)"
        emit(
            f"- {r['rows']:,} rows: the {r.get('n_measurements', 0)} measurements of the two scorecards are "
            f"{verdict} (value and interval, exactly); `suite compare --abs-tol 0 --rel-tol 0` exit code "
            f"{r.get('compare_code', 'n/a')} (0: nothing got worse)."
        )
        for how in ("cluster", "local"):
            if r[how]["card"] is None:
                emit(f"  - {how} run wrote no scorecard; stderr:\n\n```\n{r[how]['err']}\n```")
    if len(results) >= 2 and all(r[h]["card"] for r in results[-2:] for h in ("cluster", "local")):
        emit()
        emit(estimate(results[-2], results[-1], names))
    emit()
    return 0 if all(r.get("equal") for r in results) else 1


def linear(x0: float, y0: float, x1: float, y1: float, x: float) -> float:
    return y1 + (y1 - y0) / (x1 - x0) * (x - x1)


def estimate(small: dict[str, Any], large: dict[str, Any], names: list[str]) -> str:
    """Every stage of the cluster run at 1M rows, by the exponent the two largest sizes show."""
    ratio = math.log(TARGET / large["rows"])
    step = math.log(large["rows"] / small["rows"])
    parts, total = [], 0.0
    for s in names:
        a, b = stages(small["cluster"]["card"]).get(s), stages(large["cluster"]["card"]).get(s)
        if not a or not b:
            continue
        power = math.log(b / a) / step
        value = b * math.exp(power * ratio)
        total += value
        parts.append(f"{s} {secs(value)} s (x N^{power:.2f})")
    rest = [r["cluster"]["wall"] - sum(stages(r["cluster"]["card"]).values()) for r in (small, large)]  # load, split
    total += linear(small["rows"], rest[0], large["rows"], rest[1], TARGET)
    peaks = [max(r["cluster"]["workers_mb"]) for r in (small, large)]
    peak = linear(small["rows"], peaks[0], large["rows"], peaks[1], TARGET)
    return (
        f"**1M-row estimate** (cluster run, extrapolated from {small['rows']:,} and {large['rows']:,} rows on this "
        f"machine): {', '.join(parts)}; with loading and reports (linear) about **{total / 60:,.0f} minutes** wall, "
        f"largest worker peak about {peak:,.0f} MB (linear). More workers divide the search stages by about "
        "(cores of the cluster) / (cores here)."
    )


if __name__ == "__main__":
    sys.exit(main())
