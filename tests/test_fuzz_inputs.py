"""A fixed corpus of odd inputs: whatever a scenario or table holds, the CLI ends with exit 0, 1 or 2 and a
message, never a traceback (which CI would read as exit 1, "the gate failed").

The corpus is deterministic: every key of a small valid scenario deleted or replaced by each odd value
below, raw YAML texts, and table variants built from 120 rows of the shipped flchain table. Scenario variants
go through `validate` (and through `run` when `validate` accepts them: that is where a number the run cannot
use shows); table variants through `validate` and a tiny `run` (generator `uniform`, checks collisions and
dcr); metadata files of the wrong shape through `run`, which must refuse them (exit 2).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from suite.cli import main
from tests.conftest import ROOT

BASE: dict[str, Any] = {
    "name": "fuzz",
    "dataset": {"path": "table.csv", "roles": {"quasi_identifiers": ["age", "sex"], "secrets": ["death"]}},
    "split": {"holdout": 0.5, "seed": 0},
    "generators": [{"name": "uniform", "params": {}}],
    "checks": ["collisions", {"name": "dcr"}],
    "policy": {"collisions.excess": {"max": 0.01}},
    "repeats": 1,
    "report": {"min_count": 5},
}
ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "ü🙂\u202edcr",
    "a\x00b",
    -1,
    0,
    2**64,
    -(2**64),
    1e308,
    math.nan,
    math.inf,
    True,
    [],
    [None],
    {},
    {"": None},
    "x" * 5_000,
    "all",
    "0.3",
]
RAW_TEXTS = [
    "",
    "---\n",
    "- a\n- b\n",
    ":\n",
    "\ufeffname: x\n",
    "name: x\n\tdataset: y\n",
    "? [a, b]\n: c\n",
    "{a: 1}: 2\n",
    "name: *nowhere\n",
    "%YAML 9.9\n---\nname: x\n",
    "name: 2020-01-01\ndataset: {path: table.csv}\ngenerators: [{name: uniform}]\n",
    "name: !!binary aGVsbG8=\n",
    "name: !!set {a, b}\n",
    "base: &b {name: uniform}\ngenerators: [{<<: *b, expect: block}]\nname: x\ndataset: {path: table.csv}\n",
    "name: x\ndataset: {path: table.csv}\ngenerators: [{name: uniform}]\nrepeats: 1e400\n",
    "name: x\ndataset: {path: table.csv}\ngenerators: [{name: uniform}]\nseed: 0x_ff\n",
    "name: x\ndataset: {path: table.csv}\ngenerators: [{name: uniform}]\noutput: /dev/null\n",
    "name: x\ndataset: {path: table.csv}\ngenerators: [{name: uniform}]\ndataset: {path: table.csv}\n",
]


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key and list position in `value`, outermost first."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _edited(path: tuple, new: Any, *, delete: bool = False) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(BASE))  # a deep copy
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return doc


def _scenario_corpus() -> list[tuple[str, str]]:
    """(label, YAML text) pairs: deletions, replacements, a few structural edits and raw texts."""
    corpus = []
    for path in _paths(BASE):
        label = ".".join(map(str, path))
        corpus.append((f"{label} deleted", yaml.safe_dump(_edited(path, None, delete=True))))
        for i, value in enumerate(ODD_VALUES):
            corpus.append((f"{label} = odd[{i}]", yaml.safe_dump(_edited(path, value), allow_unicode=True)))
    corpus += [
        ("top level a list", yaml.safe_dump([BASE])),
        ("unknown unicode key", yaml.safe_dump({**BASE, "ünknown🙂": 1}, allow_unicode=True)),
        (
            "1,000 generators",
            yaml.safe_dump({**BASE, "generators": [{"name": "uniform", "label": f"u{i}"} for i in range(1_000)]}),
        ),
        ("checks a map", yaml.safe_dump({**BASE, "checks": {"dcr": {}}})),
        ("policy a list", yaml.safe_dump({**BASE, "policy": [{"collisions.excess": {"max": 0.01}}]})),
        ("dataset a folder", yaml.safe_dump({**BASE, "dataset": {"path": "."}})),
        ("dataset a folder named .csv", yaml.safe_dump({**BASE, "dataset": {"path": "folder.csv"}})),
        ("metadata a folder", yaml.safe_dump({**BASE, "dataset": {**BASE["dataset"], "metadata": "."}})),
        ("output a file", yaml.safe_dump({**BASE, "output": "table.csv"})),
    ]
    corpus += [(f"raw[{i}]", text) for i, text in enumerate(RAW_TEXTS)]
    return corpus


def _outcome(*argv: str) -> tuple[int, str]:
    """Exit code and stderr of `suite.cli.main`, in this process; an exception escaping `main` is what Python
    would print (a traceback) and exit 1 with."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse, or a library calling sys.exit
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - the defect this corpus looks for
            traceback.print_exc()
            code = 1
    return code, err.getvalue()


def _defect(label: str, code: int, err: str, *, expected: tuple[int, ...] = (0, 1, 2)) -> str | None:
    """A line describing what went wrong, or None: the exit code is expected and no traceback was printed."""
    if code in expected and "Traceback" not in err:
        return None
    return f"{label}: exit {code}: {err.strip().splitlines()[-1][:300] if err.strip() else '(no message)'}"


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_parquet(ROOT / "data" / "flchain.parquet").sample(120, random_state=3).reset_index(drop=True)


def test_scenario_corpus_never_ends_in_a_traceback(tmp_path_factory, sample, monkeypatch):
    folder = tmp_path_factory.mktemp("fuzz-scenarios")
    sample.to_csv(folder / "table.csv", index=False)
    (folder / "folder.csv").mkdir()
    monkeypatch.chdir(folder)
    outcomes: dict[int, int] = {}
    defects = []
    accepted = []
    for label, text in _scenario_corpus():
        path = folder / "scenario.yaml"
        path.write_text(text, encoding="utf-8")
        code, err = _outcome("validate", str(path))
        outcomes[code] = outcomes.get(code, 0) + 1
        defects.append(_defect(label, code, err, expected=(0, 2)))
        if code == 2 and ("scenario.yaml" not in err or len(err) > 12_000):
            defects.append(f"{label}: the message does not name the file, or is {len(err):,} characters long")
        if code == 0 and not label.startswith("1,000"):
            accepted.append((label, text))
    # What validate accepts, the run must use or refuse (exit 2): a spread of a dozen accepted variants.
    for label, text in accepted[:: max(1, len(accepted) // 12)]:
        path.write_text(text, encoding="utf-8")
        code, err = _outcome("run", str(path), "--quiet", "--out", str(folder / "runs"))
        defects.append(_defect(f"{label} (run)", code, err))
    assert not [d for d in defects if d], "\n".join(d for d in defects if d)
    assert outcomes.get(2, 0) > 300 and outcomes.get(0, 0) > 20, outcomes  # the corpus reaches both ends


def _table_variants(sample: pd.DataFrame) -> dict[str, Callable[[Path], None]]:
    """Writers of odd tables, by label; each writes `table.csv` or `table.parquet` into a folder."""

    def csv(frame: pd.DataFrame) -> Callable[[Path], None]:
        return lambda folder: frame.to_csv(folder / "table.csv", index=False)

    def text(content: str) -> Callable[[Path], None]:
        return lambda folder: (folder / "table.csv").write_text(content, encoding="utf-8")

    def parquet(frame: pd.DataFrame) -> Callable[[Path], None]:
        return lambda folder: frame.to_parquet(folder / "table.parquet", index=False)

    rng = np.random.default_rng(0)
    with_column = sample.assign
    return {
        "empty table": csv(sample.head(0)),
        "one row": csv(sample.head(1)),
        "two rows": csv(sample.head(2)),
        "one column": csv(sample[["age"]]),
        "all-missing column": csv(with_column(extra=np.nan)),
        "all-missing table": text(",".join(sample.columns) + "\n" + ("," * (sample.shape[1] - 1) + "\n") * 50),
        "duplicate columns": text(sample.to_csv(index=False).replace("sex,", "age,", 1)),
        "mixed types in a column": csv(
            with_column(age=[x if i % 3 else f"n/a{i}" for i, x in enumerate(sample["age"])])
        ),
        "unicode names and values": csv(
            with_column(**{"ünï🙂 \u202e": rng.choice(["é", "🙂", "\u202e"], len(sample))})
        ),
        "empty column name": text(sample.to_csv(index=False).replace("sex,", ",", 1)),
        "numeric column names": csv(sample.set_axis([str(i) for i in range(sample.shape[1])], axis=1)),
        "constant everywhere": csv(pd.DataFrame({c: [sample[c].iloc[0]] * len(sample) for c in sample.columns})),
        "infinite values": csv(with_column(kappa=np.where(rng.random(len(sample)) < 0.2, np.inf, sample["kappa"]))),
        "huge values": csv(with_column(kappa=sample["kappa"] * 1e300)),
        "long strings": csv(with_column(note=["x" * 10_000] * len(sample))),
        "every value unique text": csv(with_column(code=[f"id-{i}" for i in range(len(sample))])),
        "booleans": csv(with_column(flag=rng.random(len(sample)) < 0.5)),
        "lists in cells (parquet)": parquet(with_column(tags=[[int(x)] for x in rng.integers(0, 3, len(sample))])),
        "dicts in cells (parquet)": parquet(with_column(meta=[{"a": int(x)} for x in rng.integers(0, 3, len(sample))])),
        "bytes column (parquet)": parquet(with_column(raw=[bytes([int(x)]) for x in rng.integers(0, 3, len(sample))])),
        "time zones (parquet)": parquet(
            with_column(when=pd.date_range("2020-01-01", periods=len(sample), freq="h", tz="Europe/Paris"))
        ),
        "quasi-identifier missing from the table": csv(sample.drop(columns=["sex"])),
    }


def test_table_corpus_never_ends_in_a_traceback(tmp_path_factory, sample):
    defects = []
    for label, write in _table_variants(sample).items():
        folder = tmp_path_factory.mktemp("fuzz-table")
        write(folder)
        (table,) = folder.iterdir()
        scenario = {
            **BASE,
            "dataset": {**BASE["dataset"], "path": table.name},
            "checks": ["collisions", "dcr"],
            "output": str(folder / "runs"),
        }
        path = folder / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
        for command in ("validate", "run"):
            code, err = _outcome(command, str(path), *(["--quiet"] if command == "run" else []))
            defects.append(_defect(f"{label} ({command})", code, err))
            if code == 2 and "error: " not in err:
                defects.append(f"{label} ({command}): exit 2 without a message")
    assert not [d for d in defects if d], "\n".join(d for d in defects if d)


def _columns(sample: pd.DataFrame) -> dict[str, dict]:
    return {c: {"sdtype": "numerical" if sample[c].dtype.kind in "if" else "categorical"} for c in sample.columns}


#: Metadata files of the wrong shape, as edits of the table's correct metadata.
METADATA_VARIANTS: dict[str, Callable[[dict], Any]] = {
    "columns a list": lambda c: {"columns": list(c)},
    "sdtype a number": lambda c: {"columns": {**c, "age": {"sdtype": 3}}},
    "sdtype missing": lambda c: {"columns": {**c, "age": {}}},
    "column spec a string": lambda c: {"columns": {**c, "age": "numerical"}},
    "primary_key a list": lambda c: {"columns": c, "primary_key": ["age"]},
    "tables holding two": lambda c: {"tables": {"a": {"columns": c}, "b": {"columns": c}}},
    "tables holding a number": lambda c: {"tables": {"a": 3}},
    "top level a list": lambda c: [c],
    "a column the table lacks": lambda c: {"columns": {**c, "": {"sdtype": "numerical"}}},
    "roles a list": lambda c: {"columns": c, "roles": ["age"]},
    "roles.target a list": lambda c: {"columns": c, "roles": {"target": ["death"]}},
    "datetime_format a number": lambda c: {"columns": {**c, "age": {"sdtype": "datetime", "datetime_format": 5}}},
}
#: Found by this corpus, outside this module's scope (metadata roles, suite/dataset.py): strict, so a fix shows.
KNOWN: set[str] = set()  # metadata shapes that still end in a traceback (none since hardening II)


@pytest.mark.parametrize(
    "label",
    [
        pytest.param(label, marks=pytest.mark.xfail(strict=True, reason="traceback, exit 1"))
        if label in KNOWN
        else label
        for label in METADATA_VARIANTS
    ],
)
def test_metadata_corpus_is_refused_with_a_message(tmp_path, sample, label):
    sample.to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "table.metadata.json").write_text(json.dumps(METADATA_VARIANTS[label](_columns(sample))))
    scenario = {**BASE, "dataset": {**BASE["dataset"], "metadata": "table.metadata.json"}, "output": str(tmp_path)}
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    code, err = _outcome("run", str(tmp_path / "scenario.yaml"), "--quiet")
    assert _defect(label, code, err, expected=(2,)) is None, err[-3_000:]
    assert "error: " in err and "table.metadata.json" in err, err
