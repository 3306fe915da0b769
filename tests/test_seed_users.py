"""Each seed user's job from one scenario (issue 15, part 6), through the command line on small shipped data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from suite.cli import main
from suite.reports import read_json
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


# -- metasynth-style: edit the exported model, sample from it alone -------------------------------------------------


def test_sampling_from_an_edited_marginals_model_needs_no_data(tmp_path, rows_1500, capsys) -> None:
    data = tmp_path / "private.csv"
    data.write_bytes(rows_1500.read_bytes())
    scenario = write_scenario(tmp_path, data, generators=[{"name": "marginals"}])
    model_file = tmp_path / "model.json"
    assert main(["export-marginals", str(scenario), "--out", str(model_file)]) == 0
    model = json.loads(model_file.read_text())
    levels = model["columns"]["gender"]["params"]["categories"]
    assert {c["value"] for c in levels} == {"female", "male"}
    for c in levels:  # the steward's edit: 90% female
        c["p"] = 0.9 if c["value"] == "female" else 0.1
    model_file.write_text(json.dumps(model))
    data.unlink()  # the data stays with its steward

    out = tmp_path / "drawn.csv"
    assert main(["sample", str(model_file), "--rows", "4000", "--out", str(out), "--seed", "3"]) == 0
    drawn = pd.read_csv(out)
    assert len(drawn) == 4000 and list(drawn.columns) == list(model["columns"])
    assert drawn["gender"].value_counts(normalize=True)["female"] == pytest.approx(0.9, abs=0.02)
    assert "not gated" in capsys.readouterr().out
    again = tmp_path / "again.csv"
    assert main(["sample", str(model_file), "--rows", "4000", "--out", str(again), "--seed", "3"]) == 0
    assert again.read_bytes() == out.read_bytes()  # the seed makes it reproducible


def test_a_broken_model_is_bad_input_at_sample_validate_and_run(tmp_path, rows_1500, capsys) -> None:
    scenario = write_scenario(tmp_path, rows_1500, generators=[{"name": "marginals"}])
    model_file = tmp_path / "model.json"
    assert main(["export-marginals", str(scenario), "--out", str(model_file)]) == 0
    exported = model_file.read_text()
    model = json.loads(exported)
    model["columns"]["gender"]["params"]["categories"][0]["p"] = "most"
    model_file.write_text(json.dumps(model))
    capsys.readouterr()
    assert main(["sample", str(model_file), "--rows", "10", "--out", str(tmp_path / "x.csv")]) == 2
    assert "column 'gender': field params.categories" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()

    gated = write_scenario(
        tmp_path, rows_1500, name="gated", generators=[{"name": "marginals", "params": {"model": str(model_file)}}]
    )
    assert main(["validate", str(gated)]) == 2
    err = capsys.readouterr().err
    assert "generators[0].params.model" in err and "column 'gender': field params.categories" in err
    assert main(["run", str(gated), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "column 'gender'" in capsys.readouterr().err and not (tmp_path / "out").exists()

    model = json.loads(exported)
    del model["columns"]["age"]  # valid in form, but not the training table's columns: refused before any fit
    model_file.write_text(json.dumps(model))
    assert main(["validate", str(gated)]) == 0
    capsys.readouterr()
    assert main(["run", str(gated), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "no entry for the training column(s) ['age']" in capsys.readouterr().err
    assert not any((tmp_path / "out").glob("*/scorecard.json"))


# -- ASyH-style: SDV metadata as it is written for SDV, the best SDV model's table released --------------------------

PBCSEQ = Path(__file__).resolve().parent.parent / "data" / "pbcseq.parquet"


def _sdv_metadata(folder: Path, **table: object) -> Path:
    """pbcseq's metadata as an SDV user writes it: sequence_key / sequence_index, 0/1 flags declared boolean."""
    shipped = json.loads(PBCSEQ.with_name("pbcseq.metadata.json").read_text())
    columns = {**shipped["columns"], **{c: {"sdtype": "boolean"} for c in ("ascites", "hepato", "spiders")}}
    roles = {k: v for k, v in shipped["roles"].items() if k not in ("entity", "sequence_index")}
    path = folder / "sdv_metadata.json"
    path.write_text(json.dumps({"columns": columns, "roles": roles, **table}))
    return path


def _pbcseq_scenario(folder: Path, metadata: Path, **overrides: object) -> Path:
    return write_scenario(
        folder,
        PBCSEQ,
        name="asyh",
        dataset={"path": str(PBCSEQ), "metadata": str(metadata)},
        split={"holdout": 0.3, "seed": 0},
        **overrides,
    )


def test_sdv_sequence_metadata_and_boolean_flags_give_the_best_sdv_table(tmp_path, capsys) -> None:
    metadata = _sdv_metadata(tmp_path, sequence_key="id", sequence_index="day")
    path = _pbcseq_scenario(
        tmp_path,
        metadata,
        generators=[
            {"name": "sdv.gaussian_copula", "expect": "candidate"},
            {"name": "marginals", "expect": "candidate"},
        ],
        checks=["collisions", "fidelity"],
        policy={"fidelity.quality": {"min": 0.5}},
        select={"by": "fidelity.quality"},
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    run_dir = _only_run(tmp_path / "out")
    written = json.loads((run_dir / "metadata.json").read_text())
    assert written["roles"]["entity"] == "id" and written["roles"]["sequence_index"] == "day"
    card = read_json(run_dir / "scorecard.json")
    assert all(g.verdict == "release" for g in card.generators)
    (table,) = card.release
    assert table.generator == card.selection.chosen
    released = pd.read_parquet(run_dir / table.file)
    flags = [c for c in released.columns if c.startswith(("ascites.", "hepato.", "spiders."))]
    assert len(flags) == 6 and all(released[c].dtype == "boolean" for c in flags)  # 0/1 read as booleans
    assert card.dataset["rows"] == 1945
    assert len(released) < 312  # history records: one per training patient, not one per visit


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"sequence_index": "day"}, "sequence_index: set without sequence_key; add sequence_key"),
        ({"sequence_key": "patient", "sequence_index": "day"}, "sequence_key: 'patient' is not one of the columns"),
        ({"sequence_key": ["id", "sex"]}, "sequence_key: composite keys are not supported"),
    ],
)
def test_sdv_sequence_metadata_that_cannot_be_used_is_bad_input(tmp_path, capsys, table, words) -> None:
    path = _pbcseq_scenario(tmp_path, _sdv_metadata(tmp_path, **table), generators=[{"name": "marginals"}])
    assert main(["validate", str(path)]) == 0  # validate reads no data; the run reads the metadata first
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert words in capsys.readouterr().err


def test_numbers_other_than_0_and_1_declared_boolean_are_bad_input(tmp_path) -> None:
    from suite.dataset import prepare
    from suite.errors import ConfigError
    from suite.metadata import Roles

    table = tmp_path / "flags.csv"
    pd.DataFrame({"flag": [0, 2, 2, 0] * 25, "x": range(100)}).to_csv(table, index=False)
    metadata = tmp_path / "flags.json"
    metadata.write_text(json.dumps({"columns": {"flag": {"sdtype": "boolean"}, "x": {"sdtype": "numerical"}}}))
    with pytest.raises(
        ConfigError, match=r"'flag' is declared boolean but 50 number\(s\) are not 0 or 1, first at row 2"
    ):
        prepare(table, metadata_path=metadata, roles=Roles(), holdout=0.3, seed=0)


FLCHAIN = Path(__file__).resolve().parent.parent / "data" / "flchain.parquet"


def test_impute_then_fixed_combinations_keeps_the_living_and_says_what_it_filled(tmp_path) -> None:
    """ASyH: with `impute`, allowed combinations are learned on the imputed rows the generator fits (learned on
    the raw rows, only `death = 1` rows survived rejection: the living's cause of death is missing, imputation
    fills it, and no (0, filled cause) combination was allowed). Filling a value that does not exist (a cause of
    death for the living) is noted in fit_info and the report; missingness says what it compares."""
    rows = tmp_path / "flchain_2000.parquet"
    pd.read_parquet(FLCHAIN).sample(2000, random_state=0).to_parquet(rows)
    generator = {
        "name": "marginals",
        "impute": "simple",
        "constraints": [{"kind": "fixed_combinations", "columns": ["death", "chapter"]}],
    }
    path = write_scenario(
        tmp_path,
        rows,
        name="asyh_impute",
        dataset={"path": str(rows), "roles": {"target": "death"}},
        generators=[generator],
        checks=["missingness"],
        preset="none",
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-plan"]) == 0
    run_dir = _only_run(tmp_path / "out")
    card = read_json(run_dir / "scorecard.json")
    released = pd.read_parquet(run_dir / card.release[0].file)
    living = (released["death"] == 0).mean()
    assert 0.4 < living < 0.9, living  # 72% of the real rows are alive; none survived before the fix
    (info,) = card.generators[0].fit_info
    filled = info["imputation"]["structurally_missing_filled"]
    assert [(f["column"], f["missing_when"]) for f in filled] == [("chapter", "death")]
    real = pd.read_parquet(rows)
    train_living = card.dataset["train_rows"] * (real["death"] == 0).mean()
    assert abs(filled[0]["rows_filled"] - train_living) < 0.05 * card.dataset["train_rows"]
    assert "Note: impute filled values that do not exist in the real data" in (run_dir / "report.md").read_text()
    rate = next(m for m in card.generators[0].measurements if m.name == "missingness.rate_mae")
    assert "before any imputation" in rate.details["compares"] and "imputation removed" in rate.details["note"]
