"""Reconstruction over split seeds: the null, the clean model and the two leak canaries, per measurement.

Run from the repository root::

    python benchmarks/bench_reconstruction.py                       # covid_testing and adult, seeds 0-6
    python benchmarks/bench_reconstruction.py --tables adult --seeds 3

For each table (the calibration benchmark's roles and split) and split seed, `holdout` (real unseen
rows), `sdv.gaussian_copula` (a clean model), `partial_copy` (quasi-identifiers and secrets of 10% of
training rows pasted into the copula's rows) and `outlier_copy` (near-copies of the 2% most isolated
training rows) are fitted and sampled as a run does, and the `reconstruction` check's exact attacker
is read: over everyone (`max.excess`) and among the people of rare quasi-identifier tuples
(`max.rare_excess`, `joint.rare_excess`). The table gives, per measurement, the range of the
one-sided bounds, how often a 0.05 gate blocks and how often the favourable bound is past it
(`risk shown`). Only this check runs, so it takes minutes where the calibration study takes hours.
Markdown goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench_calibration import TABLES, Table, _data_file
from harness import emit, load_average, log, machine, table

R = TypeVar("R")

GENERATORS = ("holdout", "sdv.gaussian_copula", "partial_copy", "outlier_copy")
MEASUREMENTS = ("reconstruction.max.excess", "reconstruction.max.rare_excess", "reconstruction.joint.rare_excess")
GATE = 0.05


def measure(t: Table, seed: int, folder: Path) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(generator, measurement) -> (value, lower bound, upper bound, rarity) at this split seed."""
    import suite.attacks  # noqa: F401  (registers the checks)
    import suite.generators  # noqa: F401
    from suite.attacks.reconstruction import ReconstructionAttack
    from suite.dataset import prepare
    from suite.metadata import Roles
    from suite.testing import context_for

    data = prepare(
        _data_file(t, folder), metadata_path=t.metadata, roles=Roles.from_dict(t.roles), holdout=t.holdout, seed=seed
    )
    out = {}
    for g in GENERATORS:
        ctx = context_for(data, g, seed=seed)
        got = {m.name: m for m in ReconstructionAttack(attackers=("exact",)).evaluate(ctx)}
        for name in MEASUREMENTS:
            m = got[name]
            out[(g, name)] = (m.value, m.ci[0], m.ci[1], int(m.details.get("rarity", 0)))
    return out


def over_seeds(
    tables: list[str], seeds: int, measure: Callable[[Table, int, Path], dict[tuple[str, str], R]], tag: str
) -> dict[tuple[str, str, str], list[R]]:
    """(table, generator, measurement) -> `measure`'s rows over split seeds 0..seeds-1 of each table that declares
    quasi-identifiers and secrets (the others are skipped, with a line on stderr)."""
    results: dict[tuple[str, str, str], list[R]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for name in tables:
            t = TABLES[name]
            if not (t.roles.get("quasi_identifiers") and t.roles.get("secrets")):
                log(f"[{tag}] {name}: no quasi-identifiers and secrets declared, skipped")
                continue
            for seed in range(seeds):
                log(f"[{tag}] {name} seed {seed}")
                for (g, m), row in measure(t, seed, Path(tmp)).items():
                    results[(name, g, m)].append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="*", default=["covid_testing", "adult"], choices=sorted(TABLES))
    parser.add_argument("--seeds", type=int, default=7, help="split seeds 0..N-1 per table")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = over_seeds(args.tables, args.seeds, measure, "reconstruction")
    rows = []
    for (name, g, m), got in results.items():
        lows, highs = [r[1] for r in got], [r[2] for r in got]
        rarity = sorted({r[3] for r in got}) if m != "reconstruction.max.excess" else ["everyone"]
        rows.append(
            [
                name,
                g,
                m.removeprefix("reconstruction."),
                str(len(got)),
                f"{sum(r[0] for r in got) / len(got):.3f}",
                f"{min(highs):.3f} to {max(highs):.3f}",
                f"{min(lows):.3f} to {max(lows):.3f}",
                f"{sum(h > GATE for h in highs)}/{len(got)}",
                f"{sum(lo > GATE for lo in lows)}/{len(got)}",
                ", ".join(map(str, rarity)),
            ]
        )
    emit(f"# Reconstruction over split seeds ({time.strftime('%Y-%m-%d')})")
    emit()
    emit(table(["machine", ""], machine(("numpy", "pandas", "sdv"))))
    emit()
    emit(f"Load average at the end: {load_average()}; {time.perf_counter() - start:.0f} s in all")
    emit()
    headers = ["table", "generator", "measurement", "seeds", "mean value", "upper bounds", "lower bounds"]
    headers += [f"blocked at {GATE}", "risk shown", "rarity"]
    emit(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
