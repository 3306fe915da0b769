"""`select`: after the gate, the best released generator by one measurement."""

from __future__ import annotations

import pytest

from suite.cli import main
from suite.errors import ConfigError
from suite.plan import resolve
from suite.scenario import load_scenario
from suite.selection import select
from tests.conftest import write_scenario


def _plan(tmp_path, small_csv, **overrides):
    path = write_scenario(tmp_path, small_csv, **overrides)
    return resolve(*load_scenario(path))


def test_a_blocked_generator_is_never_chosen_however_useful(tmp_path, small_csv, capsys):
    """identity has the best fidelity of all (it is the data) but is blocked; holdout is a yardstick."""
    path = write_scenario(
        tmp_path,
        small_csv,
        generators=[
            {"name": "identity", "expect": "block"},
            {"name": "marginals"},
            {"name": "sdv.gaussian_copula"},
            {"name": "holdout"},
        ],
        checks=["collisions", "dcr", "fidelity"],
        policy={"fidelity.quality": {"min": 0.5}},
        select={"by": "fidelity.quality"},
        # a holdout large enough that the yardstick (real unseen people) is shown safe and released
        split={"holdout": 0.6, "seed": 0},
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    (run_dir,) = (tmp_path / "out").iterdir()
    from suite.reports import read_json

    card = read_json(run_dir / "scorecard.json")
    quality = {g.name: next(m.value for m in g.measurements if m.name == "fidelity.quality") for g in card.generators}
    assert quality["identity"] > max(quality["marginals"], quality["sdv.gaussian_copula"])
    sel = card.selection
    assert [r["name"] for r in sel.ranking] == sorted(["marginals", "sdv.gaussian_copula"], key=lambda n: -quality[n])
    assert sel.chosen == sel.ranking[0]["name"] and sel.goal == "maximize"
    assert sel.ranking[0]["value"] == pytest.approx(quality[sel.chosen])
    assert f"selected by fidelity.quality: {sel.chosen}" in capsys.readouterr().out
    assert 'id="selection"' in (run_dir / "report.html").read_text()


def test_nothing_chosen_when_only_yardsticks_are_released(tmp_path, small_csv):
    plan = _plan(
        tmp_path,
        small_csv,
        generators=[{"name": "holdout"}, {"name": "identity", "expect": "block"}],
        select={"by": "dcr.share_closer_to_train"},
    )
    from suite.runner import run

    card = run(plan, out=tmp_path / "o").scorecard
    assert card.selection.chosen is None and card.selection.ranking == []
    assert "calibration" in card.selection.reason


def test_select_by_a_measurement_no_check_produces_is_bad_input(tmp_path, small_csv):
    with pytest.raises(ConfigError, match=r"select.by: no selected check produces 'utility.tstr'; did you mean"):
        _plan(tmp_path, small_csv, checks=["collisions", "utility"], select={"by": "utility.tstr"})
    assert select(_plan(tmp_path, small_csv), []) is None  # no `select`: no selection
