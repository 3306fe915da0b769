"""Bad input ends with exit 2 and a message naming the file, field or column and the fix; odd but usable
input warns and runs. Every case is built in tmp_path from the shipped tables and goes through
`suite.cli.main`, in this process (no subprocess start-up per case).

The table at the end of docs/threat-model.md lists these cases and how each ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from suite.cli import main
from tests.conftest import ROOT

FLCHAIN = ROOT / "data" / "flchain.parquet"
#: flchain's columns as the inferred metadata types them, written out so cases can edit one entry.
FL_METADATA = {
    "age": {"sdtype": "numerical"},
    "sex": {"sdtype": "categorical"},
    "sample.yr": {"sdtype": "categorical"},
    "kappa": {"sdtype": "numerical"},
    "lambda": {"sdtype": "numerical"},
    "flc.grp": {"sdtype": "categorical"},
    "creatinine": {"sdtype": "numerical"},
    "mgus": {"sdtype": "categorical"},
    "futime": {"sdtype": "numerical"},
    "death": {"sdtype": "categorical"},
    "chapter": {"sdtype": "categorical"},
}
ROLES = {"quasi_identifiers": ["age", "sex"], "secrets": ["death"]}


@pytest.fixture(scope="module")
def flchain() -> pd.DataFrame:
    """240 rows of flchain, drawn (not the head, where `mgus` happens to be constant)."""
    return pd.read_parquet(FLCHAIN).sample(240, random_state=1).reset_index(drop=True)


class Case:
    """A folder with a table, optionally a metadata file, and a scenario over them."""

    def __init__(self, folder: Path, frame: pd.DataFrame | None, *, suffix: str = ".csv") -> None:
        self.folder = folder
        self.data = folder / f"table{suffix}"
        if frame is not None:
            if suffix == ".csv":
                frame.to_csv(self.data, index=False)
            else:
                frame.to_parquet(self.data, index=False)
        self.metadata: Path | None = None
        self.scenario = folder / "scenario.yaml"
        self.write()

    def with_metadata(self, columns: dict) -> Case:
        self.metadata = self.folder / "table.metadata.json"
        self.metadata.write_text(json.dumps({"columns": columns}), encoding="utf-8")
        return self.write()

    def write(self, **overrides: object) -> Case:
        dataset: dict = {"path": self.data.name, "roles": ROLES}
        if self.metadata is not None:
            dataset["metadata"] = self.metadata.name
        scenario: dict = {
            "name": "bad-input",
            "dataset": dataset,
            "split": {"holdout": 0.4, "seed": 0},
            "generators": [{"name": "identity", "expect": "block"}, {"name": "holdout"}],
            "checks": ["collisions", "dcr"],
            "output": str(self.folder / "runs"),
        }
        for key, value in overrides.items():
            if key == "dataset":
                scenario["dataset"] = {**dataset, **value}  # type: ignore[dict-item]
            else:
                scenario[key] = value
        self.scenario.write_text(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return self

    @property
    def runs(self) -> Path:
        return self.folder / "runs"


def _main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def _refused(capsys: pytest.CaptureFixture, case: Case, *needles: str, command: str = "run") -> str:
    """Exit 2, every needle in the message, no traceback, and no run folder."""
    args = [command, str(case.scenario)] + (["--quiet"] if command == "run" else [])
    code, err = _main(capsys, *args)
    assert code == 2, err
    assert "error:" in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not case.runs.exists(), "bad input must fail before a run folder is made"
    return err


def _runs(capsys: pytest.CaptureFixture, case: Case, *warnings: str) -> tuple[str, dict, Path]:
    """A run that ends with a verdict (0 or 1), a scorecard and reports; each warning needle on stderr."""
    code, err = _main(capsys, "run", str(case.scenario), "--quiet")
    assert code in (0, 1), err
    assert "Traceback" not in err
    for needle in warnings:
        assert needle in err, err
    (run_dir,) = case.runs.iterdir()
    for name in ("scorecard.json", "report.html", "report.md", "junit.xml"):
        assert (run_dir / name).is_file(), name
    scorecard = json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))
    verdicts = {g["key"] if "key" in g else g["name"]: g for g in scorecard["generators"]}
    assert scorecard["summary"]["blocked"] and "identity" in scorecard["summary"]["blocked"], verdicts
    return err, scorecard, run_dir


# --- the scenario file: `validate` and `run` both refuse, before any data is read ---------------------------

SCENARIO_CASES = {
    "malformed YAML": ("name: x\ndataset: {path: table.csv\ngenerators: []\n", ["line 3", "malformed YAML"]),
    "not UTF-8": (None, ["not UTF-8", "save the scenario file as UTF-8"]),
    "a YAML tag that would run code": (
        'name: x\ndataset: !!python/object/apply:os.system ["echo pwned"]\ngenerators: [{name: identity}]\n',
        ["malformed YAML", "could not determine a constructor"],
    ),
    "unknown top-level key": ({"chekcs": ["dcr"]}, ["unknown key 'chekcs'", "did you mean 'checks'?"]),
    "unknown role key": (
        {"dataset": {"roles": {"quasi_identifier": ["age"]}}},
        ["dataset.roles.quasi_identifier", "did you mean 'quasi_identifiers'?"],
    ),
    "unknown threshold key": (
        {"policy": {"dcr.share_closer_to_train": {"maxx": 0.6}}},
        ["policy.dcr.share_closer_to_train.maxx", "did you mean 'max'?", "accepted keys: max, min"],
    ),
    "unknown key in a check entry": (
        {"checks": [{"name": "dcr", "param": {}}]},
        ["checks[0].param", "did you mean 'params'?"],
    ),
    "unknown key in a constraint": (
        {
            "generators": [
                {"name": "identity", "expect": "block", "constraints": [{"kind": "range", "column": "age", "mn": 0}]}
            ]
        },
        ["generators[0].constraints[0].mn", "did you mean 'min'?", "accepted keys: column, kind, max, min"],
    ),
    "unknown generator": (
        {"generators": [{"name": "idenity", "expect": "block"}]},
        ["generators[0].name", "unknown generator 'idenity'", "did you mean 'identity'?"],
    ),
    "unknown check": ({"checks": ["colisions"]}, ["checks[0].name", "unknown check 'colisions'", "'collisions'"]),
    "threshold no selected check produces": (
        {"policy": {"fidelity.quality": {"min": 0.7}}},
        ["policy.fidelity.quality", "no selected check produces"],
    ),
    "dataset path that does not exist": (
        {"dataset": {"path": "nowhere.csv"}},
        ["dataset.path", "file not found", "nowhere.csv"],
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("label", list(SCENARIO_CASES))
def test_bad_scenarios_are_refused(tmp_path, capsys, flchain, label, command):
    change, needles = SCENARIO_CASES[label]
    case = Case(tmp_path, flchain.head(60))
    if isinstance(change, str):
        case.scenario.write_text(change, encoding="utf-8")
    elif change is None:
        case.scenario.write_bytes(case.scenario.read_bytes() + "# r\xe9sum\xe9\n".encode("latin-1"))
    else:
        case.write(**change)
    err = _refused(capsys, case, "scenario.yaml", *needles, command=command)
    assert "Input should be" not in err, "a union's failed branches are noise next to the real problem"


NAN, INF = float("nan"), float("inf")
#: Numbers `validate` used to accept and the run could not use (it blocked every generator, or crashed).
NUMBER_CASES = {
    "negative split seed": ({"split": {"holdout": 0.4, "seed": -1}}, "split.seed", "greater than or equal to 0"),
    "negative seed": ({"seed": -5}, "seed", "greater than or equal to 0"),
    "seed past 2**32": ({"seed": 2**40}, "seed", "less than or equal to 4294967295"),
    "infinite check_timeout": ({"check_timeout": INF}, "check_timeout", "finite number"),
    "nan check_timeout": ({"check_timeout": NAN}, "check_timeout", "finite number"),
    "zero check_timeout": ({"check_timeout": 0}, "check_timeout", "greater than 0"),
    "a year's check_timeout": ({"check_timeout": 365 * 86_400}, "check_timeout", "less than or equal to 2592000"),
    "negative generator timeout": (
        {"generators": [{"name": "identity", "expect": "block", "timeout": -1}]},
        "generators[0].timeout",
        "greater than 0",
    ),
    "infinite check timeout": (
        {"checks": ["collisions", {"name": "dcr", "timeout": INF}]},
        "checks[1].timeout",
        "finite",
    ),
    "nan holdout": ({"split": {"holdout": NAN, "seed": 0}}, "split.holdout", "finite number"),
    "infinite holdout": ({"split": {"holdout": INF, "seed": 0}}, "split.holdout", "finite number"),
    "nan confidence": ({"confidence": NAN}, "confidence", "finite number"),
    "confidence 1.0": ({"confidence": 1.0}, "confidence", "less than 1"),
    "confidence 0": ({"confidence": 0}, "confidence", "greater than 0.5"),
    "zero repeats": ({"repeats": 0}, "repeats", "greater than or equal to 1"),
    "zero sample_size": ({"sample_size": 0}, "sample_size", "greater than or equal to 1"),
    "negative sample_size": ({"sample_size": -3}, "sample_size", "greater than or equal to 1"),
    "nan threshold (never compares: the gate would pass)": (
        {"policy": {"dcr.share_closer_to_train": {"max": NAN}}},
        "policy.dcr.share_closer_to_train.max",
        "finite number",
    ),
    "range constraint with min above max": (
        {
            "generators": [
                {
                    "name": "identity",
                    "expect": "block",
                    "constraints": [{"kind": "range", "column": "age", "min": 90, "max": 50}],
                }
            ]
        },
        "generators[0].constraints[0]",
        "min 90 is above max 50; swap them",
    ),
    "negative sheet": ({"dataset": {"sheet": -1}}, "dataset.sheet", "sheet numbers count from 0"),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("label", list(NUMBER_CASES))
def test_numbers_the_run_cannot_use_are_refused(tmp_path, capsys, flchain, label, command):
    change, field, fix = NUMBER_CASES[label]
    case = Case(tmp_path, flchain.head(60)).write(**change)
    _refused(capsys, case, "scenario.yaml", f"{field}: ", fix, command=command)


# --- the table and its metadata: `run` refuses before any fit ------------------------------------------------


def _with_column(frame: pd.DataFrame, name: str, values) -> pd.DataFrame:  # noqa: ANN001
    out = frame.copy()
    out[name] = values
    return out


def _metadata(**extra: dict) -> dict:
    return {**FL_METADATA, **extra}


def test_unreadable_dataset_file(tmp_path, capsys, flchain):
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file anyway; test_unreadable_dataset_as_reported covers the message")
    case = Case(tmp_path, flchain)
    case.data.chmod(0)
    try:
        _refused(capsys, case, "table.csv", "not readable", "permissions")
    finally:
        case.data.chmod(0o644)


def test_unreadable_dataset_as_reported(tmp_path, capsys, flchain, monkeypatch):
    """What a user without read permission sees (the OS's refusal simulated, since tests may run as root)."""
    case = Case(tmp_path, flchain)

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("suite.io.pd.read_csv", refuse)
    _refused(capsys, case, "table.csv", "not readable", "permissions")


DATA_CASES = {
    # label: (frame builder, metadata columns or None for inferred, file suffix, needles)
    "empty table (header only)": (lambda f: f.head(0), None, ".csv", ["table.csv", "the table is empty"]),
    "zero-byte file": (None, None, ".csv", ["table.csv", "the file is empty"]),
    "one row": (lambda f: f.head(1), None, ".csv", ["table.csv", "one row"]),
    "metadata column not in the data": (
        lambda f: f,
        _metadata(weight={"sdtype": "numerical"}),
        ".csv",
        ["table.metadata.json", "'weight'", "remove them from the metadata"],
    ),
    "data column not in the metadata": (
        lambda f: _with_column(f, "bmi", 22.5),
        FL_METADATA,
        ".csv",
        ["table.metadata.json", "'bmi'", "does not describe", "add them with an sdtype"],
    ),
    "metadata not JSON": (lambda f: f, "{columns: age}", ".csv", ["table.metadata.json", "not valid JSON", "line 1"]),
    "metadata not UTF-8": (lambda f: f, b'{"columns": {"\xe2ge": {}}}', ".csv", ["table.metadata.json", "not UTF-8"]),
    "metadata nested 100,000 levels deep": (
        lambda f: f,
        '{"columns": ' + "[" * 100_000 + "]" * 100_000 + "}",
        ".csv",
        ["table.metadata.json", "nested too deep", "`columns` mapping"],
    ),
    "unknown sdtype": (
        lambda f: f,
        _metadata(kappa={"sdtype": "numeric"}),
        ".csv",
        ["columns.kappa", "'numeric'", "did you mean 'numerical'?"],
    ),
    "all-missing column named as a secret": (
        lambda f: _with_column(f, "death", np.nan),
        None,
        ".parquet",
        ["table.parquet", "every value is missing", "'death' (secrets)"],
    ),
    "dates in mixed formats": (
        lambda f: _with_column(
            f, "visit", [f"2020-01-{i % 28 + 1:02d}" if i % 2 else f"{i % 28 + 1:02d}/03/2020" for i in range(len(f))]
        ),
        _metadata(visit={"sdtype": "datetime"}),
        ".csv",
        ["column 'visit'", "mixes date formats", "datetime_format"],
    ),
    "dates with and without a time-zone offset": (
        lambda f: _with_column(
            f, "visit", [f"2020-01-{i % 28 + 1:02d}T10:00" + ("+01:00" if i % 2 else "") for i in range(len(f))]
        ),
        _metadata(visit={"sdtype": "datetime"}),
        ".csv",
        ["column 'visit'", "with and without a time-zone offset"],
    ),
    "numbers with thousands separators": (
        lambda f: _with_column(f, "kappa", [f"{1000 + 7 * i:,}" for i in range(len(f))]),
        FL_METADATA,
        ".csv",
        ["column 'kappa'", "declared numerical", "thousands separators", "first at row 1", "categorical"],
    ),
    "numbers with units": (
        lambda f: _with_column(f, "creatinine", [f"{v} mg/dL" for v in f["creatinine"]]),
        FL_METADATA,
        ".csv",
        ["column 'creatinine'", "declared numerical", "units", "plain numbers"],
    ),
    "infinite numbers": (
        lambda f: _with_column(f, "kappa", np.where(np.arange(len(f)) == 4, np.inf, f["kappa"])),
        None,
        ".parquet",
        ["column 'kappa'", "infinite", "row 5"],
    ),
    "boolean column holding words": (
        lambda f: _with_column(f, "smoker", ["yes", "no", "ex"] * (len(f) // 3)),
        _metadata(smoker={"sdtype": "boolean"}),
        ".csv",
        ["column 'smoker'", "declared boolean", "declare it categorical"],
    ),
    "entity column with missing ids": (
        lambda f: _with_column(f, "pid", [np.nan if i % 9 == 0 else float(i // 2) for i in range(len(f))]),
        None,
        ".csv",
        ["dataset.roles.entity", "'pid'", "empty in", "every row needs the id"],
    ),
    "holdout too small for the attacks": (
        lambda f: f.head(60),
        None,
        ".csv",
        ["split.holdout", "at least 20", "raise split.holdout"],
    ),
    "table not UTF-8": (None, None, ".csv", ["table.csv", "not UTF-8", "save the table as UTF-8"]),
    "repeated CSV header": (None, None, ".csv", ["table.csv", "'age' appears twice"]),
    "not a Parquet file": (None, None, ".parquet", ["table.parquet", "could not read as Parquet"]),
    "unsupported format": (None, None, ".sav", ["table.sav", "unsupported table format", ".parquet"]),
}


def _raw_file(label: str, path: Path, frame: pd.DataFrame) -> None:
    if label == "zero-byte file":
        path.write_bytes(b"")
    elif label == "table not UTF-8":
        path.write_bytes(frame.rename(columns={"age": "\xe2ge"}).to_csv(index=False).encode("latin-1"))
    elif label == "repeated CSV header":
        text = frame.to_csv(index=False)
        path.write_text(text.replace("sex,", "age,", 1), encoding="utf-8")
    else:
        path.write_bytes(b"PK\x03\x04 not what the name says")


@pytest.mark.parametrize("label", list(DATA_CASES))
def test_bad_tables_are_refused(tmp_path, capsys, flchain, label):
    build, metadata, suffix, needles = DATA_CASES[label]
    case = Case(tmp_path, None if build is None else build(flchain), suffix=suffix)
    if build is None:
        _raw_file(label, case.data, flchain)
    if isinstance(metadata, dict):
        case.with_metadata(metadata)
    elif metadata is not None:  # the file's raw text or bytes
        case.with_metadata({})
        (case.metadata.write_bytes if isinstance(metadata, bytes) else case.metadata.write_text)(metadata)
    if label == "entity column with missing ids":
        case.write(dataset={"roles": {**ROLES, "entity": "pid"}})
    if label == "holdout too small for the attacks":
        case.write(split={"holdout": 0.3, "seed": 0})
    _refused(capsys, case, *needles)


def test_output_folder_that_cannot_be_made(tmp_path, capsys, flchain):
    case = Case(tmp_path, flchain)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    case.write(output=str(blocker / "runs"))
    code, err = _main(capsys, "run", str(case.scenario), "--quiet")
    assert code == 2 and "Traceback" not in err
    assert "a-file" in err and "--out DIR" in err


# --- usable but suspicious: a warning, and the run goes on -------------------------------------------------


def test_all_missing_column_is_dropped_with_a_warning(tmp_path, capsys, flchain):
    case = Case(tmp_path, _with_column(flchain, "hba1c", np.nan), suffix=".parquet")
    _, scorecard, _ = _runs(capsys, case, "warning:", "'hba1c'", "every value missing", "dropped")
    assert "hba1c" in scorecard["metadata"]["dropped_columns"]
    assert "hba1c" not in scorecard["metadata"]["columns"]


def test_constant_column_warns(tmp_path, capsys, flchain):
    case = Case(tmp_path, _with_column(flchain, "site", "Rochester"))
    err, scorecard, _ = _runs(capsys, case, "warning:", "'site'", "one value in every row")
    assert "site" in scorecard["metadata"]["columns"], "a constant column is kept: the released table may need it"


def test_id_like_columns_warn_but_continuous_lab_values_do_not(tmp_path, capsys, flchain):
    frame = flchain.copy()
    frame["record_no"] = np.arange(len(frame)) * 7 + 100_000  # integers, one per row
    frame["code"] = [f"P{i:05d}" for i in range(len(frame))]  # strings, one per row
    frame["lab"] = np.random.default_rng(0).normal(5.0, 1.0, len(frame))  # distinct floats: a measurement
    case = Case(tmp_path, frame).with_metadata(
        _metadata(record_no={"sdtype": "numerical"}, code={"sdtype": "categorical"}, lab={"sdtype": "numerical"})
    )
    err, _, _ = _runs(capsys, case, "warning:", "['record_no', 'code']", "different value in every row")
    assert "roles.identifiers" in err
    assert "'lab'" not in err


def test_high_cardinality_category_warns(tmp_path, capsys):
    frame = pd.read_parquet(FLCHAIN).sample(2_400, random_state=2).reset_index(drop=True)
    frame["zip"] = [f"Z{i % 1_500:04d}" for i in range(len(frame))]
    case = Case(tmp_path, frame)
    _runs(capsys, case, "warning:", "'zip' (1500 levels)", "very many levels", "identifier")


def test_numbers_stored_as_text_in_an_inferred_column_warn(tmp_path, capsys, flchain):
    text = [f"{v} mg/dL" if v == v else None for v in flchain["creatinine"]]  # missing stays missing
    case = Case(tmp_path, _with_column(flchain, "creatinine", text))
    _runs(capsys, case, "warning:", "'creatinine'", "numbers stored as text", "declare them numerical")


@pytest.mark.parametrize("how", ["zone-aware parquet", "mixed offsets in CSV"])
def test_time_zones_become_utc_with_a_warning(tmp_path, capsys, flchain, how):
    if how == "zone-aware parquet":
        visits = pd.date_range("2020-03-01 08:00", periods=len(flchain), freq="7h", tz="America/Chicago")
        case = Case(tmp_path, _with_column(flchain, "visit", visits), suffix=".parquet")
    else:
        visits = [f"2020-03-{i % 28 + 1:02d}T{i % 24:02d}:00:00{'+01:00' if i % 2 else '-05:00'}" for i in range(240)]
        case = Case(tmp_path, _with_column(flchain, "visit", visits))
        case.with_metadata(_metadata(visit={"sdtype": "datetime"}))
    _, scorecard, _ = _runs(capsys, case, "warning:", "'visit'", "time zones", "UTC")
    assert scorecard["metadata"]["columns"]["visit"] == "datetime"


def test_non_ascii_and_spaces_in_column_names_work_end_to_end(tmp_path, capsys, flchain):
    names = {"age": "âge (années)", "sex": "Geschlecht m/w", "creatinine": "créatinine µmol/L", "kappa": "κ chain"}
    case = Case(tmp_path, flchain.rename(columns=names), suffix=".parquet")
    case.write(dataset={"roles": {"quasi_identifiers": ["âge (années)", "Geschlecht m/w"], "secrets": ["death"]}})
    err, scorecard, run_dir = _runs(capsys, case)
    assert "warning:" not in err, err
    assert set(names.values()) <= set(scorecard["metadata"]["columns"])
    inferred = json.loads((run_dir / "metadata.inferred.json").read_text(encoding="utf-8"))
    assert "κ chain" in inferred["columns"]
    assert "report" in (run_dir / "report.html").read_text(encoding="utf-8").lower()


def test_inputs_are_never_modified(tmp_path, capsys, flchain):
    case = Case(tmp_path, flchain).with_metadata(FL_METADATA)
    inputs = [case.data, case.metadata, case.scenario]
    os.utime(case.data, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # a known mtime
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode) for p in inputs}
    _runs(capsys, case)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode) for p in inputs} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "scenario.yaml", "table.csv", "table.metadata.json"]


# --- table shapes and metadata the readers used to misread (issue 16: 11, 13-19) ------------------------------


def _nfd(name: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFD", name)


TABLE_SHAPE_CASES = {
    # label: (frame builder, metadata columns or None for inferred, file suffix, needles)
    "Parquet list column declared categorical": (
        lambda f: _with_column(f, "codes", [[int(v), 1] for v in f["age"]]),
        _metadata(codes={"sdtype": "categorical"}),
        ".parquet",
        ["table.parquet", "column 'codes'", "lists or records", "flatten it"],
    ),
    "Parquet struct column, inferred metadata": (
        lambda f: _with_column(f, "visit", [{"site": "a", "n": i} for i in range(len(f))]),
        None,
        ".parquet",
        ["table.parquet", "column 'visit'", "lists or records", "flatten it"],
    ),
    "integers beyond 2**53 declared numerical": (
        lambda f: _with_column(f, "hash", 2**60 + np.arange(len(f), dtype=np.int64) * 3),
        _metadata(hash={"sdtype": "numerical"}),
        ".parquet",
        ["table.parquet", "column 'hash'", "beyond 2**53", "first at row 1", "identifiers", "categorical"],
    ),
    "dates beyond 2262 in a CSV declared datetime": (
        lambda f: _with_column(
            f, "visit", ["2500-01-01" if i == 6 else f"2020-01-{i % 28 + 1:02d}" for i in range(len(f))]
        ),
        _metadata(visit={"sdtype": "datetime"}),
        ".csv",
        ["table.csv", "column 'visit'", "1677-09-21 to 2262-04-11", "first at row 7"],
    ),
    "dates beyond 2262 in Parquet, inferred metadata": (
        lambda f: _with_column(
            f,
            "visit",
            [
                pd.Timestamp(2500, 1, 1).date() if i == 2 else pd.Timestamp(2020, 1, i % 28 + 1).date()
                for i in range(len(f))
            ],
        ),
        None,
        ".parquet",
        ["table.parquet", "column 'visit'", "1677-09-21 to 2262-04-11", "first at row 3"],
    ),
    "primary key with repeated values": (
        lambda f: _with_column(f, "rid", np.arange(len(f)) // 2),
        {**_metadata(rid={"sdtype": "id"}), "__primary_key__": "rid"},
        ".csv",
        ["table.metadata.json", "primary_key", "'rid'", "repeated", "first at row 2", "remove primary_key"],
    ),
    "primary key that is not a column": (
        lambda f: f,
        {**FL_METADATA, "__primary_key__": "record"},
        ".csv",
        ["table.metadata.json", "primary_key", "'record' is not one of the columns"],
    ),
    "sdtype given as a list": (
        lambda f: f,
        _metadata(kappa={"sdtype": ["numerical"]}),
        ".csv",
        ["table.metadata.json", "columns.kappa.sdtype", "expected one name", "(got list)"],
    ),
    "unknown sdtype that is no typo": (
        lambda f: f,
        _metadata(kappa={"sdtype": "measurement"}),
        ".csv",
        ["table.metadata.json", "columns.kappa", "'measurement' is unknown", "numerical, datetime, categorical"],
    ),
    "column entry that is not an object": (
        lambda f: f,
        _metadata(kappa="numerical"),
        ".csv",
        ["table.metadata.json", "columns.kappa", 'expected {"sdtype": ...}', "(got str)"],
    ),
    "roles in the metadata as a string": (
        lambda f: f,
        {**FL_METADATA, "__roles__": {"quasi_identifiers": "age"}},
        ".csv",
        ["table.metadata.json", "roles.quasi_identifiers", "expected a list of column names", "(got str)"],
    ),
    "unknown role in the metadata": (
        lambda f: f,
        {**FL_METADATA, "__roles__": {"secret": ["death"]}},
        ".csv",
        ["table.metadata.json", "roles.secret", "unknown key", "quasi_identifiers, secrets"],
    ),
    "a separator the sniffer cannot confirm": (
        None,
        None,
        ".csv",
        ["table.csv", "one column named 'age;sex;death'", "';'"],
    ),
    "repeated Excel header": (None, None, ".xlsx", ["table.xlsx", "column 'age' appears twice", "rename one"]),
}


@pytest.mark.parametrize("label", list(TABLE_SHAPE_CASES))
def test_table_shapes_and_metadata_are_refused(tmp_path, capsys, flchain, label):
    build, metadata, suffix, needles = TABLE_SHAPE_CASES[label]
    case = Case(tmp_path, None if build is None else build(flchain), suffix=suffix)
    if label == "a separator the sniffer cannot confirm":  # ';' only in the header: rows are one value each
        case.data.write_text("age;sex;death\n" + "\n".join(str(a) for a in flchain["age"]) + "\n", encoding="utf-8")
    elif label == "repeated Excel header":
        frame = flchain.copy()
        frame.insert(3, "age2", frame["age"])
        frame.rename(columns={"age2": "age"}).to_excel(case.data, index=False)
        case.write(dataset={"path": case.data.name})
    if metadata is not None:
        columns = {k: v for k, v in metadata.items() if not k.startswith("__")}
        case.with_metadata(columns)
        extra = {k.strip("_"): v for k, v in metadata.items() if k.startswith("__")}
        if extra:
            case.metadata.write_text(json.dumps({"columns": columns, **extra}), encoding="utf-8")
    err = _refused(capsys, case, *needles)
    assert "2500" not in err and str(2**60) not in err, "a message names rows, never a cell's value"


ROLE_CASES = {
    # label: (scenario roles, roles in the metadata file or None, needles)
    "identifier that is a secret": (
        {**ROLES, "identifiers": ["death"]},
        None,
        ["dataset.roles", "'death' is both in identifiers and in secrets", "take it out of one"],
    ),
    "target that is an identifier": (
        {**ROLES, "identifiers": ["chapter"], "target": "chapter"},
        None,
        ["'chapter' is both in identifiers and in target"],
    ),
    "entity that is a secret": (
        {**ROLES, "secrets": ["death", "flc.grp"], "entity": "flc.grp"},
        None,
        ["'flc.grp' is both in entity and in secrets"],
    ),
    "a column listed twice in a role": (
        {"quasi_identifiers": ["age", "sex", "age"], "secrets": ["death"]},
        None,
        ["quasi_identifiers lists 'age' twice", "list each column once"],
    ),
    "a conflict between the scenario's roles and the metadata's": (
        {"secrets": ["death"]},
        {"quasi_identifiers": ["age", "sex"], "identifiers": ["death"]},
        ["(with the roles in table.metadata.json)", "'death' is both in identifiers and in secrets"],
    ),
}


@pytest.mark.parametrize(
    ("label", "command"),
    # roles in the scenario alone are refused by `validate` too; roles merged with a metadata file's only by `run`
    [(label, c) for label, (_, file_roles, _) in ROLE_CASES.items() for c in ("validate", "run")[bool(file_roles) :]],
)
def test_contradictory_roles_are_refused(tmp_path, capsys, flchain, label, command):
    roles, file_roles, needles = ROLE_CASES[label]
    case = Case(tmp_path, flchain, suffix=".parquet").with_metadata(FL_METADATA)
    if file_roles is not None:
        case.metadata.write_text(json.dumps({"columns": FL_METADATA, "roles": file_roles}), encoding="utf-8")
    case.write(dataset={"roles": roles})
    _refused(capsys, case, "table.parquet" if file_roles else "scenario.yaml", *needles, command=command)


def test_a_role_on_a_column_of_sdtype_id_is_refused(tmp_path, capsys, flchain):
    """A quasi-identifier typed `id` used to vanish with the other dropped columns: the attacks ran without it."""
    case = Case(tmp_path, flchain, suffix=".parquet").with_metadata(_metadata(**{"sample.yr": {"sdtype": "id"}}))
    case.write(dataset={"roles": {**ROLES, "quasi_identifiers": ["age", "sex", "sample.yr"]}})
    _refused(capsys, case, "table.parquet", "'sample.yr' is in quasi_identifiers but has sdtype id", "another sdtype")


def test_semicolon_csv_is_sniffed_and_the_separator_recorded(tmp_path, capsys, flchain):
    case = Case(tmp_path, None)
    case.data.write_text(flchain.to_csv(index=False, sep=";"), encoding="utf-8")
    _, scorecard, _ = _runs(capsys, case, "warning:", "separated by ';'", f"{flchain.shape[1]} columns")
    assert scorecard["dataset"]["delimiter"] == ";"
    assert set(FL_METADATA) <= set(scorecard["metadata"]["columns"])


def test_huge_integers_with_inferred_metadata_become_categories(tmp_path, capsys, flchain):
    codes = 2**60 + (np.arange(len(flchain), dtype=np.int64) % 40) * 2**20  # repeated: no id column
    case = Case(tmp_path, _with_column(flchain, "code", codes), suffix=".parquet")
    _, scorecard, _ = _runs(capsys, case, "warning:", "['code']", "beyond 2**53", "treated as categories")
    assert scorecard["metadata"]["columns"]["code"] == "categorical"


def test_decomposed_unicode_headers_match_composed_metadata_and_roles(tmp_path, capsys, flchain):
    frame = flchain.rename(columns={"age": _nfd("âge"), "sex": _nfd("sexe déclaré")})
    metadata = {("âge" if c == "age" else "sexe déclaré" if c == "sex" else c): s for c, s in FL_METADATA.items()}
    case = Case(tmp_path, frame, suffix=".parquet").with_metadata(metadata)
    case.write(dataset={"roles": {"quasi_identifiers": ["âge", "sexe déclaré"], "secrets": ["death"]}})
    _, scorecard, _ = _runs(capsys, case, "warning:", "decomposed Unicode form", "(NFC)")
    assert {"âge", "sexe déclaré"} <= set(scorecard["metadata"]["columns"])


# --- `compare`: anything but two scorecards is bad input (exit 2), never a traceback read as "worse" -----------

COMPARE_CASES = {
    "not UTF-8": (b"\xff\xfe\x00 scorecard", ["not UTF-8 text (byte 0)", "give a run folder or the scorecard.json"]),
    "not JSON": (b"hello", ["not a valid scorecard: Invalid JSON", "give a run folder"]),
    "JSON nested 100,000 levels deep": (b"[" * 100_000 + b"]" * 100_000, ["not a valid scorecard", "recursion"]),
    "JSON that is not a scorecard": (b'{"a": 1}', ["not a valid scorecard", "Field required"]),
}


@pytest.mark.parametrize("label", list(COMPARE_CASES))
def test_compare_refuses_what_is_not_a_scorecard(tmp_path, capsys, label):
    content, needles = COMPARE_CASES[label]
    path = tmp_path / "scorecard.json"
    path.write_bytes(content)
    code, err = _main(capsys, "compare", str(path), str(tmp_path))
    assert code == 2 and "Traceback" not in err, err
    for needle in ["scorecard.json", *needles]:
        assert needle in err, err


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not UTF-8", b"not JSON", b"[" * 100_000 + b"]" * 100_000, b'["a list"]', b'{"scenario": "x.yaml"}'],
    ids=["not UTF-8", "not JSON", "nested 100,000 levels", "a list", "a key missing"],
)
def test_resume_refuses_a_damaged_run_file(tmp_path, capsys, content):
    (tmp_path / "run.json").write_bytes(content)
    code, err = _main(capsys, "run", "--resume", str(tmp_path))
    assert code == 2 and "Traceback" not in err, err
    assert "--resume" in err and "run.json is damaged" in err, err


def test_check_generator_refuses_params_nested_too_deep(capsys):
    code, err = _main(capsys, "check-generator", "uniform", "--params", "[" * 100_000 + "]" * 100_000)
    assert code == 2 and "--params: JSON nested too deep" in err, err
