"""Checks declare themselves: presets, the docs table, `validate`'s role checks and every report
follow the declarations, and a plugin check shows up in every report like a built-in one."""

from __future__ import annotations

import importlib
import json
import re
import sys
import xml.etree.ElementTree as ET
from typing import ClassVar

import pytest

from suite.cli import main
from suite.declarations import declared, presets_table, privacy_checks, spec_of
from suite.policy import PRESETS
from suite.registry import checks
from suite.types import Context, Goal, Measurement, MeasurementSpec
from tests.conftest import METADATA, ROLES, ROOT, write_scenario
from tests.regenerate_scorecards import load

BUILTIN = [n for n in checks.names() if checks.source(n) == "builtin"]
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def _python_block(starting: str) -> str:
    """The fenced Python block of docs/plugins.md whose first line starts with `starting`."""
    return re.search(r"```python\n(" + re.escape(starting) + r".*?)```", DOC, re.S).group(1)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_check_declares_each_measurement_it_names(name):
    cls = checks.get(name)
    specs = cls.declares
    assert specs and all(isinstance(s, MeasurementSpec) for s in specs)
    for s in specs:
        assert isinstance(s.goal, Goal) and s.meaning and s.kind in ("privacy", "utility"), s
        assert (s.family is not None) == (s.kind == "privacy"), f"{s.name}: a privacy measurement names its attack"
        assert s.bounds is None or s.bounds[0] < s.bounds[1]
    for pattern in cls.measures:  # what the runner accepts is what is declared
        assert any(s.matches(pattern) or s.name == pattern for s in specs), pattern


def test_every_preset_key_is_a_declared_measurement_gated_in_its_goals_direction():
    declared_specs = [s for n in BUILTIN for s in declared(checks.get(n))]
    for preset, thresholds in PRESETS.items():
        for key, threshold in thresholds.items():
            matching = [s for s in declared_specs if s.matches(key)]
            assert matching, f"{preset}: {key} is not a measurement any built-in check declares"
            goal = matching[0].goal
            if goal is Goal.MINIMIZE:
                assert threshold.max is not None and threshold.min is None, f"{preset}: {key} is a risk: a max"
            else:
                assert threshold.min is not None and threshold.max is None, f"{preset}: {key} is kept: a min"
            if matching[0].bounds is not None:
                low, high = matching[0].bounds
                assert all(low <= b <= high for b in (threshold.min, threshold.max) if b is not None), key


def test_the_presets_table_in_the_docs_is_the_generated_one():
    docs = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    assert presets_table() in docs, "regenerate docs/policies.md's table with suite.declarations.presets_table()"


def test_privacy_is_what_the_checks_declare():
    assert set(privacy_checks()) >= {"collisions", "dcr", "singling_out", "linkability", "inference", "membership"}
    assert not {"fidelity", "utility", "propensity"} & set(privacy_checks())
    assert spec_of("membership.distance.auc").family == "membership"
    assert spec_of("inference.max.excess").meaning == "attribute inference: the worst secret column's excess"
    assert spec_of("utility.trtr_score").scored is False
    assert spec_of("someone.elses.measurement").kind == "utility"  # undeclared: utility, not averaged
    assert spec_of("someone.elses.measurement").scored is False


@pytest.mark.parametrize(
    ("check", "roles", "expected"),
    [
        ("utility", {"target": None}, "check utility needs target (dataset.roles.target); set dataset.roles.target"),
        ("inference", {"secrets": []}, "check inference needs secrets"),
        (
            "linkability",
            {"quasi_identifiers": ["age"]},
            "check linkability needs at least 2 quasi_identifiers (dataset.roles.quasi_identifiers); set "
            "dataset.roles.quasi_identifiers (or the metadata file's roles), or pass `aux_cols` in the check's params",
        ),
    ],
)
def test_validate_refuses_a_check_without_its_roles(tmp_path, small_csv, capsys, check, roles, expected):
    path = write_scenario(
        tmp_path,
        small_csv,
        checks=["collisions", check],
        dataset={"path": str(small_csv), "metadata": str(METADATA), "roles": {**ROLES, **roles}},
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "checks[1]" in err and expected in err and str(path.name) in err


def test_validate_counts_the_metadata_files_roles_and_the_checks_params(tmp_path, small_csv, capsys):
    metadata = json.loads(METADATA.read_text())
    metadata["roles"] = {"secrets": ["result"], "quasi_identifiers": ["age"]}
    file = tmp_path / "with_roles.json"
    file.write_text(json.dumps(metadata))
    roles = {k: v for k, v in ROLES.items() if k not in ("secrets", "quasi_identifiers")}
    linked = {"name": "linkability", "params": {"aux_cols": [["age"], ["gender"]]}}
    path = write_scenario(
        tmp_path,
        small_csv,
        checks=["inference", linked, "utility"],
        dataset={"path": str(small_csv), "metadata": str(file), "roles": roles},
    )
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    path = write_scenario(
        tmp_path,
        small_csv,
        checks=["linkability"],
        dataset={"path": str(small_csv), "metadata": str(file), "roles": roles},
    )
    assert main(["validate", str(path)]) == 2
    assert "or the metadata file's roles" in capsys.readouterr().err


class _OldStyle:
    """A plugin written to the older contract: `measures` only, a measurement it maximises."""

    name: ClassVar[str] = "oldstyle.rows"
    measures: ClassVar[tuple[str, ...]] = ("oldstyle.row_ratio",)

    def __init__(self) -> None:
        pass

    def evaluate(self, ctx: Context) -> list[Measurement]:
        ratio = len(ctx.synthetic) / len(ctx.train)
        return [Measurement("oldstyle.row_ratio", ratio, Goal.MAXIMIZE, meaning="synthetic rows per training row")]


@pytest.fixture
def acme_plugin(tmp_path, monkeypatch):
    """docs/plugins.md's example check, written out as its package and registered as an entry point would."""
    package = tmp_path / "plugin" / "acme"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "unique_match.py").write_text(_python_block('"""acme/unique_match.py'))
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    classes = [importlib.import_module("acme.unique_match").UniqueMatch, _OldStyle]
    checks.load()
    for cls in classes:
        checks._add(cls.name, cls, "tests")
    yield classes[0]
    for cls in classes:
        del checks._classes[cls.name], checks._sources[cls.name]
    for module in ("acme.unique_match", "acme"):
        sys.modules.pop(module, None)


def test_the_documented_checks_own_test_passes(acme_plugin):
    namespace: dict = {}
    exec(compile(_python_block("from acme.unique_match"), "docs/plugins.md", "exec"), namespace)  # noqa: S102
    namespace["test_unique_match_flags_a_copy_and_not_unseen_rows"]()


def test_a_plugin_check_appears_in_every_report_like_a_builtin(acme_plugin, tmp_path, small_csv):
    path = write_scenario(
        tmp_path,
        small_csv,
        generators=[{"name": "holdout"}, {"name": "identity", "expect": "block"}],
        checks=["acme.unique_match", "oldstyle.rows", "collisions"],
        policy={"acme.unique_match.excess": {"max": 0.05}, "oldstyle.row_ratio": {"min": 0.5}},
    )
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    (run_dir,) = out.iterdir()
    card = json.loads((run_dir / "scorecard.json").read_text())
    identity = next(g for g in card["generators"] if g["name"] == "identity")
    leak = next(m for m in identity["measurements"] if m["name"] == "acme.unique_match.excess")
    assert leak["status"] == "risk shown"  # the plugin's gate fires on a copy of the training rows

    html = (run_dir / "report.html").read_text(encoding="utf-8")
    privacy = html[html.index('<section id="privacy">') : html.index('<section id="utility">')]
    utility = html[html.index('<section id="utility">') : html.index('<section id="tradeoff">')]
    assert 'id="attack-reidentification"' in privacy and "<code>acme.unique_match.excess</code>" in privacy
    assert 'id="attack-copying"' in privacy and "<code>collisions.excess</code>" in privacy
    assert "<code>oldstyle.row_ratio</code>" in utility and "oldstyle.row_ratio" not in privacy
    assert "synthetic rows matching a unique training person" in privacy  # the declared meaning
    from suite.reports import read_json
    from suite.reports.html import _risk_names

    assert "acme.unique_match.excess" in _risk_names(read_json(run_dir / "scorecard.json"))  # drawn with the risks

    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| acme.unique_match.excess | privacy (reidentification) |" in md
    assert "| oldstyle.row_ratio | utility |" in md

    junit = ET.parse(run_dir / "junit.xml").getroot()
    cases = {c.get("name"): c for c in junit.iter("testcase") if c.get("classname").endswith(".holdout")}
    props = {p.get("name"): p.get("value") for p in cases["acme.unique_match.excess"].iter("property")}
    assert props == {"kind": "privacy", "attack": "reidentification", "informative": "true"}  # it caught identity
    assert {p.get("name"): p.get("value") for p in cases["oldstyle.row_ratio"].iter("property")} == {"kind": "utility"}


def test_an_old_style_plugins_maximised_measurement_is_not_averaged_into_utility(acme_plugin):
    from suite.reports.html import utility_score
    from suite.scorecard import GeneratorRecord

    def record(name: str, value: float) -> dict:
        return {
            "name": name,
            "repeat": 0,
            "value": value,
            "ci": None,
            "goal": "maximize",
            "threshold": None,
            "status": "ungated",
            "passed": None,
            "reason": "",
        }

    generator = {
        "name": "g",
        "generator": "g",
        "params": {},
        "source": "builtin",
        "verdict": "release",
        "expected": "release",
        "as_expected": True,
        "reasons": [],
    }
    measurements = [record("oldstyle.row_ratio", 0.2), record("structure.pca_overlap", 0.8)]
    record = GeneratorRecord.model_validate({**generator, "measurements": measurements})
    assert utility_score(record) == (0.8, "mean of 1 utility measurement(s)")


@pytest.mark.parametrize("stored", ["quickstart", "privacy"])
def test_every_measurement_of_a_real_run_has_its_declared_goal_and_stays_in_bounds(stored):
    """On stored scorecards of real runs (tests/regenerate_scorecards.py), kept current by
    tests/test_stored_scorecards.py."""
    scorecard = load(stored)
    seen = 0
    for g in scorecard.generators:
        for m in g.measurements:
            spec = spec_of(m.name)
            assert spec.goal is not None, f"{m.name} is declared by no built-in check"
            assert m.goal == spec.goal.value, m.name
            if spec.bounds is not None and m.value is not None:
                low, high = spec.bounds
                assert low - 1e-9 <= m.value <= high + 1e-9, f"{m.name} = {m.value} outside {spec.bounds}"
                seen += 1
    assert seen > 20


def test_validate_with_every_check_names_each_missing_role_and_how_to_narrow_the_checks(tmp_path, small_csv, capsys):
    roles = {"identifiers": ROLES["identifiers"], "entity": ROLES["entity"]}
    dataset = {"path": str(small_csv), "metadata": str(METADATA), "roles": roles}
    assert main(["validate", str(write_scenario(tmp_path, small_csv, checks="all", dataset=dataset))]) == 2
    err = capsys.readouterr().err
    for check, role in (("utility", "target"), ("inference", "secrets"), ("linkability", "2 quasi_identifiers")):
        line = next(x for x in err.splitlines() if f"checks ({check})" in x)
        assert role in line and "list the checks to run in `checks`" in line
    assert "checks (collisions)" not in err  # a check that needs no role is not named
