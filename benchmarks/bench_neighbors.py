"""Benchmark: top-1 and top-10 Gower nearest neighbours at 10k and 100k rows, beside gower and sdmetrics.

Run from the repository root::

    python benchmarks/bench_neighbors.py            # 10k and 100k rows (about 10 minutes on 2 cores)
    python benchmarks/bench_neighbors.py --more     # also 50k and 10k x 50k/100k both ways (top-1)
    python benchmarks/bench_neighbors.py --quick    # 5k and 10k rows, sdmetrics estimated only (about 1.5 minutes)

A Markdown report goes to stdout, progress to stderr. The data is the UCI Census-Income KDD table
(``data/census_kdd.parquet``, 299,285 rows), 20 of its columns (7 numerical, 13 categorical, two of
them with missing values). For every size the query and the reference are disjoint random row
samples (seed 0). What is timed, each in a fresh ``spawn`` child (``benchmarks/harness.py``):

* suite: ``GowerEncoder(...).fit(reference)``, ``transform`` of both tables and
  ``suite.neighbors.nearest(k=1)`` and ``k=10``, with the compiled kernel (``backend="numba"``, the
  default) and the numpy reference path (float32 screening, exact float64 values for the
  candidates); the two answers are compared (largest distance difference, share of equal
  indices). At the smaller sizes also numpy with the screening off (float64 tiles only) and
  ``backend="torch"``.
* ``gower.gower_topn(row, reference, n=1)``: gower 0.1.2's top-n takes one query row per call (it
  ignores any other row), so it is timed on the first few query rows, for at least
  ``TOPN_SECONDS`` or ``TOPN_MAX_ROWS`` rows, and the time per row is multiplied by the query size.
* sdmetrics' ``calculate_dcr(query, reference, metadata)`` (the top-1 search behind
  ``DCRBaselineProtection`` and ``DCROverfittingProtection`` in 0.32), killed past ``TIMEOUT``
  seconds. It is measured at ``SDM_BASE`` rows a side and its cost per pair gives the estimate of
  the larger sizes (a size is run only when its estimate is within the limit).

Peak memory is the child's peak RSS (``VmHWM``) minus that of an idle child that loaded the same
table and built the same samples. A last child checks the values against ``gower.gower_matrix`` on
unequal sizes (gower 0.1.2 is wrong on equal ones: it then takes the two tables for one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness import Outcome, emit, load_average, log, machine, measure, secs, table, timed

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "census_kdd.parquet"
NUMERICAL = [
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "num_persons_worked_for_employer",
    "weeks_worked_in_year",
]
CATEGORICAL = [
    "class_of_worker",
    "education",
    "marital_stat",
    "major_industry_code",
    "major_occupation_code",
    "race",
    "hispanic_origin",  # has missing values
    "sex",
    "tax_filer_stat",
    "detailed_household_summary_in_household",
    "country_of_birth_self",  # has missing values
    "citizenship",
    "income_gt_50k",
]
MISSING = "(missing)"  # what a missing category becomes in the copy that gower gets
SEED = 0

FULL_SIZES = [(10_000, 10_000), (100_000, 100_000)]
MORE_SIZES = [
    (50_000, 50_000),
    (10_000, 50_000),
    (50_000, 10_000),
    (10_000, 100_000),
    (100_000, 10_000),
]
QUICK_SIZES = [(5_000, 5_000), (10_000, 10_000)]
VARIANT_MAX_PAIRS = 2.5e9  # float64-only runs up to 50k x 50k
TORCH_MAX_PAIRS = 1e8  # torch runs at 10k x 10k only (it timed out at 50k x 50k on a loaded machine)
SUITE_REPEATS_BELOW = 2e8  # best of 3 below this many pairs, else one run
TIMEOUT = 300.0
SUITE_TIMEOUT = 900.0
TOPN_SECONDS = 8.0  # gower_topn: time query rows until this many seconds ...
TOPN_MAX_ROWS = 50  # ... or this many rows (at least 3)
SDM_BASE = 2_000  # sdmetrics measured at this many rows a side (quick: 1,000)
AGREEMENT = (2_000, 2_001)
GOAL_TOP1, GOAL_TOP10, GOAL_MB = 10.0, 15.0, 200.0  # issue #18 at 100k x 100k
PACKAGES = ("numpy", "pandas", "numba", "torch", "gower", "sdmetrics")
SUITE = "**suite `nearest`, numba**"
NUMPY = "suite `nearest`, numpy (reference path)"
TOP10 = 10
TOPN = "`gower.gower_topn(n=1)`, row by row"
TORCH = 'suite, `backend="torch"` (CPU, 2 threads)'


# --------------------------------------------------------------------------- data


@cache
def census() -> pd.DataFrame:
    return pd.read_parquet(DATA, columns=NUMERICAL + CATEGORICAL)


def samples(n: int, m: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Disjoint random samples: query (n rows) and reference (m rows); the same in every child."""
    data = census()
    order = np.random.default_rng(SEED).permutation(len(data))
    if n + m > len(data):
        raise ValueError(f"{n:,} + {m:,} rows asked, the table has {len(data):,}")
    query = data.iloc[order[:n]].reset_index(drop=True)
    reference = data.iloc[order[n : n + m]].reset_index(drop=True)
    return query, reference


def filled(frame: pd.DataFrame) -> pd.DataFrame:
    """The copy gower gets: missing categories -> a level of their own (the numbers have none)."""
    out = frame.copy()
    for col in CATEGORICAL:
        out[col] = out[col].astype(object).where(out[col].notna(), MISSING)
    return out


def sdv_metadata() -> dict[str, Any]:
    columns = {c: {"sdtype": "numerical"} for c in NUMERICAL}
    columns.update({c: {"sdtype": "categorical"} for c in CATEGORICAL})
    return {"columns": columns}


# --------------------------------------------------------------------------- cases (each in a child)


def case_idle(n: int, m: int) -> tuple[float, None]:
    import suite.neighbors  # noqa: F401  (the same imports as the suite's case)

    samples(n, m)
    return 0.0, None


def case_suite(
    n: int, m: int, backend: str = "numpy", screen: bool = True, k: int = 1, save: str | None = None
) -> tuple[float, dict[str, float]]:
    import suite.neighbors as neighbors

    neighbors._SCREEN_FLOAT32 = screen
    query, reference = samples(n, m)
    spent: dict[str, float] = {}

    def run() -> np.ndarray:
        encoder = neighbors.GowerEncoder(numerical=NUMERICAL, categorical=CATEGORICAL).fit(reference)
        q, r = encoder.transform(query), encoder.transform(reference)
        middle = time.perf_counter()
        dist, idx = neighbors.nearest(q, r, k=k, backend=backend)
        spent["search"] = min(spent.get("search", np.inf), time.perf_counter() - middle)
        return dist, idx

    seconds, (dist, idx) = timed(run, 3 if n * m < SUITE_REPEATS_BELOW else 1)
    if save:
        np.savez(save, dist=dist, idx=idx)
    return seconds, {"search": spent["search"], "median": float(np.median(dist))}


def case_topn(n: int, m: int) -> tuple[float, dict[str, float]]:
    import gower

    query, reference = samples(n, m)
    query, reference = filled(query.iloc[:TOPN_MAX_ROWS]), filled(reference)
    cat = [c in CATEGORICAL for c in reference.columns]
    start = time.perf_counter()
    rows = 0
    while rows < TOPN_MAX_ROWS and (rows < 3 or time.perf_counter() - start < TOPN_SECONDS):
        gower.gower_topn(query.iloc[rows : rows + 1], reference, cat_features=cat, n=1)
        rows += 1
    per_row = (time.perf_counter() - start) / rows
    return per_row * n, {"rows": rows, "per_row": per_row}


def case_sdmetrics(n: int, m: int) -> tuple[float, None]:
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    warnings.simplefilter("ignore")
    query, reference = samples(n, m)
    return timed(lambda: calculate_dcr(query, reference, sdv_metadata()))[0], None


def case_agreement(n: int, m: int) -> tuple[float, dict[str, float]]:
    import gower

    from suite.neighbors import GowerEncoder, nearest

    query, reference = (filled(f) for f in samples(n, m))
    matrix = gower.gower_matrix(query, reference, cat_features=[c in CATEGORICAL for c in query.columns])
    theirs = matrix.min(axis=1).astype(np.float64)
    # gower takes the ranges over both tables: fit the encoder on both for the comparison
    encoder = GowerEncoder(numerical=NUMERICAL, categorical=CATEGORICAL).fit(query, reference)
    ours = nearest(encoder.transform(query), encoder.transform(reference))[0][:, 0]
    return 0.0, {"max_diff": float(np.max(np.abs(ours - theirs)))}


# --------------------------------------------------------------------------- report


def label(n: int, m: int) -> str:
    return f"{n // 1000}k x {m // 1000}k"


def ratio(slow: float, fast: float) -> str:
    value = slow / fast
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"


def above(outcome: Outcome, idle: Outcome) -> str:
    if not (outcome.ok and idle.ok):
        return ""
    return f"{max(0.0, outcome.peak_mb - idle.peak_mb):,.0f}"


def shown(outcome: Outcome) -> str:
    return secs(outcome.seconds) if outcome.ok else outcome.status


def search_s(outcome: Outcome) -> str:
    return secs(outcome.payload["search"]) if outcome.ok else ""


def agreement(a: str, b: str) -> str:
    """How the answers saved at `a` and `b` compare: largest distance difference, share of equal indices."""
    try:
        x, y = np.load(a), np.load(b)
    except OSError:
        return ""
    diff = float(np.max(np.abs(x["dist"] - y["dist"])))
    same = float(np.mean(x["idx"] == y["idx"]))
    return f"vs numpy: max diff {diff:.1e}, {same:.2%} same indices"


def size_rows(
    n: int, m: int, sdm_per_pair: float | None, sdm_run: set[tuple[int, int]], both_k: bool = True
) -> list[list[str]]:
    size = label(n, m)
    rows: list[list[str]] = []
    log(f"[{size}] idle child")
    idle = measure(case_idle, TIMEOUT, n=n, m=m)
    with tempfile.TemporaryDirectory() as tmp:
        for k in (1, TOP10) if both_k else (1,):
            out: dict[str, Outcome] = {}
            for backend, name in (("numba", SUITE), ("numpy", NUMPY)):
                log(f"[{size}] suite, {backend}, k={k}")
                save = os.path.join(tmp, f"{backend}.npz")
                out[backend] = res = measure(case_suite, SUITE_TIMEOUT, n=n, m=m, backend=backend, k=k, save=save)
                base = out["numba"]
                vs = ratio(res.seconds, base.seconds) if backend == "numpy" and res.ok and base.ok else ""
                how = "measured" if backend == "numba" else agreement(os.path.join(tmp, "numba.npz"), save)
                shown_s = f"**{shown(res)}**" if backend == "numba" else shown(res)
                rows.append([size, str(k), name, shown_s, search_s(res), above(res, idle), vs, how or "measured"])
            if k == 1:
                suite = out["numba"]
    if n * m <= VARIANT_MAX_PAIRS:
        log(f"[{size}] suite, numpy, float64 tiles only")
        plain = measure(case_suite, SUITE_TIMEOUT, n=n, m=m, screen=False)
        vs = ratio(plain.seconds, suite.seconds) if plain.ok and suite.ok else ""
        rows.append(
            [
                size,
                "1",
                "suite, numpy, float64 tiles only",
                shown(plain),
                search_s(plain),
                above(plain, idle),
                vs,
                "measured (screening off)",
            ]
        )
    if n * m <= TORCH_MAX_PAIRS:
        log(f"[{size}] suite, torch")
        tor = measure(case_suite, TIMEOUT, n=n, m=m, backend="torch")
        vs = ratio(tor.seconds, suite.seconds) if tor.ok and suite.ok else ""
        rows.append(
            [
                size,
                "1",
                TORCH,
                shown(tor),
                search_s(tor),
                above(tor, idle),
                vs,
                "measured (peak includes importing torch)",
            ]
        )
    log(f"[{size}] gower.gower_topn, a few query rows")
    topn = measure(case_topn, TIMEOUT, n=n, m=m)
    if topn.ok:
        vs = ratio(topn.seconds, suite.seconds) if suite.ok else ""
        how = f"extrapolated: {topn.payload['rows']} query rows timed, {topn.payload['per_row']:.3f} s each, x {n:,}"
        rows.append([size, "1", TOPN, f"~{secs(topn.seconds)}", "", above(topn, idle), vs, how])
    else:
        rows.append([size, "1", TOPN, topn.status, "", "", "", ""])
    if sdm_per_pair is not None:
        estimate = sdm_per_pair * n * m
        name = "sdmetrics `calculate_dcr`"
        if (n, m) in sdm_run:
            log(f"[{size}] sdmetrics calculate_dcr (limit {TIMEOUT:.0f} s)")
            sdm = measure(case_sdmetrics, TIMEOUT, n=n, m=m)
            if sdm.ok:
                rows.append(
                    [
                        size,
                        "1",
                        name,
                        secs(sdm.seconds),
                        "",
                        above(sdm, idle),
                        ratio(sdm.seconds, suite.seconds),
                        "measured",
                    ]
                )
            else:
                vs = ratio(estimate, suite.seconds) if suite.ok else ""
                rows.append(
                    [
                        size,
                        "1",
                        name,
                        f"{sdm.status} (> {TIMEOUT:.0f} s); ~{secs(estimate)} estimated",
                        "",
                        "",
                        vs,
                        f"run and killed; estimate from {SDM_BASE:,} x {SDM_BASE:,}",
                    ]
                )
        else:
            vs = ratio(estimate, suite.seconds) if suite.ok else ""
            over = f" (> {TIMEOUT:.0f} s limit)" if estimate > TIMEOUT else ""
            rows.append(
                [
                    size,
                    "1",
                    name,
                    f"not run: ~{secs(estimate)} estimated{over}",
                    "",
                    "",
                    vs,
                    f"estimate from {SDM_BASE:,} x {SDM_BASE:,}",
                ]
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    global SDM_BASE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k and 10k rows, sdmetrics estimated only")
    parser.add_argument("--more", action="store_true", help="also 50k x 50k and 10k x 50k/100k both ways (top-1)")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES + (MORE_SIZES if args.more else [])
    if args.quick:
        SDM_BASE = 1_000
    start = time.perf_counter()
    emit(
        f"# Nearest neighbours at 10k-100k rows ({'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d')})"
    )
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()

    log(f"[sdmetrics] calculate_dcr at {SDM_BASE:,} x {SDM_BASE:,}, for the estimates")
    base = measure(case_sdmetrics, TIMEOUT, n=SDM_BASE, m=SDM_BASE)
    sdm_per_pair = base.seconds / SDM_BASE**2 if base.ok else None
    # run sdmetrics for real where its estimate is within the limit (the base size always is); else estimate
    sdm_run: set[tuple[int, int]] = set()
    if sdm_per_pair is not None and not args.quick:  # quick: estimates only
        sdm_run = {(n, m) for n, m in sizes if sdm_per_pair * n * m <= TIMEOUT}

    rows: list[list[str]] = []
    for n, m in sizes:
        rows += size_rows(n, m, sdm_per_pair, sdm_run, both_k=n == m)
    log(f"[agreement] gower.gower_matrix at {AGREEMENT[0]:,} x {AGREEMENT[1]:,}")
    agree = measure(case_agreement, TIMEOUT, n=AGREEMENT[0], m=AGREEMENT[1])

    headers = [
        "query x reference",
        "k",
        "engine",
        "seconds",
        "search s",
        "peak MB above idle",
        "x slower than suite (numba, same k)",
        "how",
    ]
    emit("## Top-k neighbours, Gower distance, census_kdd (20 columns: 7 numerical, 13 categorical)")
    emit()
    emit(table(headers, rows))
    emit()
    if base.ok:
        emit(
            f"- sdmetrics `calculate_dcr` at {SDM_BASE:,} x {SDM_BASE:,}: {secs(base.seconds)} s, "
            f"{base.seconds / SDM_BASE**2 * 1e6:.2f} us per pair (the base of its estimates)."
        )
    else:
        emit(f"- sdmetrics `calculate_dcr` at {SDM_BASE:,} x {SDM_BASE:,}: {base.status}.")
    if agree.ok:
        emit(
            f"- Values: on {AGREEMENT[0]:,} x {AGREEMENT[1]:,} rows the suite's top-1 distances differ from "
            f"`gower.gower_matrix`'s row minima by at most {agree.payload['max_diff']:.1e} (gower computes in float32)."
        )
    else:
        emit(f"- Values against `gower.gower_matrix`: {agree.status}.")
    emit(
        "- seconds: from DataFrames to distances (suite: encoder fit on the reference, transform, search; best of 3 "
        "below 200M pairs, else one run). search s: `nearest` alone. peak MB: child's VmHWM minus an idle child's "
        "that loaded the same samples."
    )
    emit()
    emit(goals(rows, sizes))
    emit()
    emit(f"Load average at end: {load_average()}.")
    emit()
    emit(f"Benchmark total: {secs(time.perf_counter() - start)} s.")
    return 0


def goals(rows: list[list[str]], sizes: Sequence[tuple[int, int]]) -> str:
    """Issue #18's goals, from the table's rows."""
    found = {(r[0], r[1], r[2]): r for r in rows}
    lines = ["**Goals (issue #18).**", ""]
    for k, goal in ((1, GOAL_TOP1), (TOP10, GOAL_TOP10)):
        row = found.get((label(100_000, 100_000), str(k), SUITE))
        check = found.get((label(100_000, 100_000), str(k), NUMPY))
        if row is None:
            continue
        try:
            seconds = float(row[4])
            mb = float(row[5].replace(",", "")) if row[5] else float("nan")
        except ValueError:
            lines.append(f"- 100k x 100k top-{k}: {row[3]}.")
            continue
        met = "met" if seconds <= goal and mb < GOAL_MB else "NOT met"
        lines.append(
            f"- 100k x 100k top-{k} search in at most {goal:.0f} s and under {GOAL_MB:.0f} MB above idle on 2 cores: "
            f"{met} ({seconds:.1f} s, {mb:,.0f} MB); {check[7] if check else 'no comparison'}."
        )
    if len(lines) == 2:
        lines.append("- (the goal sizes are not part of a quick run)")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
