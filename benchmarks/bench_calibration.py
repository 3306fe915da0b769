"""Calibration study: how often the gate blocks real unseen data, and how often it catches leaks.

Run from the repository root::

    python benchmarks/bench_calibration.py                 # every shipped table, 20 split seeds (hours)
    python benchmarks/bench_calibration.py --quick         # two tables, five seeds
    python benchmarks/bench_calibration.py --tables flchain_2k --seeds 10 --fit-seeds 3
    python benchmarks/bench_calibration.py --tables adult --seeds 20 --canary-seeds 5   # the null alone past seed 4

For each table and split seed a scenario is written that runs the default preset's privacy checks
(collisions, dcr, singling out, linkability, inference, membership) on:

- `holdout`: real rows nobody trained on, the null (what "no leakage" looks like);
- the canaries `identity`, `noisy_copy`, `verbatim_copy` (5% of training rows pasted into a clean
  `marginals` release), `outlier_copy` (near-copies of the 2% most isolated training rows in a clean
  Gaussian copula release) and `partial_copy` (quasi-identifiers and secrets of 10% of training rows
  pasted into clean rows; only on tables with both roles);
- `sdv.gaussian_copula`, a clean model, on the first `--fit-seeds` seeds of the tables that name it.

Each (table, seed) is one `suite` run; its judgements are appended to a JSON-lines file, so an
interrupted study resumes where it stopped (`--results`). The printed tables, per gated measurement:

- the null's release rate (the false-block rate is one minus it), per gate, and jointly the share of runs
  that pass every privacy gate (not the verdict: a seed that judges the null alone runs no canary, and
  `suite.informative` blocks a gate that shows no canary it can fire);
- the coverage of the bound the gate reads: the share of null runs whose one-sided bound lies on the
  unsafe side of the measurement's no-leak value (0 for an excess or a risk, 0.5 for an AUC or the DCR
  share), which a valid bound at 95% does in about 95% of runs;
- the clean model's release rate on privacy, and each canary's block rate and `risk shown` rate.

Markdown goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from harness import emit, load_average, log, machine, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data"
CANARIES = ["identity", "noisy_copy", "verbatim_copy", "outlier_copy", "partial_copy"]
NULL = "holdout"
CLEAN = "sdv.gaussian_copula"


@dataclass(frozen=True)
class Table:
    """A shipped table, a row subsample of it, and the roles the attacks need."""

    name: str
    path: Path
    roles: dict[str, Any]
    metadata: Path | None = None
    rows: int | None = None  # a fixed random subsample of this many rows (or whole entities)
    drop: tuple[str, ...] = ()
    clean: bool = False  # the clean model is fitted on this table
    holdout: float = 0.3
    extra_policy: dict[str, Any] = field(default_factory=dict)
    #: parameters of a check on this table, as the shipped scenario sets them (linkability's column halves: the
    #: default halves of the quasi-identifiers link nobody on covid_testing or flchain, so they are uninformative
    #: and would block every release through `suite.informative`)
    check_params: dict[str, dict[str, Any]] = field(default_factory=dict)


COVID_ROLES = {
    "identifiers": ["subject_id", "fake_first_name", "fake_last_name"],
    "quasi_identifiers": ["gender", "age", "clinic_name", "pan_day", "drive_thru_ind"],
    "secrets": ["result", "ct_result", "payor_group"],
    "target": "result",
    "entity": "subject_id",
}
CENSUS_ROLES = {
    "quasi_identifiers": ["age", "sex", "race", "education", "marital_stat"],
    "secrets": ["income_gt_50k", "major_occupation_code"],
    "target": "income_gt_50k",
}
FLCHAIN_ROLES = {"quasi_identifiers": ["age", "sex", "sample.yr"], "secrets": ["death", "chapter"], "target": "death"}
COVID_LINKS = {
    "linkability": {
        "aux_cols": [
            ["gender", "age", "clinic_name", "pan_day", "drive_thru_ind"],
            ["ct_result", "col_rec_tat", "rec_ver_tat", "patient_class"],
        ]
    }
}
FLCHAIN_LINKS = {"linkability": {"aux_cols": [["age", "sex", "sample.yr"], ["kappa", "lambda", "creatinine"]]}}
#: adult's default halves of the quasi-identifiers link nobody, not even `identity` (each half is shared by
#: hundreds of people), so linkability was uninformative and blocked every adult release: demographics on
#: one side, work and money on the other (`identity`: risk 0.066 [0.047, 0.084]; `holdout`: 0, seed 0)
ADULT_LINKS = {
    "linkability": {
        "aux_cols": [
            ["age", "sex", "race", "education", "marital-status", "native-country"],
            ["workclass", "occupation", "relationship", "hours-per-week", "capital-gain", "capital-loss"],
        ]
    }
}
TABLES = {
    t.name: t
    for t in [
        Table(
            "covid_testing",
            DATA / "covid_testing.parquet",
            COVID_ROLES,
            DATA / "covid_testing.metadata.json",
            clean=True,
            check_params=COVID_LINKS,
        ),
        Table(
            "adult",
            DATA / "adult.parquet",
            {
                "quasi_identifiers": ["age", "sex", "race", "education", "marital-status"],
                "secrets": ["income", "occupation"],
                "target": "income",
            },
            drop=("split",),
            clean=True,
            check_params=ADULT_LINKS,
        ),
        Table("flchain", DATA / "flchain.parquet", FLCHAIN_ROLES, check_params=FLCHAIN_LINKS),
        Table("flchain_5k", DATA / "flchain.parquet", FLCHAIN_ROLES, rows=5_000, check_params=FLCHAIN_LINKS),
        Table("flchain_2k", DATA / "flchain.parquet", FLCHAIN_ROLES, rows=2_000, check_params=FLCHAIN_LINKS),
        Table(
            "census_20k",
            DATA / "census_kdd.parquet",
            CENSUS_ROLES,
            rows=20_000,
            drop=("split", "instance_weight"),
        ),
        # the same sample at holdout 0.5 (the plan's largest until session 18): at 0.3 the yardstick
        # releases 3,000 people as 14,000 rows, and collisions' null SD (0.008) cannot certify 0.01; the plan says so
        Table(
            "census_20k_h50",
            DATA / "census_kdd.parquet",
            CENSUS_ROLES,
            rows=20_000,
            drop=("split", "instance_weight"),
            holdout=0.5,
        ),
        # and at the largest (an even three-way split): collisions alone would pass 96% of the time, but the plan
        # puts every gate together at 84%, singling out and the isolated excess losing what collisions gains
        Table(
            "census_20k_h67",
            DATA / "census_kdd.parquet",
            CENSUS_ROLES,
            rows=20_000,
            drop=("split", "instance_weight"),
            holdout=2 / 3,
        ),
        Table("pbcseq", DATA / "pbcseq.parquet", {}, DATA / "pbcseq.metadata.json", holdout=0.5),
    ]
}
QUICK = ("flchain_2k", "covid_testing")


def null_value(measurement: str) -> float:
    """What a release without leakage scores in expectation: 0.5 for a share or an AUC, 0 for an excess or risk."""
    return 0.5 if measurement.endswith(".auc") or measurement == "dcr.share_closer_to_train" else 0.0


def _data_file(t: Table, folder: Path) -> Path:
    """The table as the study runs it: the shipped file, or a fixed subsample written once."""
    if t.rows is None and not t.drop:
        return t.path
    out = folder / f"{t.name}.parquet"
    if not out.exists():
        frame = pd.read_parquet(t.path).drop(columns=list(t.drop))
        if t.rows is not None and t.rows < len(frame):
            frame = frame.sample(t.rows, random_state=0).reset_index(drop=True)
        frame.to_parquet(out, index=False)
    return out


def _scenario(t: Table, seed: int, folder: Path, fit_clean: bool, canaries: bool = True) -> Path:
    from suite.declarations import privacy_checks

    generators: list[dict[str, Any]] = [{"name": NULL}]
    if fit_clean:
        generators.append({"name": CLEAN})
    roles = t.roles or {}
    has_roles = bool(roles.get("quasi_identifiers") and roles.get("secrets")) or t.metadata is not None
    if canaries:
        generators += [{"name": c, "expect": "block"} for c in CANARIES if c != "partial_copy" or has_roles]
    dataset: dict[str, Any] = {"path": str(_data_file(t, folder))}
    if t.metadata is not None:
        dataset["metadata"] = str(t.metadata)
    if t.roles:
        dataset["roles"] = t.roles
    scenario = {
        "name": f"calibration-{t.name}-{seed}",
        "dataset": dataset,
        "split": {"holdout": t.holdout, "seed": seed},
        "generators": generators,
        "checks": [  # every check that declares a privacy measurement
            {"name": c, "params": t.check_params[c]} if c in t.check_params else c for c in privacy_checks()
        ],
        "policy": t.extra_policy,
        "output": str(folder / "runs"),
    }
    path = folder / f"{t.name}-{seed}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def run_one(
    t: Table, seed: int, folder: Path, fit_clean: bool, workers: int, canaries: bool = True
) -> list[dict[str, Any]]:
    """One suite run of the table at this split seed; one row per (generator, gated measurement)."""
    from suite.cli import _load
    from suite.runner import Execution, run

    plan = _load(_scenario(t, seed, folder, fit_clean, canaries))
    result = run(plan, out=folder / "runs", execution=Execution(workers=workers, power=False))
    rows = []
    for g in result.scorecard.generators:
        for m in g.measurements:
            if m.threshold is None or not m.threshold.gates:
                continue
            rows.append(
                {
                    "table": t.name,
                    "seed": seed,
                    "generator": g.name,
                    "verdict": g.verdict,
                    "measurement": m.name,
                    "status": str(m.status.value),
                    "value": m.value,
                    "ci": m.ci,
                    "max": m.threshold.max,
                    "min": m.threshold.min,
                }
            )
    return rows


def _done(results: Path) -> set[tuple[str, int, bool, bool]]:
    """(table, seed, clean model fitted, canaries run) of every run in the results file."""
    if not results.exists():
        return set()
    seen = set()
    for line in results.read_text().splitlines():
        row = json.loads(line)
        seen.add((row["table"], row["seed"], row.get("clean_fitted", False), row.get("canaries", True)))
    return seen


def _bound(row: dict[str, Any]) -> float | None:
    """The end the gate reads: the unfavourable one (upper for a max), never better than the value."""
    value, ci = row["value"], row["ci"]
    if value is None:
        return None
    if row["max"] is not None:
        return max(value, ci[1]) if ci else value
    return min(value, ci[0]) if ci else value


def summarise(rows: list[dict[str, Any]]) -> str:
    """The study's tables in Markdown."""
    out = []
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["generator"], r["measurement"])].append(r)
    tables = sorted({r["table"] for r in rows})
    measurements = sorted({r["measurement"] for r in rows})

    # 1. the null, per gate: release rate and coverage of the bound
    lines = []
    for name in measurements:
        null = [r for r in by[(NULL, name)]]
        if not null:
            continue
        passed = sum(r["status"] == "pass" for r in null)
        bounds = [(b, r) for r in null if (b := _bound(r)) is not None]
        covered = sum((b >= null_value(name)) if r["max"] is not None else (b <= null_value(name)) for b, r in bounds)
        lines.append(
            [
                name,
                str(len(null)),
                f"{passed / len(null):.2f}",
                f"{covered / len(bounds):.2f}" if bounds else "n/a",
                f"{pd.Series([r['value'] for r in null], dtype=float).mean():.3f}",
            ]
        )
    out += ["## The null (`holdout`): release rate and coverage per gate, pooled over tables", ""]
    out += [table(["measurement", "runs", "release rate", "bound covers no-leak value", "mean value"], lines), ""]

    # 2. jointly, per table and generator: the share of runs that pass every privacy gate. The gates' own
    # judgements, not the verdict: a seed that judges the null alone runs no canary, so the rule that a gate
    # must show it can fire (`suite.informative`) would block it for a reason that is not the null's
    passed: dict[tuple[str, str, int], bool] = {}
    risk: dict[tuple[str, str, int], bool] = {}
    for r in rows:
        key = (r["table"], r["generator"], r["seed"])
        passed[key] = passed.get(key, True) and r["status"] == "pass"
        risk[key] = risk.get(key, False) or r["status"] in ("risk shown", "fail")
    generators = [NULL, CLEAN, *CANARIES]
    lines = []
    for t in tables:
        for g in generators:
            keys = [k for k in passed if k[0] == t and k[1] == g]
            if not keys:
                continue
            released = sum(passed[k] for k in keys)
            shown = sum(risk[k] for k in keys)
            lines.append([t, g, str(len(keys)), f"{released / len(keys):.2f}", f"{shown / len(keys):.2f}"])
    out += ["## Jointly over the privacy gates, per table (every gate passes)", ""]
    out += [table(["table", "generator", "seeds", "pass rate", "risk shown in a gate"], lines), ""]

    # 3. which gate catches which canary: block rate per gate
    lines = []
    for name in measurements:
        cells = [name]
        for g in CANARIES + [CLEAN]:
            got = by[(g, name)]
            cells.append(f"{sum(r['status'] != 'pass' for r in got) / len(got):.2f}" if got else "-")
        lines.append(cells)
    out += ["## Block rate of each gate, per generator (all tables)", ""]
    out += [table(["measurement", *CANARIES, CLEAN], lines)]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"tables {', '.join(QUICK)}, five seeds")
    parser.add_argument("--tables", nargs="*", choices=sorted(TABLES), default=None)
    parser.add_argument("--seeds", type=int, default=None, help="split seeds per table (default 20, quick 5)")
    parser.add_argument("--fit-seeds", type=int, default=None, help="seeds on which the clean model is fitted")
    parser.add_argument(
        "--canary-seeds",
        type=int,
        default=None,
        help="seeds on which the canaries run (default: every seed); later seeds judge the null alone (no fit)",
    )
    parser.add_argument("--workers", type=int, default=2, help="generators judged in parallel")
    parser.add_argument("--results", type=Path, default=ROOT / "artifacts" / "calibration.jsonl")
    parser.add_argument("--summary-only", action="store_true", help="print the tables of the results file")
    args = parser.parse_args(argv)
    tables = args.tables or (list(QUICK) if args.quick else list(TABLES))
    seeds = args.seeds or (5 if args.quick else 20)
    fit_seeds = args.fit_seeds if args.fit_seeds is not None else seeds
    canary_seeds = args.canary_seeds if args.canary_seeds is not None else seeds
    args.results.parent.mkdir(parents=True, exist_ok=True)

    if not args.summary_only:
        done = _done(args.results)
        with tempfile.TemporaryDirectory() as tmp:
            for name in tables:
                t = TABLES[name]
                for seed in range(seeds):
                    fit_clean = t.clean and seed < fit_seeds
                    canaries = seed < canary_seeds
                    if (name, seed, fit_clean, canaries) in done or (name, seed, fit_clean, True) in done:
                        continue
                    start = time.perf_counter()
                    what = (" with the clean model" if fit_clean else "") + ("" if canaries else ", the null alone")
                    log(f"[calibration] {name} seed {seed}{what}")
                    rows = run_one(t, seed, Path(tmp), fit_clean, args.workers, canaries)
                    with args.results.open("a") as f:
                        for r in rows:
                            f.write(json.dumps({**r, "clean_fitted": fit_clean, "canaries": canaries}) + "\n")
                    log(f"[calibration] {name} seed {seed}: {time.perf_counter() - start:.0f} s")
    rows = [json.loads(line) for line in args.results.read_text().splitlines()] if args.results.exists() else []
    rows = [r for r in rows if r["table"] in tables]
    emit(f"# Calibration study ({time.strftime('%Y-%m-%d')})")
    emit()
    emit(table(["machine", ""], machine(("numpy", "pandas", "anonymeter", "sdv"))))
    emit()
    emit(f"Load average at the end: {load_average()}")
    emit()
    emit(f"Command: `python benchmarks/bench_calibration.py {' '.join(argv or sys.argv[1:])}`")
    emit()
    emit(summarise(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
