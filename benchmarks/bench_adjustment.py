"""The reference attacker's adjustment over split seeds: how much narrower, and still valid, per generator.

Run from the repository root::

    python benchmarks/bench_adjustment.py                              # flchain, seeds 0-5
    python benchmarks/bench_adjustment.py --tables covid_testing flchain --seeds 8

For each table (the calibration benchmark's roles and split) and split seed, `holdout` (real unseen rows),
`sdv.gaussian_copula` (a clean model) and the `identity` and `partial_copy` canaries are fitted and sampled
as a run does; the `inference` check and the `reconstruction` check's exact attacker are read. Per gated
measurement (each secret's inference excess and the joint rare reconstruction excess) the table gives, for
the unadjusted excess (Newcombe's interval, or the cluster bootstrap) and the adjusted one
(`suite.stats.adjusted_difference`): the mean upper half-width, the spread (SD) of the values over the
seeds, how often 0 lies inside the interval and how often the 0.05 gate blocks. A valid interval's
half-width is about 1.645 times the values' SD (one-sided 95%, the scenario's default); the clean ones'
values vary over seeds by the fit as well. Markdown goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench_calibration import TABLES, Table, _data_file
from bench_reconstruction import over_seeds
from harness import emit, load_average, machine, table

GENERATORS = ("holdout", "sdv.gaussian_copula", "identity", "partial_copy")
GATE = 0.05

Row = tuple[float, float, float, float, float, float]  # value, low, high; unadjusted value, low, high


def measure(t: Table, seed: int, folder: Path) -> dict[tuple[str, str], Row]:
    """(generator, measurement) -> the adjusted and unadjusted value and interval at this split seed."""
    import suite.attacks  # noqa: F401  (registers the checks)
    import suite.generators  # noqa: F401
    from suite.attacks.inference import InferenceAttack
    from suite.attacks.reconstruction import ReconstructionAttack
    from suite.dataset import prepare
    from suite.metadata import Roles
    from suite.testing import context_for

    data = prepare(
        _data_file(t, folder), metadata_path=t.metadata, roles=Roles.from_dict(t.roles), holdout=t.holdout, seed=seed
    )
    out: dict[tuple[str, str], Row] = {}
    for g in GENERATORS:
        ctx = context_for(data, g, seed=seed)
        got = [*InferenceAttack().evaluate(ctx), *ReconstructionAttack(attackers=("exact",)).evaluate(ctx)]
        for m in got:
            wanted = m.name.startswith("inference.") and m.name.endswith(".excess") and m.name != "inference.max.excess"
            if not (wanted or m.name == "reconstruction.joint.rare_excess"):
                continue
            plain = m.details["unadjusted"]
            out[(g, m.name)] = (m.value, *m.ci, plain["value"], *plain["ci"])  # type: ignore[misc]
    return out


def _summary(values: list[float], lows: list[float], highs: list[float]) -> list[str]:
    half = statistics.fmean(h - v for v, h in zip(values, highs, strict=True))
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    holds = sum(lo <= 0.0 <= h for lo, h in zip(lows, highs, strict=True))
    return [f"{half:.4f}", f"{sd:.4f}", f"{holds}/{len(values)}", f"{sum(h > GATE for h in highs)}/{len(values)}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="*", default=["flchain"], choices=sorted(TABLES))
    parser.add_argument("--seeds", type=int, default=6, help="split seeds 0..N-1 per table")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = over_seeds(args.tables, args.seeds, measure, "adjustment")
    rows = []
    for (name, g, m), got in results.items():
        cols = list(zip(*got, strict=True))
        adjusted, unadjusted = _summary(*cols[:3]), _summary(*cols[3:])
        rows.append([name, g, m, str(len(got)), *unadjusted, *adjusted])
    emit(f"# The reference attacker's adjustment over split seeds ({time.strftime('%Y-%m-%d')})")
    emit()
    emit(table(["machine", ""], machine(("numpy", "pandas", "sdv"))))
    emit()
    emit(f"Load average at the end: {load_average()}; {time.perf_counter() - start:.0f} s in all")
    emit()
    headers = ["table", "generator", "measurement", "seeds"]
    for side in ("unadjusted", "adjusted"):
        headers += [f"{side}: upper half-width", "SD of values", "0 inside", f"blocked at {GATE}"]
    emit(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
