"""Benchmarks: the suite's Gower engine and DCR check beside the libraries a user would otherwise call.

Run from the repository root::

    python benchmarks/run.py            # full run, about 8 minutes on 2 cores
    python benchmarks/run.py --quick    # smallest sizes only, under 2 minutes

Markdown tables go to stdout, progress to stderr. Three parts, all in the same run:

1. Top-1 nearest neighbour under Gower's distance on the shipped COVID table:
   ``suite.neighbors.nearest`` against ``gower.gower_matrix`` + argmin per row (seconds, ratio,
   peak memory, and the largest difference between the two top-1 distances).
2. The ``dcr`` check (``suite.metrics.dcr.DCRMetric``) against sdmetrics' ``DCRBaselineProtection``.
3. The quickstart scenario end to end, with the per-generator seconds from its scorecard.

Every timed case runs in a fresh ``spawn`` child, so its peak RSS (``ru_maxrss``) is its own;
memory is reported above an idle child that imported the same modules and built the same inputs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import gower
import numpy as np
import pandas as pd
from harness import emit, log, machine, measure, secs, table, timed

from suite.neighbors import GowerEncoder, nearest
from suite.types import Context

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "covid_testing.parquet"
METADATA = ROOT / "data" / "covid_testing.metadata.json"
DROPPED = ["subject_id", "fake_first_name", "fake_last_name", "test_id"]
NUMERICAL = ["pan_day", "age", "ct_result", "col_rec_tat", "rec_ver_tat"]
JITTER = 0.01  # numerical jitter, as a share of the column's standard deviation
MISSING = "(missing)"  # what a missing category becomes in the NaN-free copy for `gower`

NN_SIZES = [(1_000, 2_000), (5_000, 6_000), (10_000, 11_000)]  # unequal: gower 0.1.2 is wrong on equal sizes
DCR_ROWS = [1_000, 2_000, 5_000]
GOWER_LIMIT_GB = 4.0  # skip gower when its float32 n x m matrix would exceed this
GOWER_SECONDS_PER_PAIR = 1.5e-6  # measured on a 2-core AMD EPYC; only for the progress line
SUITE_REPEATS = 3  # the suite's search is timed best of 3 (gower once: it takes seconds to minutes)
NN_TIMEOUT = 900.0
DCR_TIMEOUT = 300.0
QUICKSTART_TIMEOUT = 900.0
PACKAGES = ("numpy", "pandas", "torch", "sdv", "sdmetrics", "gower")


# --------------------------------------------------------------------------- formatting


def ratio(slow: float, fast: float) -> str:
    value = slow / fast
    return f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"


# --------------------------------------------------------------------------- 1. nearest neighbour


@cache
def covid_table() -> pd.DataFrame:
    return pd.read_parquet(DATA).drop(columns=DROPPED)


def categorical(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in NUMERICAL]


def jittered_sample(table_: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = rng.choice(len(table_), size, replace=size > len(table_))
    frame = table_.iloc[rows].reset_index(drop=True)
    for col in NUMERICAL:
        frame[col] = frame[col].astype(float) + rng.normal(0.0, JITTER * table_[col].std(), size)
    return frame


def without_nan(frame: pd.DataFrame, table_: pd.DataFrame) -> pd.DataFrame:
    """The copy `gower` gets: missing numbers -> the column median, missing categories -> a level."""
    out = frame.copy()
    for col in NUMERICAL:
        out[col] = out[col].fillna(table_[col].median())
    for col in categorical(out):
        out[col] = out[col].astype(object).where(out[col].notna(), MISSING)
    return out


def nn_frames(n: int, m: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Query (n rows) and reference (m rows), as is and without NaN; the same for every case."""
    table_ = covid_table()
    rng = np.random.default_rng(seed)
    query, reference = jittered_sample(table_, n, rng), jittered_sample(table_, m, rng)
    return {
        "query": query,
        "reference": reference,
        "query_filled": without_nan(query, table_),
        "reference_filled": without_nan(reference, table_),
    }


def suite_top1(query: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    encoder = GowerEncoder(numerical=NUMERICAL, categorical=categorical(query)).fit(query, reference)
    return nearest(encoder.transform(query), encoder.transform(reference))[0][:, 0]


def gower_top1(query: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    matrix = gower.gower_matrix(query, reference, cat_features=[c not in NUMERICAL for c in query.columns])
    best = matrix.argmin(axis=1)
    return matrix[np.arange(len(matrix)), best].astype(np.float64)


def case_nn_idle(n: int, m: int) -> tuple[float, None]:
    nn_frames(n, m)
    return 0.0, None


def case_nn_suite(n: int, m: int) -> tuple[float, None]:
    frames = nn_frames(n, m)
    seconds, _ = timed(lambda: suite_top1(frames["query"], frames["reference"]), SUITE_REPEATS)
    return seconds, None


def case_nn_gower(n: int, m: int) -> tuple[float, np.ndarray]:
    frames = nn_frames(n, m)
    return timed(lambda: gower_top1(frames["query_filled"], frames["reference_filled"]))


def gower_matrix_gb(n: int, m: int) -> float:
    return n * m * 4 / 1e9  # gower_matrix allocates a float32 n x m result


def nn_row(n: int, m: int) -> list[str]:
    label = f"{n:,} x {m:,}"
    log(f"[nn] {label}: idle child")
    idle = measure(case_nn_idle, NN_TIMEOUT, n=n, m=m)
    log(f"[nn] {label}: suite.neighbors.nearest")
    suite = measure(case_nn_suite, NN_TIMEOUT, n=n, m=m)
    above = lambda o: f"{max(0.0, o.peak_mb - idle.peak_mb):.0f}" if o.ok and idle.ok else "n/a"
    suite_s = secs(suite.seconds) if suite.ok else suite.status
    if gower_matrix_gb(n, m) > GOWER_LIMIT_GB:
        skipped = f"skipped ({n:,} x {m:,} matrix would need {gower_matrix_gb(n, m):.1f} GB)"
        return [label, suite_s, skipped, "", above(suite), "", ""]
    log(f"[nn] {label}: gower.gower_matrix + argmin (roughly {GOWER_SECONDS_PER_PAIR * n * m:.0f} s)")
    gow = measure(case_nn_gower, NN_TIMEOUT, n=n, m=m)
    if not gow.ok:
        return [label, suite_s, gow.status, "", above(suite), "", ""]
    frames = nn_frames(n, m)
    diff = float(np.max(np.abs(suite_top1(frames["query_filled"], frames["reference_filled"]) - gow.payload)))
    speedup = ratio(gow.seconds, suite.seconds) if suite.ok else ""
    return [label, suite_s, secs(gow.seconds), speedup, above(suite), above(gow), f"{diff:.1e}"]


def nn_section(sizes: Sequence[tuple[int, int]]) -> None:
    emit("## 1. Top-1 nearest neighbour, Gower distance (covid_testing, 13 columns: 5 numerical, 8 categorical)")
    emit()
    headers = [
        "query x reference",
        "suite s",
        "gower s",
        "gower / suite",
        "suite peak MB",
        "gower peak MB",
        "max abs diff of top-1 distances",
    ]
    emit(table(headers, [nn_row(n, m) for n, m in sizes]))
    emit()
    emit(
        "- suite: `GowerEncoder(...).fit(query, reference)`, `transform`, `nearest(k=1)` on the data as is "
        f"(with its missing values); best of {SUITE_REPEATS}. gower: `gower.gower_matrix(query, reference, "
        "cat_features=...)` then argmin per row, one run."
    )
    emit(
        "- gower 0.1.2 returns NaN for rows with a missing number, so it gets a copy without NaN (missing numbers "
        "-> the column median, missing categories -> a level of their own); the last column compares both "
        "libraries on that copy."
    )
    emit(
        "- Rows sampled (with replacement when needed) from the table, numerical columns jittered by "
        f"N(0, ({JITTER} sd)^2). Sizes are unequal on purpose: when both tables have the same row count, "
        "gower 0.1.2 assumes they are the same table and mirrors half of the matrix."
    )
    emit(
        "- Peak MB: peak RSS of a fresh child running the case minus that of an idle child that imported the "
        "same modules and built the same inputs."
    )
    emit()


# --------------------------------------------------------------------------- 2. DCR check


def subsample(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    picked = np.sort(rng.choice(len(frame), min(rows, len(frame)), replace=False))
    return frame.iloc[picked].reset_index(drop=True)


def dcr_context(rows: int) -> Context:
    """Train subsampled to ``rows``, control in the quickstart's proportion, marginals output of ``rows``."""
    from suite.dataset import prepare
    from suite.generators.marginals import MarginalsGenerator
    from suite.metadata import Roles

    roles = Roles(identifiers=("subject_id", "fake_first_name", "fake_last_name"), entity="subject_id")
    data = prepare(DATA, metadata_path=METADATA, roles=roles, holdout=0.3, seed=0)
    rng = np.random.default_rng(0)
    train = subsample(data.train, rows, rng)
    control = subsample(data.control, round(rows * len(data.control) / len(data.train)), rng)
    synthetic = MarginalsGenerator().fit(train, data.metadata).sample(rows, seed=0)
    synthetic = synthetic[list(train.columns)]
    return Context(train=train, holdout=control, synthetic=synthetic, metadata=data.metadata, seed=0)


def case_dcr_suite(rows: int) -> tuple[float, dict[str, float]]:
    from suite.metrics.dcr import DCRMetric

    ctx = dcr_context(rows)
    seconds, measurements = timed(lambda: DCRMetric().evaluate(ctx))
    by_name = {m.name: m for m in measurements}
    median = by_name["dcr.median_distance_to_train"].value
    return seconds, {"median": median, "control_rows": len(ctx.holdout)}


def case_dcr_sdmetrics(rows: int) -> tuple[float, dict[str, float]]:
    from sdmetrics.single_table import DCRBaselineProtection

    warnings.simplefilter("ignore")
    ctx = dcr_context(rows)
    metadata = ctx.metadata.to_sdv_dict()
    seconds, result = timed(
        lambda: DCRBaselineProtection.compute_breakdown(
            real_data=ctx.train, synthetic_data=ctx.synthetic, metadata=metadata, table_name=None
        )
    )
    return seconds, {"median": result["median_DCR_to_real_data"]["synthetic_data"]}


def dcr_row(rows: int) -> list[str]:
    log(f"[dcr] {rows:,} rows: suite dcr check")
    suite = measure(case_dcr_suite, DCR_TIMEOUT, rows=rows)
    log(f"[dcr] {rows:,} rows: sdmetrics DCRBaselineProtection (limit {DCR_TIMEOUT:.0f} s)")
    sdm = measure(case_dcr_sdmetrics, DCR_TIMEOUT, rows=rows)
    show = lambda o: secs(o.seconds) if o.ok else o.status
    median = lambda o: f"{o.payload['median']:.4f}" if o.ok else ""
    control = str(suite.payload["control_rows"]) if suite.ok else ""
    speedup = ratio(sdm.seconds, suite.seconds) if suite.ok and sdm.ok else ""
    return [f"{rows:,}", control, show(suite), show(sdm), speedup, median(suite), median(sdm)]


def dcr_section(sizes: Sequence[int]) -> None:
    emit("## 2. Distance to closest record: `dcr` check vs sdmetrics `DCRBaselineProtection`")
    emit()
    headers = [
        "train = synthetic rows",
        "control rows",
        "suite dcr s",
        "sdmetrics s",
        "sdmetrics / suite",
        "median DCR, suite",
        "median DCR, sdmetrics",
    ]
    emit(table(headers, [dcr_row(rows) for rows in sizes]))
    emit()
    emit(
        "- Quickstart split (`suite.dataset.prepare`, holdout 0.3, seed 0); train subsampled to the row count, "
        "the holdout control in the same proportion; synthetic = `marginals` fitted on that train."
    )
    emit(
        "- suite: `suite.metrics.dcr.DCRMetric().evaluate(ctx)`: three searches (synthetic->train, synthetic->control, "
        "control->train) plus bootstrap intervals. sdmetrics: `DCRBaselineProtection.compute_breakdown(train, "
        "synthetic, metadata.to_sdv_dict())`: two searches (synthetic->train, random->train)."
    )
    emit(
        f"- Each case runs in a fresh child, killed past {DCR_TIMEOUT:.0f} s. The medians differ by design: "
        "sdmetrics counts a number missing on one side as distance 1 and caps each column at 1; the suite "
        "leaves such a column out (Gower's rule)."
    )
    emit()


# --------------------------------------------------------------------------- 3. quickstart


def run_quickstart() -> tuple[float, int, dict[str, Any] | None, str]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "suite", "run", "scenarios/quickstart.yaml", "--out", tmp, "--quiet"]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=QUICKSTART_TIMEOUT)
        wall = time.perf_counter() - start
        cards = sorted(Path(tmp).glob("*/scorecard.json"))
        card = json.loads(cards[0].read_text()) if cards else None
    return wall, proc.returncode, card, proc.stderr[-2000:]


def generator_rows(card: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    stages = list(dict.fromkeys(stage for g in card["generators"] for stage in g["seconds"]))
    rows, totals = [], dict.fromkeys(stages, 0.0)
    for g in card["generators"]:
        seconds = g["seconds"]
        for stage in stages:
            totals[stage] += seconds.get(stage, 0.0)
        cells = [secs(seconds[s]) if s in seconds else "" for s in stages]
        rows.append([g["name"], g["verdict"], *cells, secs(sum(seconds.values()))])
    rows.append(["**all generators**", "", *(secs(totals[s]) for s in stages), secs(sum(totals.values()))])
    return ["generator", "verdict", *stages, "total"], rows


def quickstart_section() -> None:
    emit("## 3. Quickstart end to end")
    emit()
    log("[quickstart] python -m suite run scenarios/quickstart.yaml --out <tmp> --quiet")
    wall, code, card, stderr = run_quickstart()
    command = "python -m suite run scenarios/quickstart.yaml --out <tmpdir> --quiet"
    emit(f"`{command}`: **{secs(wall)} s** wall, exit code {code}.")
    emit()
    if card is None:
        emit(f"No scorecard.json was written. stderr:\n\n```\n{stderr}\n```")
        return
    headers, rows = generator_rows(card)
    emit(table(headers, rows))
    emit()
    emit(
        "- Seconds per generator from `scorecard.json` (`generators[].seconds`). The wall time also covers "
        "interpreter start-up, imports, loading and splitting the table and writing the reports."
    )
    emit()


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes only (under 2 minutes)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    emit(f"# synth-release-gate benchmarks ({'quick' if args.quick else 'full'} run)")
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()
    nn_section(NN_SIZES[:1] if args.quick else NN_SIZES)
    dcr_section(DCR_ROWS[:1] if args.quick else DCR_ROWS)
    quickstart_section()
    emit(f"Benchmark total: {secs(time.perf_counter() - start)} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
