"""Each seed user's job from one scenario (issue 15, part 6), through the command line on small shipped data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reports import read_json
from suite.cli import main
from tests.conftest import write_scenario


@pytest.fixture(scope="module")
def rows_1500(tmp_path_factory: pytest.TempPathFactory, covid: pd.DataFrame) -> Path:
    """1,500 real rows of the quickstart table (whole patients) as CSV."""
    ids = covid["subject_id"].drop_duplicates().sample(frac=1.0, random_state=0)
    keep = covid[covid["subject_id"].isin(ids.iloc[:1300])].head(1500)
    path = tmp_path_factory.mktemp("seed_users") / "covid_1500.csv"
    keep.to_csv(path, index=False)
    return path


def _only_run(out: Path) -> Path:
    (run_dir,) = out.iterdir()
    return run_dir


# -- ASyH-style: try several models, keep the best ------------------------------------------------------------------

CANDIDATES = [
    {"name": "marginals", "label": "m_candidate", "expect": "candidate"},
    {"name": "sdv.gaussian_copula", "expect": "candidate"},
]


def test_the_best_released_candidate_is_the_one_table_released(tmp_path, rows_1500, capsys) -> None:
    """Two candidates, split confidence: exit 0, only the selected candidate's table in release/.

    `m_plain` is the same generator and seed as `m_candidate` (so the same rows), judged at the
    scenario's confidence: the candidate's privacy intervals are wider, as Bonferroni over 2 asks.
    """
    generators = [*CANDIDATES, {"name": "marginals", "label": "m_plain"}, {"name": "identity", "expect": "block"}]
    path = write_scenario(
        tmp_path,
        rows_1500,
        generators=generators,
        checks=["collisions", "dcr", "fidelity"],
        policy={"fidelity.quality": {"min": 0.5}},
        select={"by": "fidelity.quality"},
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    run_dir = _only_run(tmp_path / "out")
    card = read_json(run_dir / "scorecard.json")
    by_name = {g.name: g for g in card.generators}
    assert by_name["m_candidate"].confidence == pytest.approx(1 - 0.05 / 2)
    assert by_name["sdv.gaussian_copula"].confidence == pytest.approx(0.975)
    assert by_name["m_plain"].confidence == by_name["identity"].confidence == 0.95
    assert by_name["m_candidate"].expected == "candidate"

    def ci(name: str, measurement: str) -> tuple[float, float]:
        return next(m.ci for m in by_name[name].measurements if m.name == measurement)

    wide, narrow = ci("m_candidate", "dcr.share_closer_to_train"), ci("m_plain", "dcr.share_closer_to_train")
    assert wide[0] < narrow[0] and narrow[1] < wide[1]
    assert ci("m_candidate", "fidelity.quality") == ci("m_plain", "fidelity.quality")  # utility: not split

    chosen = card.selection.chosen
    assert chosen in {"m_candidate", "sdv.gaussian_copula"}
    assert {r["name"] for r in card.selection.ranking} <= {"m_candidate", "sdv.gaussian_copula"}
    files = sorted(p.name for p in (run_dir / "release").iterdir())
    assert files == sorted([f"{chosen}.parquet", "m_plain.parquet"])
    assert sorted(t.generator for t in card.release) == sorted([chosen, "m_plain"])
    out = capsys.readouterr().out
    assert "candidate" in out and f"selected by fidelity.quality: {chosen}" in out


def test_no_released_candidate_fails_the_run_and_releases_nothing(tmp_path, rows_1500) -> None:
    path = write_scenario(
        tmp_path,
        rows_1500,
        generators=CANDIDATES,
        checks=["collisions", "fidelity"],
        policy={"fidelity.quality": {"min": 0.999}},  # no model of real data is that faithful
        select={"by": "fidelity.quality"},
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    run_dir = _only_run(tmp_path / "out")
    card = read_json(run_dir / "scorecard.json")
    assert [g.verdict for g in card.generators] == ["block", "block"]
    assert all(g.as_expected for g in card.generators)  # a candidate may be blocked...
    assert not card.summary.all_as_expected  # ...but the run needs one released and selected
    assert "no candidate was released" in card.summary.unexpected[-1]
    assert card.selection.chosen is None and card.release == []
    assert not (run_dir / "release").exists()


def test_candidates_need_select_and_cannot_be_yardsticks(tmp_path, rows_1500, capsys) -> None:
    path = write_scenario(tmp_path, rows_1500, generators=CANDIDATES)
    assert main(["validate", str(path)]) == 2
    assert "expect: candidate" in capsys.readouterr().err
    path = write_scenario(
        tmp_path,
        rows_1500,
        generators=[{"name": "holdout", "expect": "candidate"}],
        select={"by": "dcr.share_closer_to_train"},
    )
    assert main(["validate", str(path)]) == 2
    assert "generators[0].expect: holdout is a calibration yardstick" in capsys.readouterr().err
