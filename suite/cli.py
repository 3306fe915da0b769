"""Command line: `run` (with `--workers`, `--executor dask`, `--resume DIR`), `validate`, `plan`, `compare`,
`verify`, `check-generator`, `export-marginals`, `sample` and `list`.

Exit codes: 0 every generator's verdict equals its expectation; 1 some verdict does not
(a generator blocked that was expected to be released, or a canary released), or no `expect: candidate`
generator was released and selected; 2 bad input or usage. With several scenarios the worst code
wins. `compare` exits 1 when something got worse.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from suite.errors import ConfigError

OK, GATE_FAILED, BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="suite", description="Release gate for synthetic health data.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="fit, attack, measure and judge; write a run folder per scenario")
    run.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO")
    run.add_argument("--out", type=Path, default=None, help="folder for run folders (default: the scenario's `output`)")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,  # `suite --debug run` sets it too
        help="print a failing generator's or check's own message and traceback on stderr (never in a report)",
    )
    run.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue an interrupted run folder; finished work is reused",
    )
    run.add_argument(
        "--keep-cache",
        action="store_true",
        help="keep fitted generators and samples in the run folder after a finished run (they can hold real rows)",
    )
    run.add_argument("--workers", type=int, default=1, help="tasks (generator x repeat) run in parallel (default 1)")
    run.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes or a Dask cluster")
    run.add_argument(
        "--address", default=None, help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)"
    )
    run.add_argument(
        "--no-plan",
        action="store_true",
        help="skip the null release that warns, before fitting, of uncertifiable gates",
    )
    power = sub.add_parser("plan", help="what each privacy threshold can certify on this table; nothing is fitted")
    power.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO")
    handover = sub.add_parser("split", help="write the training rows to hand to a vendor, with a record of the split")
    handover.add_argument("scenario", type=Path, metavar="SCENARIO")
    handover.add_argument("--out", type=Path, required=True, help="folder for train.csv (or .parquet) and split.json")
    handover.add_argument("--format", choices=("csv", "parquet"), default="csv", help="the training table's format")
    check = sub.add_parser("verify", help="is FILE a table this scorecard released? (exit 0 yes, 1 no)")
    check.add_argument("scorecard", type=Path, metavar="SCORECARD", help="scorecard.json or its run folder")
    check.add_argument("file", type=Path, metavar="FILE", help="the table to check, byte for byte")
    validate = sub.add_parser("validate", help="check scenarios without running them")
    validate.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO")
    compare = sub.add_parser("compare", help="what got worse between two runs (exit 1 if anything did)")
    compare.add_argument("old", type=Path, metavar="OLD", help="run folder or scorecard.json of the earlier run")
    compare.add_argument("new", type=Path, metavar="NEW", help="run folder or scorecard.json of the later run")
    compare.add_argument("--abs-tol", type=float, default=None, help="absolute tolerance (default 0.01)")
    compare.add_argument(
        "--rel-tol", type=float, default=None, help="tolerance relative to the old value (default 0.05)"
    )
    contract = sub.add_parser("check-generator", help="run the generator contract on the shipped data")
    contract.add_argument("generator", metavar="NAME", help="a registered generator")
    contract.add_argument("--params", default="{}", help="parameters as JSON, e.g. '{\"epochs\": 5}'")
    contract.add_argument("--rows", type=int, default=1_500, help="training rows of the shipped table (default 1500)")
    sub.add_parser("list", help="list registered generators and checks")
    export = sub.add_parser(
        "export-marginals", help="fit `marginals` on a scenario's training rows and write its model as JSON"
    )
    export.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file naming the dataset")
    export.add_argument("--out", type=Path, required=True, help="JSON file to write (docs/marginals.md)")
    export.add_argument("--params", default="{}", help="marginals parameters as JSON, e.g. '{\"min_count\": 20}'")
    draw = sub.add_parser("sample", help="draw rows from an exported (perhaps edited) marginals model alone; no data")
    draw.add_argument("model", type=Path, metavar="MODEL", help="a model file written by export-marginals")
    draw.add_argument("--rows", type=int, required=True, help="rows to draw")
    draw.add_argument("--out", type=Path, required=True, help="the table to write: .csv or .parquet")
    draw.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    os.environ.setdefault("SDV_DISABLE_ANALYTICS", "1")
    warnings.showwarning = _show_warning
    try:
        if args.command == "list":
            return _list()
        if args.command == "validate":
            return max(_validate(path) for path in args.scenarios)
        if args.command == "check-generator":
            return _check_generator(args.generator, args.params, args.rows)
        if args.command == "export-marginals":
            return _export_marginals(args.scenario, args.out, args.params)
        if args.command == "sample":
            return _sample(args.model, args.rows, args.out, args.seed)
        if args.command == "split":
            return _split(args.scenario, args.out, args.format)
        if args.command == "verify":
            return _verify(args.scorecard, args.file)
        if args.command == "plan":
            return max(_plan(path) for path in args.scenarios)
        if args.command == "compare":
            return _compare(args.old, args.new, abs_tol=args.abs_tol, rel_tol=args.rel_tol)
        return _run_all(args)
    except ConfigError as exc:
        _error(exc, args.debug)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"warning: {message}", file=sys.stderr)


def _error(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc)
    print(f"error: {exc}", file=sys.stderr)


def _load(path: Path):  # noqa: ANN202
    from suite.plan import resolve
    from suite.scenario import load_scenario

    scenario, resolved = load_scenario(path)
    return resolve(scenario, resolved)


def _validate(path: Path) -> int:
    try:
        plan = _load(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    names = ", ".join(c.spec.name for c in plan.checks)
    print(f"{path}: valid ({len(plan.generators)} generator(s); checks: {names})")
    return OK


def _split(path: Path, out: Path, fmt: str) -> int:
    from suite.handover import write_split
    from suite.runner import prepare_data

    plan = _load(path)
    record = write_split(prepare_data(plan), plan.scenario.split.model_dump(), out, fmt=fmt)
    print(f"training rows for the table's maker: {record.parent / ('train.' + fmt)}; record of the split: {record}")
    print("set split.record in the scenario to that record and gate the returned table with the `file` generator")
    return OK


def _verify(scorecard: Path, file: Path) -> int:
    from suite.release import verify

    table, message = verify(scorecard, file)
    print(message)
    return OK if table is not None else GATE_FAILED


#: A gate passed this often by a clean release barely lowers the joint rate: the plan does not re-measure it.
_ALL_BUT_CERTAIN = 0.995


def _plan(path: Path) -> int:
    """The null release's interval for every gated privacy measurement; exit 0 (a plan is advice)."""
    from suite.power import MAX_HOLDOUT, TARGET_PASS_RATE, joint_advice, joint_rate, null_release, refine, render
    from suite.runner import prepare_data

    plan = _load(path)
    sc = plan.scenario
    rows = null_release(plan, prepare_data(plan))
    weak = {r.measurement for r in rows if not r.certifiable}
    if (joint_rate(rows) or 0.0) < TARGET_PASS_RATE:  # every gate that is not all but certain weighs on the product
        weak |= {r.measurement for r in rows if r.pass_rate is None or r.pass_rate < _ALL_BUT_CERTAIN}
    advice = None
    if weak and sc.split.holdout < MAX_HOLDOUT:  # measure the advice: the same null at the largest holdout
        split = sc.split.model_copy(update={"holdout": MAX_HOLDOUT})
        larger = dataclasses.replace(plan, scenario=sc.model_copy(update={"split": split}))
        more = null_release(larger, prepare_data(larger), only=lambda name: any(fnmatchcase(w, name) for w in weak))
        advice = joint_advice(rows, more, sc.split.holdout, MAX_HOLDOUT, sc.confidence)
        rows = refine(rows, more, sc.split.holdout, MAX_HOLDOUT, sc.confidence)
    print(render(rows, f"{path} (holdout {sc.split.holdout:g})", advice))
    return OK


def _run_all(args: argparse.Namespace) -> int:
    from suite.runner import Execution, resumable

    if args.address is not None and args.executor != "dask":
        raise ConfigError("--address needs --executor dask", source="--address")
    if args.workers < 1:
        raise ConfigError("at least 1 worker is needed", source="--workers")
    if args.resume is not None:
        if args.scenarios:
            raise ConfigError("give either scenarios or --resume DIR (the run folder knows its scenario)", source="run")
        how = Execution(
            args.executor, args.workers, args.address, resume=args.resume, debug=args.debug, power=not args.no_plan
        )
        return _run(resumable(args.resume), out=None, quiet=args.quiet, execution=how, keep_cache=args.keep_cache)
    if not args.scenarios:
        raise ConfigError("name at least one scenario file, or --resume DIR", source="run")
    how = Execution(args.executor, args.workers, args.address, debug=args.debug, power=not args.no_plan)
    return max(
        _run(path, out=args.out, quiet=args.quiet, execution=how, keep_cache=args.keep_cache) for path in args.scenarios
    )


def _run(path: Path, *, out: Path | None, quiet: bool, execution: Any = None, keep_cache: bool = False) -> int:
    from suite.reports import canary_table, gate_table, verdict_table, write_reports
    from suite.runner import Progress, run, trim_memory

    try:
        plan = _load(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    try:
        with Progress(enabled=not quiet) as progress:  # a bar when stderr is a terminal, plain lines otherwise
            result = run(plan, out=out, progress=progress, execution=execution)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    gc.collect()  # the run's tables and searches are gone: their pages go back before the reports' workers start
    trim_memory()
    write_reports(result.scorecard, result.run_dir)
    if not keep_cache:  # the run is complete: models and samples (real rows, for identity and holdout) go
        from suite.cache import clear

        clear(result.run_dir)
    print(gate_table(result.scorecard))
    print()
    if matrix := canary_table(result.scorecard):
        print(matrix, end="\n\n")
    print(verdict_table(result.scorecard))
    print(f"run folder: {Path(result.run_dir).resolve()}")
    return OK if result.scorecard.summary.all_as_expected else GATE_FAILED


def _compare(old: Path, new: Path, *, abs_tol: float | None, rel_tol: float | None) -> int:
    from suite.reports.compare import ABS_TOL, REL_TOL, caveats, compare, load_scorecard, render_changes

    before, after = load_scorecard(old), load_scorecard(new)
    tolerances = {
        "abs_tol": ABS_TOL if abs_tol is None else abs_tol,
        "rel_tol": REL_TOL if rel_tol is None else rel_tol,
    }
    changes = compare(before, after, **tolerances)
    print(render_changes(changes, caveats(before, after)))
    return GATE_FAILED if any(c.regression for c in changes) else OK


def _json_params(text: str, *, example: str) -> dict:
    """`--params`: a JSON object, or a clear error."""
    import json

    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc.msg} at character {exc.pos}", source="--params") from None
    except RecursionError:
        raise ConfigError("JSON nested too deep; give parameters as a flat JSON object", source="--params") from None
    if not isinstance(params, dict):
        raise ConfigError(f"expected a JSON object of parameters, like '{example}'", source="--params")
    return params


def _check_generator(name: str, params_json: str, rows: int) -> int:

    from suite.registry import generators
    from suite.testing import contract_data_for, generator_contract

    cls = generators.get(name)
    if getattr(cls, "external", False):
        raise ConfigError(
            f"{name} gates a table made elsewhere; the generator contract does not apply to it. Gate the table "
            "with a scenario (docs/releasing.md)",
            source="check-generator",
        )
    params = _json_params(params_json, example='{"epochs": 5}')
    from suite.plan import validate_params

    params = validate_params(cls, params, where=f"--params for {name}")
    train, metadata = contract_data_for(cls, rows)
    results = generator_contract(cls, train, metadata, params=params)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'}  {r.clause}" + (f": {r.message}" if r.message else ""))
    failed = sum(not r.ok for r in results)
    print(f"{name}: {len(results) - failed} of {len(results)} contract clauses hold")
    return OK if not failed else GATE_FAILED


def _export_marginals(path: Path, out: Path, params_json: str) -> int:
    """Fit `marginals` on the scenario's training rows (prepared as a run prepares them) and write
    its model; the scenario's own `marginals` parameters apply, `--params` overrides them."""

    from suite.generators.marginals import MarginalsGenerator
    from suite.plan import validate_params
    from suite.runner import prepare_data

    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(
            "expected a scenario file (.yaml); name the dataset in a scenario's `dataset` section", source=str(path)
        )
    extra = _json_params(params_json, example='{"min_count": 20}')
    if "model" in extra:
        raise ConfigError("`model` reads a model; export-marginals writes one from the data", source="--params")
    if not out.parent.is_dir():
        raise ConfigError("the folder to write the model into does not exist", source=str(out))
    plan = _load(path)
    sc = plan.scenario
    listed = next((dict(g.params) for g in plan.generators if g.spec.name == "marginals"), {})
    listed.pop("model", None)
    params = validate_params(MarginalsGenerator, {**listed, **extra}, where="--params for marginals")
    data = prepare_data(plan)
    generator = MarginalsGenerator(**params).fit(data.train, data.metadata, seed=sc.seed)
    generator.save(out)
    chosen = ", ".join(f"{c}: {f}" for c, f in generator.fit_info().items())
    print(f"{out}: marginals model of {len(data.train)} training rows ({chosen})")
    return OK


def _sample(model: Path, rows: int, out: Path, seed: int) -> int:
    """Rows drawn from a marginals model file alone; the table is not gated (a scenario gates it)."""
    from suite.generators.marginals import MarginalsGenerator
    from suite.io import write_bytes_atomic
    from suite.release import table_bytes
    from suite.scenario import MAX_SEED

    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise ConfigError("name a .csv or .parquet file to write", source="--out")
    if not out.parent.is_dir():
        raise ConfigError("the folder to write the table into does not exist", source=str(out))
    if not 1 <= rows <= 100_000_000:
        raise ConfigError(f"expected a number of rows from 1 to 100,000,000 (got {rows})", source="--rows")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"expected a seed from 0 to {MAX_SEED} (got {seed})", source="--seed")
    generator = MarginalsGenerator.load(model)
    write_bytes_atomic(out, table_bytes(generator.sample(rows, seed=seed), fmt))
    print(f"{out}: {rows} rows drawn from {model} (seed {seed}); not gated: gate it with a scenario whose generator is")
    print(f"  {{name: marginals, params: {{model: {model}}}}} (docs/marginals.md)")
    return OK


def _list() -> int:
    from suite.registry import checks, generators

    for registry in (generators, checks):
        print(f"{registry.kind}s:")
        for name in registry.names():
            cls = registry.get(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"  {name:<22} {registry.source(name):<10} {doc}")
        for name, problem in registry.broken().items():
            print(f"  {name:<22} BROKEN     {problem}")
    return OK
