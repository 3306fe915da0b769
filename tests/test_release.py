"""The gate releases what it judged: the release folder, `verify`, and tables made elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from suite.cli import main
from suite.release import spreadsheet_safe
from tests.conftest import write_scenario


def _run(path, out) -> tuple[int, object]:
    code = main(["run", str(path), "--out", str(out), "--quiet", "--no-plan"])
    (run_dir,) = list(out.iterdir())
    return code, run_dir


def test_released_tables_are_written_with_their_hash_and_verify_checks_them(tmp_path, small_csv, capsys) -> None:
    generators = [
        {"name": "marginals"},
        {"name": "uniform"},  # released (no utility check here), but a calibration yardstick: never written
        {"name": "identity", "expect": "block"},
    ]
    # collisions only: on 3,000 rows the dcr interval of a private release can straddle its threshold
    path = write_scenario(tmp_path, small_csv, generators=generators, checks=["collisions"], release={"format": "csv"})
    code, run_dir = _run(path, tmp_path / "runs")
    assert code == 0
    scorecard = json.loads((run_dir / "scorecard.json").read_text())
    (entry,) = scorecard["release"]
    assert entry["generator"] == "marginals" and entry["file"] == "release/marginals.csv"
    assert sorted(p.name for p in (run_dir / "release").iterdir()) == ["marginals.csv"]
    table = pd.read_csv(run_dir / entry["file"])
    assert len(table) == entry["rows"] == scorecard["dataset"]["train_rows"]
    assert entry["data_sha256"] == scorecard["dataset"]["sha256"]

    capsys.readouterr()
    assert main(["verify", str(run_dir), str(run_dir / entry["file"])]) == 0
    assert "marginals" in capsys.readouterr().out
    # one changed cell is another table
    table.iloc[0, 0] = table.iloc[1, 0] if table.iloc[0, 0] != table.iloc[1, 0] else table.iloc[2, 0]
    edited = tmp_path / "edited.csv"
    table.to_csv(edited, index=False)
    assert main(["verify", str(run_dir), str(edited)]) == 1
    assert main(["verify", str(run_dir), str(tmp_path / "missing.csv")]) == 2
    assert main(["verify", str(small_csv), str(edited)]) == 2  # not a scorecard


def test_csv_cells_that_spreadsheets_would_run_are_defused() -> None:
    frame = pd.DataFrame({"note": ["=1+1", "+A1", "-2", "@SUM(A1)", "plain", None], "n": [-1, 2, 3, 4, 5, 6]})
    safe = spreadsheet_safe(frame)
    assert safe["note"].tolist()[:5] == ["'=1+1", "'+A1", "'-2", "'@SUM(A1)", "plain"]
    assert safe["n"].tolist() == frame["n"].tolist()  # numbers are left as they are


def test_a_vendor_table_is_gated_against_the_recorded_split(tmp_path, small_csv, capsys) -> None:
    base = write_scenario(tmp_path, small_csv, name="vendor")
    assert main(["split", str(base), "--out", str(tmp_path / "handover")]) == 0
    handed = pd.read_csv(tmp_path / "handover" / "train.csv")
    assert "subject_id" not in handed.columns  # identifiers are never handed over

    # the vendor returns its training rows: a copy the gate must block
    handed.to_csv(tmp_path / "copy.csv", index=False)
    scenario = yaml.safe_load(base.read_text())
    scenario["split"]["record"] = str(tmp_path / "handover" / "split.json")
    scenario["generators"] = [{"name": "file", "params": {"path": "copy.csv"}, "expect": "block"}]
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(scenario))
    code, run_dir = _run(path, tmp_path / "runs")
    assert code == 0  # blocked, as expected
    card = json.loads((run_dir / "scorecard.json").read_text())
    assert card["generators"][0]["verdict"] == "block" and card["release"] == []

    # a file with a column the training table does not have is bad input, named
    handed.rename(columns={"age": "age_years"}).to_csv(tmp_path / "wrong.csv", index=False)
    scenario["generators"] = [{"name": "file", "params": {"path": "wrong.csv"}}]
    path.write_text(yaml.safe_dump(scenario))
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "runs2"), "--quiet"]) == 2
    assert "age_years" in capsys.readouterr().err
    # without a recorded split the gate cannot be fair: refused before anything runs
    del scenario["split"]["record"]
    path.write_text(yaml.safe_dump(scenario))
    assert main(["validate", str(path)]) == 2
    assert "split.record" in capsys.readouterr().err


def _vendor(tmp_path, small_csv, **changes) -> tuple[dict, object]:
    """A scenario gating the handed-over training rows as a vendor's table (a copy), with `changes`."""
    base = write_scenario(tmp_path, small_csv, name="vendor")
    if not (tmp_path / "handover" / "split.json").is_file():
        assert main(["split", str(base), "--out", str(tmp_path / "handover")]) == 0
    scenario = yaml.safe_load(base.read_text())
    scenario["split"]["record"] = str(tmp_path / "handover" / "split.json")
    scenario["generators"] = [{"name": "file", "params": {"path": "handover/train.csv"}, "expect": "block"}]
    scenario.update(changes)
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return scenario, path


def test_a_vendor_table_lists_the_shadow_attack_not_applicable(tmp_path, small_csv, capsys) -> None:
    """Every check runs on a file except what refits the generator: listed `not applicable`, neither pass
    nor block, in the scorecard and every report; the other attackers still judge (and block) the copy."""
    membership = {"name": "membership", "params": {"attackers": ["distance"]}}
    _, path = _vendor(tmp_path, small_csv, checks=[membership, "shadow", "dp_audit"])
    assert main(["validate", str(path)]) == 0  # no threshold names the shadow attack: nothing to refuse
    code, run_dir = _run(path, tmp_path / "runs")
    assert code == 0  # the copy is blocked, as expected
    card = json.loads((run_dir / "scorecard.json").read_text())
    (g,) = card["generators"]
    shadow = [m for m in g["measurements"] if m["name"] == "shadow.worst_excess"]
    assert [(m["status"], m["passed"]) for m in shadow] == [("not applicable", None)]
    assert "refits the generator" in shadow[0]["reason"]
    assert not any("shadow" in r for r in g["reasons"])  # it is not why the copy is blocked
    assert any(m["name"] == "membership.distance.auc" and m["status"] == "risk shown" for m in g["measurements"])
    audit = {m["name"]: m["status"] for m in g["measurements"] if m["name"].startswith("dp_audit.")}
    assert audit == {"dp_audit.epsilon_lower": "not applicable", "dp_audit.epsilon_excess": "not applicable"}
    # the shadow check and the DP audit only refit: not run at all, each of their measurements listed
    assert card["summary"]["status_counts"]["not applicable"] == 4
    assert "n/a" in (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert 'badge not-applicable">not applicable' in html and "cannot be refitted" in html
    assert "not applicable shadow.worst_excess" in (run_dir / "junit.xml").read_text()
    # gated as a release would be, CI shows it skipped: neither a pass nor a failure
    from suite.reports.junit import render_junit
    from suite.scorecard import Scorecard

    scorecard = Scorecard.model_validate(card)
    as_release = scorecard.generators[0].model_copy(update={"expected": "release"})
    xml = render_junit(scorecard.model_copy(update={"generators": [as_release]}))
    assert '<skipped message="shadow.worst_excess: not applicable' in xml and 'skipped="4"' in xml


def test_a_threshold_on_a_refitting_measurement_of_files_only_is_refused(tmp_path, small_csv, capsys) -> None:
    scenario, path = _vendor(tmp_path, small_csv, checks=["shadow"], policy={"shadow.worst_excess": {"max": 0.5}})
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2  # it could never be judged: said before anything runs
    err = capsys.readouterr().err
    assert "policy.shadow.worst_excess" in err and "not applicable" in err
    # beside a generator the suite fits, the threshold applies to that one (and not to the file)
    scenario["generators"].append({"name": "identity", "expect": "block"})
    path.write_text(yaml.safe_dump(scenario))
    assert main(["validate", str(path)]) == 0


PBCSEQ = Path(__file__).resolve().parent.parent / "data" / "pbcseq.parquet"


def test_a_longitudinal_table_is_handed_over_by_entity_and_a_returned_one_is_gated(tmp_path, capsys) -> None:
    """`split` on visits: every visit of the training patients and none of another, pseudonymous patient ids,
    the split recorded; a returned visit table is judged as histories (a copy blocked, unseen patients not)."""
    from suite.dataset import prepare
    from suite.metadata import Roles

    base = write_scenario(
        tmp_path,
        PBCSEQ,
        name="pbcseq",
        dataset={"path": str(PBCSEQ), "metadata": str(PBCSEQ.with_name("pbcseq.metadata.json"))},
        checks=["collisions"],
    )
    assert main(["split", str(base), "--out", str(tmp_path / "handover")]) == 0
    record = json.loads((tmp_path / "handover" / "split.json").read_text())
    handed = pd.read_csv(tmp_path / "handover" / "train.csv")
    data = prepare(PBCSEQ, metadata_path=PBCSEQ.with_name("pbcseq.metadata.json"), roles=Roles(), holdout=0.3, seed=0)
    assert data.long is not None
    assert len(handed) == record["train_rows"] == len(data.long.train)  # every visit of a training patient
    assert handed["id"].nunique() == record["train_entities"] == len(data.train)  # and no other patient
    assert record["entity"] == "id" and record["record"] == "visits" and record["columns"]["id"] == "id"
    real = pd.read_parquet(PBCSEQ)
    visits = real.groupby("id").size()
    trained = data.long.train_entities.unique()
    assert sorted(handed.groupby("id").size()) == sorted(visits[trained])  # whole histories
    assert list(handed["id"].drop_duplicates()) == list(range(1, len(trained) + 1))  # pseudonyms, not the real ids

    # unseen patients' visits (the reference half) as a vendor's table, beside a copy of the handed-over visits
    unseen = data.long.with_entities("reference")
    unseen.to_csv(tmp_path / "unseen.csv", index=False)
    scenario = yaml.safe_load(base.read_text())
    scenario["split"]["record"] = str(tmp_path / "handover" / "split.json")
    scenario["generators"] = [
        {"name": "file", "label": "copy", "params": {"path": "handover/train.csv"}, "expect": "block"},
        {"name": "file", "label": "unseen", "params": {"path": "unseen.csv"}},
    ]
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(scenario))
    code, run_dir = _run(path, tmp_path / "runs")
    card = json.loads((run_dir / "scorecard.json").read_text())
    verdicts = {g["name"]: g["verdict"] for g in card["generators"]}
    assert verdicts == {"copy": "block", "unseen": "release"} and code == 0
    (entry,) = card["release"]
    assert entry["rows"] == unseen["id"].nunique()  # judged as one history per patient
    # a returned table without the entity column cannot be read as visits: bad input, named
    unseen.drop(columns="id").to_csv(tmp_path / "unseen.csv", index=False)
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "runs2"), "--quiet"]) == 2
    assert "missing ['id']" in capsys.readouterr().err
    # row-level processing cannot apply to a table of visits made elsewhere: refused, not silently skipped
    scenario["generators"] = [{"name": "file", "params": {"path": "handover/train.csv"}, "impute": "simple"}]
    path.write_text(yaml.safe_dump(scenario))
    assert main(["run", str(path), "--out", str(tmp_path / "runs3"), "--quiet"]) == 2
    assert "not available for a file of visits" in capsys.readouterr().err
