"""`suite compare` across schema versions: a 1.2 scorecard (old measurement names) against a 1.3 one (new
names). Renamed measurements are listed as renamed, never compared when their unit changed; new and dropped
ones are named; a gate that passed and now blocks is still a regression, under its new name too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suite.cli import main
from suite.reports.compare import RENAMES, caveats, compare, load_scorecard, renamed, render_changes


def _m(name: str, value: float, status: str = "pass", limit: float | None = 0.05) -> dict:
    return {
        "name": name,
        "repeat": 0,
        "value": value,
        "ci": [value * 0.9, value * 1.1],
        "goal": "minimize",
        "threshold": None if limit is None else {"max": limit},
        "status": status if limit is not None else "ungated",
        "passed": None if limit is None else status == "pass",
        "reason": "",
    }


def _scorecard(version: str, measurements: list[dict], verdict: str = "release") -> dict:
    card = {
        "schema_version": version,
        "created": "2026-01-01T00:00:00Z",
        "scenario": {"name": "demo", "sha256": "s"},
        "dataset": {"sha256": "d"},
        "metadata": {},
        "policy": {},
        "provenance": {"seeds": [0]},
        "summary": {"all_as_expected": True, "released": [], "blocked": [], "unexpected": [], "status_counts": {}},
        "generators": [
            {
                "name": "ctgan",
                "generator": "ctgan",
                "params": {},
                "source": "built-in",
                "verdict": verdict,
                "expected": "release",
                "as_expected": True,
                "reasons": [],
                "measurements": measurements,
            }
        ],
    }
    return card


# 1.2: TPR at a false-positive rate and inference `risk`; 1.3: excess over the rate and inference `excess`.
# Compared as numbers, 0.011 -> 0.04 would be "worse" and 0.12 -> 0.04 "better": neither may be claimed.
OLD = [
    _m("membership.distance.tpr_at_fpr_1pct", 0.011),
    _m("membership.distance.tpr_at_fpr_10pct", 0.12, limit=None),
    _m("inference.age.risk", 0.30, limit=None),
    _m("inference.max.risk", 0.30, limit=0.5),
    _m("dcr.share_closer_to_train", 0.40, limit=0.6),
    _m("linkability.risk", 0.01),
]
NEW = [
    _m("membership.distance.excess_at_fpr", 0.04),
    _m("inference.age.excess", 0.02, limit=None),
    _m("inference.max.excess", 0.02),
    _m("collisions.excess", 0.0, limit=0.01),
    _m("linkability.risk", 0.01),
]


def _write(folder: Path, name: str, card: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def _kinds(changes) -> dict[str, tuple[str, str]]:
    return {c.measurement: (c.kind, c.note) for c in changes}


def test_renames_are_one_table_with_their_new_names() -> None:
    assert renamed("membership.local.tpr_at_fpr_1pct")[0] == "membership.local.excess_at_fpr"
    assert renamed("membership.local.tpr_at_fpr_10pct")[0] == "membership.local.excess_at_fpr"
    assert renamed("inference.max.risk")[0] == "inference.max.excess"
    assert renamed("inference.blood.type.risk")[0] == "inference.blood.type.excess"  # a secret with a dot
    assert renamed("linkability.risk") is None and renamed("inference.age.excess") is None
    assert all(not r.comparable for r in RENAMES)


def test_a_1_2_scorecard_against_1_3_names_new_renamed_and_dropped_measurements(tmp_path: Path, capsys) -> None:
    old = load_scorecard(_write(tmp_path, "old.json", _scorecard("1.2", OLD)))
    new = load_scorecard(_write(tmp_path, "new.json", _scorecard("1.3", NEW)))
    changes = compare(old, new)
    kinds = _kinds(changes)
    not_comparable = ("renamed", "not comparable (a different unit)")
    assert kinds["membership.distance.tpr_at_fpr_1pct -> membership.distance.excess_at_fpr"] == not_comparable
    assert kinds["membership.distance.tpr_at_fpr_10pct -> membership.distance.excess_at_fpr"] == not_comparable
    assert kinds["inference.age.risk -> inference.age.excess"] == not_comparable
    assert kinds["inference.max.risk -> inference.max.excess"] == not_comparable
    assert kinds["dcr.share_closer_to_train"][0] == "no longer measured"
    assert kinds["collisions.excess"][0] == "new"
    assert "linkability.risk" not in kinds  # unchanged
    assert not any(c.regression for c in changes)
    assert any("schema 1.2 vs 1.3" in n for n in caveats(old, new))
    text = render_changes(changes, caveats(old, new))
    assert "0 regression(s), 6 other change(s)" in text and "not comparable" in text
    code = main(["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    assert code == 0, capsys.readouterr()


def test_a_gate_that_passed_and_blocks_under_its_new_name_is_a_regression(tmp_path: Path, capsys) -> None:
    blocked = [m if m["name"] != "inference.max.excess" else _m(m["name"], 0.2, "risk shown") for m in NEW]
    old = load_scorecard(_write(tmp_path, "old.json", _scorecard("1.2", OLD)))
    new = load_scorecard(_write(tmp_path, "new.json", _scorecard("1.3", blocked, verdict="block")))
    changes = compare(old, new)
    regressions = {(c.measurement, c.kind) for c in changes if c.regression}
    assert regressions == {("inference.max.risk -> inference.max.excess", "blocks now"), ("verdict", "blocks now")}
    assert main(["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 1
    capsys.readouterr()


def test_a_gated_measurement_gone_within_one_schema_is_still_a_regression(tmp_path: Path) -> None:
    old = load_scorecard(_write(tmp_path, "old.json", _scorecard("1.3", NEW)))
    new = load_scorecard(_write(tmp_path, "new.json", _scorecard("1.3", NEW[1:])))
    (change,) = compare(old, new)
    assert (change.measurement, change.kind, change.regression) == ("membership.distance.excess_at_fpr", "gone", True)


@pytest.mark.parametrize(("version", "words"), [("1.5", "newer than this suite reads"), ("one", "not a version")])
def test_a_scorecard_of_a_newer_or_unknown_schema_is_refused(tmp_path: Path, capsys, version, words) -> None:
    newer = _write(tmp_path, "newer.json", _scorecard(version, NEW))
    older = _write(tmp_path, "old.json", _scorecard("1.2", OLD))
    capsys.readouterr()
    assert main(["compare", str(older), str(newer)]) == 2
    err = capsys.readouterr().err
    assert str(newer) in err and words in err and "Traceback" not in err, err
