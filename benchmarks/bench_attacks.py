"""Benchmark: every privacy attack (and the dcr and collisions metrics) at 10k and 50k training rows.

Run from the repository root::

    python benchmarks/bench_attacks.py            # 10k and 50k training rows
    python benchmarks/bench_attacks.py --quick    # 10k training rows only

Markdown tables go to stdout, progress to stderr. The data is the UCI Census-Income KDD table
(``data/census_kdd.parquet``, without ``split`` and ``instance_weight``). For each size a random
subset of the table is written to a temporary directory and split the way the suite splits a
scenario's table (``suite.dataset.prepare``, metadata inferred with SDV, holdout 0.3, seed 0), so
that train has exactly that many rows and the control about 0.15 of the subset. The synthetic
table is the output of the ``marginals`` generator fitted on train, with as many rows as train
(the full run adds ``identity`` at 10k rows: a release that copies train, for the attack cost on
a leaking release).

Every check runs at its default parameters (singling out once per mode) in a fresh ``spawn``
child that loads the prepared context, is killed after 300 s, and reports the seconds of
``evaluate`` and its peak RSS. Memory is reported above an idle child that loaded the same
context and imported the same modules. A last child times anonymeter's numba-compiled
neighbour search on a few rows, first call against second, for its one-off compilation cost.

The formatting and child-process helpers are shared with ``benchmarks/run.py`` (``benchmarks/harness.py``).
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from harness import Outcome, emit, load_average, log, machine, measure, secs, table, timed

if TYPE_CHECKING:  # pragma: no cover
    from suite.types import Context

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data" / "census_kdd.parquet"
DROPPED = ["split", "instance_weight"]
QUASI_IDENTIFIERS = ("age", "sex", "race", "education", "marital_stat")
SECRETS = ("income_gt_50k", "major_occupation_code")
HOLDOUT = 0.3
SEED = 0
TRAIN_ROWS = (10_000, 50_000)
IDENTITY_ROWS = 10_000  # full run only: the checks once more on a release that copies train
TIMEOUT = 300.0  # the budget: every attack within 5 minutes at 50k rows
PACKAGES = ("numpy", "pandas", "anonymeter", "scikit-learn", "polars", "numba", "sdv")


@dataclass(frozen=True)
class CheckCase:
    label: str
    check: str
    params: dict[str, Any]
    shown: tuple[str, ...]  # the measurements printed in the table


CASES = (
    CheckCase(
        "singling_out (univariate)", "singling_out", {"modes": ("univariate",)}, ("singling_out.univariate.risk",)
    ),
    CheckCase(
        "singling_out (multivariate)",
        "singling_out",
        {"modes": ("multivariate",)},
        ("singling_out.multivariate.risk",),
    ),
    CheckCase("linkability", "linkability", {}, ("linkability.risk",)),
    CheckCase("inference", "inference", {}, ("inference.max.excess",)),
    CheckCase("membership", "membership", {}, ("membership.distance.auc", "membership.density.auc")),
    CheckCase("dcr", "dcr", {}, ("dcr.share_closer_to_train",)),
    CheckCase("collisions", "collisions", {}, ("collisions.excess",)),
)


# --------------------------------------------------------------------------- data


@cache
def census() -> pd.DataFrame:
    return pd.read_parquet(DATA).drop(columns=DROPPED)


def subset_size(train_rows: int) -> int:
    """The smallest subset whose train part, after prepare's split (holdout share rounded), has ``train_rows``."""
    n = math.floor(train_rows / (1.0 - HOLDOUT)) - 2
    while n - int(round(HOLDOUT * n)) < train_rows:
        n += 1
    if n - int(round(HOLDOUT * n)) != train_rows:
        raise ValueError(f"no subset size gives exactly {train_rows} training rows")
    return n


@dataclass(frozen=True)
class Prepared:
    """Where the pickled contexts of one size lie (one per generator), and what building them took."""

    train_rows: int
    control_rows: int
    reference_rows: int
    subset_rows: int
    contexts: dict[str, Path]
    prepare_seconds: float
    columns: dict[str, int]  # sdtype -> count, of the generator-facing columns


def build(
    train_rows: int,
    generator_names: Sequence[str],
    tmp: Path,
    *,
    columns: Sequence[str] | None = None,
    roles: Any = None,
) -> Prepared:
    """Subset -> temporary parquet -> ``prepare`` (inferred metadata) -> synthetic tables -> pickled contexts.

    `columns` keeps only those census columns; `roles` (a ``suite.metadata.Roles``) defaults to the
    attack benchmark's quasi-identifiers and secrets.
    """
    from suite.dataset import prepare
    from suite.metadata import Roles
    from suite.registry import generators
    from suite.types import Context

    roles = roles or Roles(quasi_identifiers=QUASI_IDENTIFIERS, secrets=SECRETS)

    table_ = census() if columns is None else census()[list(columns)]
    n = subset_size(train_rows)
    rng = np.random.default_rng(SEED)
    rows = np.sort(rng.choice(len(table_), n, replace=False))
    path = tmp / f"census_kdd_{train_rows}.parquet"
    table_.iloc[rows].reset_index(drop=True).to_parquet(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, data = timed(lambda: prepare(path, metadata_path=None, roles=roles, holdout=HOLDOUT, seed=SEED))
    if len(data.train) != train_rows:
        raise RuntimeError(f"prepare gave {len(data.train)} training rows, expected {train_rows}")
    contexts = {}
    for name in generator_names:
        synthetic = generators.get(name)().fit(data.train, data.metadata).sample(len(data.train), seed=SEED)
        ctx = Context(
            train=data.train,
            holdout=data.control,
            synthetic=synthetic[list(data.train.columns)],
            metadata=data.metadata,
            seed=SEED,
            train_entities=data.train_entities,
            holdout_entities=data.control_entities,
            reference=data.reference,
            reference_entities=data.reference_entities,
        )
        contexts[name] = tmp / f"context_{train_rows}_{name}.pkl"
        contexts[name].write_bytes(pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL))
    sdtypes = pd.Series([data.metadata.sdtype(c) for c in data.metadata.columns]).value_counts()
    return Prepared(
        train_rows=len(data.train),
        control_rows=len(data.control),
        reference_rows=len(data.reference),
        subset_rows=n,
        contexts=contexts,
        prepare_seconds=seconds,
        columns={str(k): int(v) for k, v in sdtypes.items()},
    )


# --------------------------------------------------------------------------- child cases


def load_context(path: str) -> Context:
    """The pickled context, with every module a check may import already imported (so the idle child has them)."""
    warnings.simplefilter("ignore")
    import anonymeter.evaluators  # noqa: F401
    import numba  # noqa: F401
    import polars  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.neighbors  # noqa: F401

    import suite.attacks  # noqa: F401  (registers the attacks)
    import suite.metrics  # noqa: F401  (registers the metrics)

    return pickle.loads(Path(path).read_bytes())


def case_idle(context: str) -> tuple[float, None]:
    load_context(context)
    return 0.0, None


def case_check(context: str, check: str, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    from suite.registry import checks

    ctx = load_context(context)
    instance = checks.get(check)(**params)
    seconds, measurements = timed(lambda: instance.evaluate(ctx))
    summary: dict[str, Any] = {}
    for m in measurements:
        details = dict(m.details)
        summary[m.name] = {
            "value": m.value,
            "ci": m.ci,
            "error": m.error,
            "queries": details.get("queries_from_synthetic"),
            "seconds": details.get("seconds"),  # membership: per attacker
            "notes": [*details.get("warnings", []), *details.get("log", [])],
        }
    return seconds, summary


def case_jit(context: str) -> tuple[float, list[dict[str, Any]]]:
    """anonymeter's neighbour search on a few rows, twice per input type: the first call compiles it (numba)."""
    ctx = load_context(context)  # first: it imports anonymeter.evaluators, which mixed_types_kneighbors needs
    from anonymeter.neighbors import mixed_types_kneighbors as mtk

    from suite.attacks._anonymeter import attack_data

    data = attack_data(ctx)
    qis = list(QUASI_IDENTIFIERS)
    halves = (qis[0::2], qis[1::2])  # linkability's default auxiliary columns
    out = []
    for columns in halves:
        nn = mtk.MixedTypeKNeighbors(n_neighbors=1).fit(data.synthetic[columns].head(200))
        queries = data.train[columns].head(20)
        first, _ = timed(partial(nn.kneighbors, queries))
        second, _ = timed(partial(nn.kneighbors, queries))
        continuous = [c for c in columns if c in ctx.metadata.continuous]
        out.append({"columns": columns, "continuous": continuous, "first": first, "second": second})
    signatures = [str(s) for s in mtk._nearest_neighbors.signatures]
    return sum(r["first"] - r["second"] for r in out), [*out, {"signatures": signatures}]


# --------------------------------------------------------------------------- sections


def interval(entry: dict[str, Any]) -> str:
    if entry["error"]:
        return f"error: {entry['error']}"
    ci = entry["ci"]
    text = f"{entry['value']:.3f}"
    return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def shown_values(case: CheckCase, outcome: Outcome) -> str:
    if not outcome.ok:
        return ""
    parts = []
    for name in case.shown:
        entry = outcome.payload.get(name)
        parts.append(f"{name} = {interval(entry)}" if entry else f"{name}: missing")
    return "; ".join(parts)


def check_rows(prepared: Prepared, generator: str, notes: list[str]) -> list[list[str]]:
    context = str(prepared.contexts[generator])
    tag = f"[{prepared.train_rows:,} {generator}]"
    log(f"{tag} idle child")
    idle = measure(case_idle, TIMEOUT, context=context)
    rows = []
    for case in CASES:
        log(f"{tag} {case.label} (limit {TIMEOUT:.0f} s)")
        outcome = measure(case_check, TIMEOUT, context=context, check=case.check, params=case.params)
        seconds = secs(outcome.seconds) if outcome.ok else outcome.status
        peak = f"{max(0.0, outcome.peak_mb - idle.peak_mb):.0f}" if outcome.ok and idle.ok else "n/a"
        log(f"{tag} {case.label}: {seconds} s, {peak} MB above idle")
        rows.append(
            [
                case.label,
                generator,
                f"{prepared.train_rows:,}",
                f"{prepared.control_rows:,}",
                seconds,
                peak,
                shown_values(case, outcome),
            ]
        )
        if outcome.ok:
            for name in case.shown:
                entry = outcome.payload.get(name) or {}
                extra = []
                if entry.get("queries") is not None:
                    extra.append(f"{entry['queries']} singling-out queries built from the synthetic data")
                if entry.get("seconds") is not None:
                    extra.append(f"{name.rsplit('.', 1)[0]} took {secs(entry['seconds'])} s")
                extra += list(dict.fromkeys(entry.get("notes") or []))
                if extra:
                    notes.append(f"{case.label}, {generator}, {prepared.train_rows:,} rows: " + "; ".join(extra))
    if idle.ok:
        notes.append(f"idle child, {generator}, {prepared.train_rows:,} rows: peak RSS {idle.peak_mb:.0f} MB")
    return rows


def attacks_section(prepared: list[Prepared], runs: list[tuple[int, str]]) -> None:
    emit("## Attacks and metrics on census_kdd")
    emit()
    by_rows = {p.train_rows: p for p in prepared}
    rows: list[list[str]] = []
    notes: list[str] = []
    for train_rows, generator in runs:
        rows += check_rows(by_rows[train_rows], generator, notes)
    headers = ["check", "generator", "train rows", "control rows", "seconds", "peak MB", "main measurement [interval]"]
    emit(table(headers, rows))
    emit()
    for p in prepared:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(p.columns.items()))
        emit(
            f"- {p.train_rows:,} training rows: subset of {p.subset_rows:,} rows, control {p.control_rows:,}, "
            f"reference {p.reference_rows:,}; {sum(p.columns.values())} columns ({kinds}); "
            f"`prepare` with SDV metadata inference took {secs(p.prepare_seconds)} s (not in the table"
            + ("; this first call includes importing SDV)." if p is prepared[0] else ").")
        )
    emit(
        "- seconds: `evaluate` alone, in a fresh child (so linkability and inference include anonymeter's numba "
        f"compilation, below); killed past {TIMEOUT:.0f} s. The default `singling_out` runs both modes: its time "
        "is the sum of its two rows."
    )
    n = max(p.train_rows for p in prepared)
    emit(
        "- peak MB: the child's peak RSS (VmHWM) minus that of an idle child that loaded the same context and "
        f"imported the same modules. For scale, one float64 {n:,} x {n:,} distance matrix would take "
        f"{n * n * 8 / 2**20:,.0f} MB."
    )
    for note in notes:
        emit(f"- {note}")
    emit()


def jit_section(prepared: Prepared) -> None:
    emit("## anonymeter's one-off numba compilation")
    emit()
    log("[jit] anonymeter neighbour search, first call vs second")
    outcome = measure(case_jit, TIMEOUT, context=str(prepared.contexts["marginals"]))
    if not outcome.ok:
        emit(f"Not measured: {outcome.status}")
        emit()
        return
    *calls, extra = outcome.payload
    rows = [
        [
            ", ".join(c["columns"]),
            "float (numbers and codes)" if c["continuous"] else "integer (codes only)",
            secs(c["first"]),
            secs(c["second"]),
        ]
        for c in calls
    ]
    emit(table(["columns (20 queries x 200 synthetic rows)", "array type", "first call s", "second call s"], rows))
    emit()
    emit(
        f"- `MixedTypeKNeighbors.kneighbors` in a fresh child. numba compiles `_nearest_neighbors` once per "
        f"argument type and process (no on-disk cache): {len(extra['signatures'])} signature(s) compiled here. "
        f"One-off cost in total: {secs(outcome.seconds)} s, paid by the first linkability or inference "
        "evaluation of a process."
    )
    emit()


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k training rows only")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = TRAIN_ROWS[:1] if args.quick else TRAIN_ROWS
    runs = [(rows, "marginals") for rows in sizes]
    if not args.quick:
        runs.append((IDENTITY_ROWS, "identity"))
    emit(f"# synth-release-gate attack benchmark ({'quick' if args.quick else 'full'} run)")
    emit()
    emit(table(["machine", ""], machine(PACKAGES)))
    emit()
    with tempfile.TemporaryDirectory(prefix="attack-bench-") as tmp:
        prepared = []
        for rows in sizes:
            names = sorted({g for r, g in runs if r == rows})
            log(f"[data] {rows:,} training rows: subset, prepare (SDV metadata inference), {', '.join(names)}")
            prepared.append(build(rows, names, Path(tmp)))
        attacks_section(prepared, runs)
        jit_section(prepared[0])
    emit(f"Load average at end: {load_average()}.")
    emit()
    emit(f"Benchmark total: {secs(time.perf_counter() - start)} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
