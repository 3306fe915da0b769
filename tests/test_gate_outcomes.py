"""End to end through `suite.cli.main` on 240 rows of flchain: a non-finite threshold is refused, a
blocked generator says why (`risk shown`, `not shown safe`), and `compare` refuses what would hide a
regression (a non-finite or negative tolerance, a generator listed twice) but reads 1.2 scorecards.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from suite.cli import main
from suite.reports.compare import load_scorecard
from suite.reports.text import gate_table, verdict_table
from tests.test_bad_input import FLCHAIN, Case


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_parquet(FLCHAIN).sample(240, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> Path:
    """identity (a copy: the risk is shown) and holdout (released) with the default thresholds, plus
    a dcr max that the holdout's interval straddles on this small table (0.408 [0.331, 0.500])."""
    case = Case(tmp_path_factory.mktemp("outcomes"), frame).write(
        policy={"collisions.excess": {"max": 0.01}, "dcr.share_closer_to_train": {"max": 0.45}},
    )
    assert main(["run", str(case.scenario), "--quiet"]) == 1  # holdout is blocked by the tight dcr max
    (found,) = case.runs.iterdir()
    return found


def _code(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_non_finite_threshold_is_refused_and_identity_is_never_released(
    tmp_path, capsys, frame, bad, command
) -> None:
    """Before: `{max: .nan}` passed validate and released identity (a full copy) with exit 0."""
    case = Case(tmp_path, frame).write(
        generators=[{"name": "identity"}], policy={"collisions.excess": {"max": bad}, "dcr.share_closer_to_train": {}}
    )
    args = [command, str(case.scenario)] + (["--quiet"] if command == "run" else [])
    code, _, err = _code(capsys, *args)
    assert code == 2, err
    assert str(case.scenario) in err and "policy.collisions.excess.max" in err
    assert "finite number" in err and "write {} to report the measurement without a gate" in err
    assert "Traceback" not in err and not case.runs.exists()


def test_the_empty_threshold_is_the_explicit_opt_out(tmp_path, capsys, frame) -> None:
    case = Case(tmp_path, frame).write(policy={"collisions.excess": {}})
    code, _, err = _code(capsys, "run", str(case.scenario), "--quiet")
    assert code == 0, err  # identity is still blocked (by dcr), as expected
    (found,) = case.runs.iterdir()
    scorecard = json.loads((found / "scorecard.json").read_text(encoding="utf-8"))
    identity = next(g for g in scorecard["generators"] if g["name"] == "identity")
    excess = next(m for m in identity["measurements"] if m["name"] == "collisions.excess")
    assert excess["status"] == "ungated" and identity["verdict"] == "block"


def test_a_blocked_generator_says_why_in_the_scorecard_and_every_report(run_dir: Path) -> None:
    scorecard = json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))
    assert scorecard["schema_version"] == "1.4"
    g = {g["name"]: g for g in scorecard["generators"]}
    assert g["identity"]["why"] == ["risk shown"]  # a copy: even the lower bound is past the max
    assert all(m["advice"] is None for m in g["identity"]["measurements"])  # a leak needs no advice
    holdout = g["holdout"]
    assert holdout["verdict"] == "block" and holdout["why"] == ["not shown safe"]
    dcr = next(m for m in holdout["measurements"] if m["name"] == "dcr.share_closer_to_train")
    low, high = dcr["ci"]
    assert dcr["status"] == "not shown safe" and low <= 0.45 < high
    assert dcr["reason"].startswith(f"dcr.share_closer_to_train: not shown safe: upper bound {high:.4g} > max 0.45")
    assert f"the tightest max this data certifies is {high:.4g}" in dcr["advice"]
    assert scorecard["summary"]["status_counts"]["not shown safe"] >= 1
    markdown = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "Blocked (not shown safe) because:" in markdown and "**NOT SHOWN SAFE**" in markdown
    assert "**RISK SHOWN**" in markdown and dcr["advice"] in markdown
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<span class="badge not-shown-safe">not shown safe</span>' in html
    assert '<span class="badge risk-shown">risk shown</span>' in html
    junit = (run_dir / "junit.xml").read_text(encoding="utf-8")
    assert 'type="not shown safe"' in junit


def test_the_cli_output_says_why_and_gives_the_advice(run_dir: Path) -> None:
    scorecard = load_scorecard(run_dir)
    table = verdict_table(scorecard)
    assert "[not shown safe] dcr.share_closer_to_train: not shown safe: upper bound" in table
    assert "[risk shown] " in table
    gates = gate_table(scorecard)
    assert "  not shown safe " in gates and "advice: the tightest max this data certifies is" in gates


def test_compare_refuses_a_tolerance_that_hides_regressions(run_dir: Path, capsys) -> None:
    for flag, value in [("--abs-tol", "nan"), ("--abs-tol", "inf"), ("--rel-tol", "nan"), ("--abs-tol", "-0.1")]:
        code, _, err = _code(capsys, "compare", str(run_dir), str(run_dir), flag, value)
        assert code == 2 and flag in err and "finite number >= 0" in err, (flag, value, err)
    assert _code(capsys, "compare", str(run_dir), str(run_dir), "--abs-tol", "0")[0] == 0


def test_compare_refuses_a_generator_listed_twice(run_dir: Path, tmp_path: Path, capsys) -> None:
    scorecard = json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))
    released = {**scorecard["generators"][0], "verdict": "release", "measurements": []}
    scorecard["generators"].append(released)  # a second, better-looking copy of identity
    doubled = tmp_path / "doubled.json"
    doubled.write_text(json.dumps(scorecard), encoding="utf-8")
    code, _, err = _code(capsys, "compare", str(run_dir), str(doubled))
    assert code == 2 and str(doubled) in err and "generator 'identity' is listed 2 times" in err, err
    scorecard["generators"].pop()
    measurements = scorecard["generators"][1]["measurements"]
    measurements.append(measurements[0])
    doubled.write_text(json.dumps(scorecard), encoding="utf-8")
    code, _, err = _code(capsys, "compare", str(run_dir), str(doubled))
    assert code == 2 and "generator 'holdout': measurement" in err and "listed 2 times" in err, err


def test_compare_reads_a_1_2_scorecard_whose_fail_blocks(run_dir: Path, tmp_path: Path, capsys) -> None:
    scorecard = json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))
    old = json.loads(json.dumps(scorecard))
    old["schema_version"] = "1.2"
    for g in old["generators"]:
        g.pop("why")
        for m in g["measurements"]:
            m.pop("advice")
            if m["status"] in ("risk shown", "not shown safe"):
                m["status"] = "fail"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    code, out, err = _code(capsys, "compare", str(path), str(run_dir))
    assert code == 0 and "no change beyond the tolerance" in out, (out, err)
    # the old run released holdout: its dcr gate blocks now, a regression
    for g in old["generators"]:
        if g["name"] == "holdout":
            g["verdict"] = "release"
            for m in g["measurements"]:
                if m["status"] == "fail":
                    m["status"], m["passed"] = "pass", True
    path.write_text(json.dumps(old), encoding="utf-8")
    code, out, err = _code(capsys, "compare", str(path), str(run_dir))
    assert code == 1 and "blocks now" in out, (out, err)
