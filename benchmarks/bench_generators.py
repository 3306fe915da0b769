"""Fit and sample time of every registered generator at 1k and 10k training rows.

Run from the repository root::

    python benchmarks/bench_generators.py            # 1k and 10k rows (about 10 minutes on 2 cores)
    python benchmarks/bench_generators.py --quick    # 1k rows only

The rows are real COVID-19 tests (the contract table: 14 columns with numbers, categories, a date
and missing values). Each generator is fitted under seed 0 on n rows and samples n rows. The
neural generators run with the epochs given in PARAMS (stated in the table), not their defaults.
`sdv.par` is sequential: it is timed on the PBC visits instead (all 312 patients, 1,945 visits).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence

from harness import emit, log, machine, secs, table

import suite.generators  # noqa: F401 - registers the built-in generators
from suite.registry import generators as registry
from suite.seeding import seeded
from suite.testing import contract_table, sequence_table

PACKAGES = ("numpy", "pandas", "torch", "sdv", "xgboost", "opacus")
#: Settings that keep the neural generators' time readable; their defaults (300 epochs) scale linearly.
PARAMS = {
    "sdv.ctgan": {"epochs": 30},
    "sdv.copulagan": {"epochs": 30},
    "sdv.tvae": {"epochs": 30},
    "sdv.par": {"epochs": 30},
}
SIZES = (1_000, 10_000)


def time_one(name: str, rows: int) -> list[str]:
    cls = registry.get(name)
    params = PARAMS.get(name, {})
    if getattr(cls, "sequential", False):
        train, metadata = sequence_table()
        n, what = int(train["id"].nunique()), f"{len(train):,} visits"
    else:
        train, metadata = contract_table(rows)
        n, what = rows, f"{rows:,} rows"
    with warnings.catch_warnings(), seeded(0):
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fitted = cls(**params).fit(train, metadata)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        fitted.sample(n, seed=0)
        sample = time.perf_counter() - start
    shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
    return [name, shown, what, secs(fit), secs(sample)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k rows only")
    args = parser.parse_args(argv)
    sizes = SIZES[:1] if args.quick else SIZES
    emit("# Generators: fit and sample seconds")
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()
    rows = []
    for name in registry.names():
        cls = registry.get(name)
        for size in sizes[:1] if getattr(cls, "sequential", False) else sizes:
            log(f"[generators] {name} at {size}")
            rows.append(time_one(name, size))
    emit(table(["generator", "params", "fitted on", "fit s", "sample s"], rows))
    emit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
