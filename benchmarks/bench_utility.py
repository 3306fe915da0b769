"""Benchmark: every utility and fidelity check at 50k training rows x 20 columns, beside sdmetrics' reports.

Run from the repository root::

    python benchmarks/bench_utility.py            # 50k training rows
    python benchmarks/bench_utility.py --quick    # 10k training rows

Markdown tables go to stdout, progress to stderr. The data is the UCI Census-Income KDD table
(``data/census_kdd.parquet``): its first 19 columns and the target ``income_gt_50k``, a random
subset split the way the suite splits a scenario's table (``suite.dataset.prepare``, metadata
inferred with SDV, holdout 0.3, seed 0). The synthetic table is the ``marginals`` generator's
output with as many rows as train. Each check runs at its default parameters in a fresh
``spawn`` child, is killed after 300 s, and reports the seconds of ``evaluate`` and its peak RSS
above an idle child. The peers, in the same run: sdmetrics' QualityReport and DiagnosticReport
on the same full tables (what a user would otherwise call for fidelity).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_attacks import CheckCase, Prepared, build, case_check, case_idle, census, interval, load_context
from harness import emit, load_average, log, machine, measure, secs, table, timed

TARGET = "income_gt_50k"
TIMEOUT = 300.0
PACKAGES = ("numpy", "pandas", "scikit-learn", "sdmetrics", "shap", "scipy")
CASES = (
    CheckCase("fidelity", "fidelity", {}, ("fidelity.quality", "fidelity.columns_passed")),
    CheckCase("diagnostic", "diagnostic", {}, ("diagnostic.validity",)),
    CheckCase("dependence", "dependence", {}, ("dependence.correlation_mae", "dependence.mutual_information_mae")),
    CheckCase("missingness", "missingness", {}, ("missingness.rate_mae",)),
    CheckCase("structure", "structure", {}, ("structure.pca_overlap", "structure.voas_williamson_fit")),
    CheckCase("propensity", "propensity", {}, ("propensity.auc", "propensity.pmse")),
    CheckCase("utility", "utility", {}, ("utility.tstr_ratio",)),
)


def columns() -> list[str]:
    names = [c for c in census().columns if c not in ("split", "instance_weight", TARGET)]
    return [*names[:19], TARGET]


def case_sdmetrics(context: str, report: str) -> tuple[float, dict[str, Any]]:
    """sdmetrics' own report on the full tables, as a user would call it."""
    ctx = load_context(context)
    from sdmetrics.reports import DiagnosticReport, QualityReport

    metadata = {"tables": {"table": ctx.metadata.to_sdv_dict()}, "relationships": []}
    instance = {"QualityReport": QualityReport, "DiagnosticReport": DiagnosticReport}[report]()

    def run() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            instance.generate({"table": ctx.train}, {"table": ctx.synthetic}, metadata, verbose=False)
        return float(instance.get_score())

    seconds, score = timed(run)
    return seconds, {"score": score}


def section(prepared: Prepared) -> None:
    context = str(prepared.contexts["marginals"])
    tag = f"[{prepared.train_rows:,}]"
    idle = measure(case_idle, TIMEOUT, context=context)
    rows, total = [], 0.0
    for case in CASES:
        log(f"{tag} {case.label}")
        outcome = measure(case_check, TIMEOUT, context=context, check=case.check, params=case.params)
        peak = f"{max(0.0, outcome.peak_mb - idle.peak_mb):.0f}" if outcome.ok and idle.ok else "n/a"
        shown = ""
        if outcome.ok:
            total += outcome.seconds
            shown = "; ".join(
                f"{n} = {interval(outcome.payload[n])}" if n in outcome.payload else f"{n}: missing" for n in case.shown
            )
        rows.append([case.label, secs(outcome.seconds) if outcome.ok else outcome.status, peak, shown])
    rows.append(["**all seven checks**", f"**{secs(total)}**", "", ""])
    for report in ("QualityReport", "DiagnosticReport"):
        log(f"{tag} sdmetrics {report}")
        outcome = measure(case_sdmetrics, TIMEOUT, context=context, report=report)
        peak = f"{max(0.0, outcome.peak_mb - idle.peak_mb):.0f}" if outcome.ok and idle.ok else "n/a"
        score = f"score {outcome.payload['score']:.3f}" if outcome.ok else ""
        rows.append(
            [
                f"peer: sdmetrics {report} (full tables)",
                secs(outcome.seconds) if outcome.ok else outcome.status,
                peak,
                score,
            ]
        )
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(prepared.columns.items()))
    n_columns = sum(prepared.columns.values())
    emit(f"## Utility and fidelity checks: {prepared.train_rows:,} training rows, {n_columns} columns")
    emit()
    emit(table(["check", "seconds", "peak MB above idle", "main measurement [interval]"], rows))
    emit()
    emit(
        f"- control {prepared.control_rows:,} rows, reference {prepared.reference_rows:,}; columns: {kinds}; "
        f"synthetic: `marginals`, {prepared.train_rows:,} rows; target `{TARGET}`."
    )
    emit(f"- each check in a fresh child, `evaluate` alone, default parameters; killed past {TIMEOUT:.0f} s.")
    emit()


def main(argv: Sequence[str] | None = None) -> int:
    from suite.metadata import Roles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k training rows instead of 50k")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = 10_000 if args.quick else 50_000
    emit(f"# synth-release-gate utility benchmark ({'quick' if args.quick else 'full'} run)")
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()
    with tempfile.TemporaryDirectory(prefix="utility-bench-") as tmp:
        log(f"[data] {rows:,} training rows x 20 columns: subset, prepare, marginals")
        prepared = build(rows, ["marginals"], Path(tmp), columns=columns(), roles=Roles(target=TARGET))
        section(prepared)
    emit(f"Load average at end: {load_average()}.")
    emit()
    emit(f"Benchmark total: {secs(time.perf_counter() - start)} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
