"""JUnit XML, `suite compare` and the disclosure settings, on real runs of the shipped data (the quickstart's
utility side stored in tests/data/scorecards/, tests/regenerate_scorecards.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from suite.cli import main
from suite.policy import Status
from suite.reports import read_json, render_junit
from suite.reports.compare import compare
from tests.conftest import write_scenario
from tests.regenerate_scorecards import STORED, load


@pytest.fixture(scope="module")
def quickstart():
    return load("quickstart")


def _junit(scorecard):
    return ET.fromstring(render_junit(scorecard).split("\n", 1)[1])


def test_junit_has_one_case_per_gate_of_each_generator_to_release(quickstart):
    scorecard = quickstart
    root = _junit(scorecard)  # a run writes exactly this rendering (tests/test_ground_truths.py)
    suites = {s.get("name").removeprefix("quickstart."): s for s in root.iter("testsuite")}
    assert list(suites) == [g.name for g in scorecard.generators]
    for g in scorecard.generators:
        cases = {c.get("name"): c for c in suites[g.name].iter("testcase")}
        gated = [m for m in g.measurements if m.status != "ungated"]
        if g.expected == "release":
            assert set(cases) == {m.name for m in gated} | {"verdict"}
            for m in gated:
                failed = cases[m.name].find("failure") is not None
                assert failed == (m.status in ("risk shown", "not shown safe")), m.name
        else:  # a canary: its failing gates are expected; only its verdict is a test
            assert set(cases) == {"verdict"}
        assert (cases["verdict"].find("failure") is None) == g.as_expected
    assert int(root.get("failures")) == 0  # every verdict of the quickstart is as expected
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites.values())


def test_junit_fails_a_released_canary_and_a_blocked_generator(quickstart):
    scorecard = quickstart
    flipped = scorecard.model_copy(deep=True)
    for g in flipped.generators:
        if g.name in ("identity", "sdv.gaussian_copula"):
            g.expected = "block" if g.expected == "release" else "release"
            g.as_expected = False
    root = _junit(flipped)
    failures = [
        (s.get("name"), c.get("name")) for s in root.iter("testsuite") for c in s if c.find("failure") is not None
    ]
    assert ("quickstart.identity", "verdict") in failures
    assert ("quickstart.sdv.gaussian_copula", "verdict") in failures
    # identity is now expected to be released: each of its failing gates is a failed test case
    identity = next(g for g in flipped.generators if g.name == "identity")
    failing = {m.name for m in identity.measurements if m.status in ("risk shown", "not shown safe")}
    assert failing and failing <= {c for s, c in failures if s == "quickstart.identity"}


def test_junit_escapes_what_it_cannot_hold(quickstart):
    scorecard = quickstart.model_copy(deep=True)
    scorecard.generators[0].name = 'a<b>&"c\x01'
    root = _junit(scorecard)  # parses: markup characters escaped, a control character replaced
    assert root.find("testsuite").get("name") == 'quickstart.a<b>&"c?'


def _worsened(scorecard, generator, name, by):
    copy = scorecard.model_copy(deep=True)
    g = next(g for g in copy.generators if g.name == generator)
    m = next(m for m in g.measurements if m.name == name)
    m.value += by
    m.ci = (m.ci[0] + by, m.ci[1] + by)
    return copy


def test_compare_flags_a_worsened_scorecard_and_passes_an_identical_one(quickstart, tmp_path, capsys):
    scorecard, run_dir = quickstart, tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "scorecard.json").write_bytes((STORED / "quickstart.json").read_bytes())
    assert compare(scorecard, scorecard) == []
    assert main(["compare", str(run_dir), str(run_dir / "scorecard.json")]) == 0
    assert "no change beyond the tolerance" in capsys.readouterr().out

    worse = _worsened(scorecard, "sdv.gaussian_copula", "dcr.share_closer_to_train", 0.03)
    changes = compare(scorecard, worse)
    assert [(c.generator, c.measurement, c.kind) for c in changes] == [
        ("sdv.gaussian_copula", "dcr.share_closer_to_train", "worse")
    ]
    path = tmp_path / "worse.json"
    path.write_text(worse.model_dump_json())
    assert main(["compare", str(run_dir), str(path)]) == 1
    out = capsys.readouterr().out
    assert "dcr.share_closer_to_train" in out and "1 regression(s)" in out

    small = _worsened(scorecard, "sdv.gaussian_copula", "dcr.share_closer_to_train", 0.005)
    assert compare(scorecard, small) == []  # within the tolerance
    assert [c.kind for c in compare(scorecard, small, abs_tol=0.001, rel_tol=0.0)] == ["worse"]
    better = _worsened(scorecard, "sdv.gaussian_copula", "dcr.share_closer_to_train", -0.03)
    assert [c.kind for c in compare(scorecard, better)] == ["better"]
    assert main(["compare", str(run_dir), str(tmp_path / "better.json")]) == 2  # no such file: bad input


def test_compare_flags_gates_that_block_now_and_generators_that_disappeared(quickstart):
    scorecard = quickstart
    worse = scorecard.model_copy(deep=True)
    copula = next(g for g in worse.generators if g.name == "sdv.gaussian_copula")
    m = next(m for m in copula.measurements if m.name == "utility.tstr_ratio")
    m.status, m.passed = Status.NOT_SHOWN_SAFE, False
    copula.verdict = "block"
    worse.generators = [g for g in worse.generators if g.name != "holdout"]
    kinds = {(c.generator, c.measurement): c.kind for c in compare(scorecard, worse)}
    assert kinds[("sdv.gaussian_copula", "utility.tstr_ratio")] == "blocks now"
    assert kinds[("sdv.gaussian_copula", "verdict")] == "blocks now"
    assert kinds[("holdout", "verdict")] == "gone"
    assert all(c.regression for c in compare(scorecard, worse))


@pytest.mark.parametrize(("preset", "override", "expected"), [("strict", None, 20), ("default", 3, 3)])
def test_disclosure_threshold_comes_from_the_preset_or_the_scenario(tmp_path, small_csv, preset, override, expected):
    report = {} if override is None else {"min_count": override}
    path = write_scenario(tmp_path, small_csv, checks=["collisions"], preset=preset, report=report)
    assert main(["run", str(path), "--quiet"]) in (0, 1)
    (run_dir,) = (tmp_path / "runs").iterdir()
    scorecard = read_json(run_dir / "scorecard.json")
    assert scorecard.disclosure == {"min_count": expected, "allow_records": False}
    assert json.loads((run_dir / "scorecard.json").read_text())["schema_version"] == "1.4"
