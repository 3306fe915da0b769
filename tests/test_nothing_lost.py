"""Nothing lost: read-only inputs, fresh run folders, and a crash that leaves earlier runs intact."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import suite.metrics.dcr
from suite.cli import main
from tests.conftest import write_scenario


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_read_only_dataset_and_scenario_are_enough(tmp_path, small_csv):
    data = tmp_path / "data.csv"
    data.write_bytes(small_csv.read_bytes())
    path = write_scenario(tmp_path, data)
    before = (hashlib.sha256(data.read_bytes()).hexdigest(), data.stat().st_mtime_ns)
    for file in (data, path):
        file.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        assert main(["run", str(path), "--quiet"]) == 0
    finally:
        for file in (data, path):
            file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert (hashlib.sha256(data.read_bytes()).hexdigest(), data.stat().st_mtime_ns) == before


def test_runs_in_the_same_second_get_their_own_folders(tmp_path, small_csv):
    path = write_scenario(tmp_path, small_csv, checks=["collisions"])
    for _ in range(2):
        assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    folders = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert len(folders) == 2 and all((tmp_path / "o" / f / "scorecard.json").is_file() for f in folders)


def test_a_crash_leaves_earlier_runs_intact_and_no_partial_scorecard(tmp_path, small_csv, monkeypatch):
    path = write_scenario(tmp_path, small_csv)
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    (earlier,) = list(out.iterdir())
    snapshot = _digest(earlier)

    def interrupt(self, ctx):  # noqa: ANN001
        raise KeyboardInterrupt  # Ctrl-C in the middle of the second generator's checks

    monkeypatch.setattr(suite.metrics.dcr.DCRMetric, "evaluate", interrupt)
    # --no-plan: the null release before the fits would meet the interrupt before any run folder exists
    assert main(["run", str(path), "--out", str(out), "--quiet", "--no-plan"]) == 130
    assert _digest(earlier) == snapshot
    (crashed,) = [p for p in out.iterdir() if p != earlier]
    assert not (crashed / "scorecard.json").exists() and not (crashed / "report.html").exists()
    leftovers = [p for p in crashed.rglob("*") if p.name.startswith(".") and p.suffix == ".tmp"]
    assert not leftovers
    # what the crashed run finished is kept for `run --resume`
    assert list(crashed.glob("cache/*/synthetic.parquet"))
    monkeypatch.undo()
    assert main(["run", "--resume", str(crashed), "--quiet"]) == 0
    assert (crashed / "scorecard.json").is_file()
    assert os.listdir(out) and _digest(earlier) == snapshot


def test_resume_never_overwrites_a_finished_run_nor_mixes_two_tables(tmp_path, small_csv, capsys):
    data = tmp_path / "data.csv"
    data.write_bytes(small_csv.read_bytes())
    path = write_scenario(tmp_path, data, checks=["collisions"])
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    (run_dir,) = list(out.iterdir())
    snapshot = _digest(run_dir)
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a finished run" in err and str(run_dir / "scorecard.json") in err and "start a new run" in err
    assert _digest(run_dir) == snapshot
    # as if interrupted before its scorecard, then the table changed: resuming would judge two tables as one
    (run_dir / "scorecard.json").unlink()
    rows = data.read_text().splitlines(keepends=True)
    data.write_text("".join(rows[:-1]))
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"the data file {data} changed since this run started" in err
    assert not (run_dir / "scorecard.json").exists()
    for damaged in ("{", "[]", json.dumps({"scenario": str(path)})):
        (run_dir / "run.json").write_text(damaged)
        assert main(["run", "--resume", str(run_dir), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "run.json is damaged or was written by another version" in err and "Traceback" not in err


def test_an_edited_check_result_is_discarded_and_recomputed_on_resume(tmp_path, small_csv, capsys):
    path = write_scenario(tmp_path, small_csv, checks=["collisions"])
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--keep-cache"]) == 0
    (run_dir,) = list(out.iterdir())
    before = json.loads((run_dir / "scorecard.json").read_text())
    assert [g["verdict"] for g in before["generators"]] == ["release", "block"]
    (run_dir / "scorecard.json").unlink()  # as if interrupted before its scorecard
    edited = sorted(run_dir.glob("cache/*/checks/*.json"))
    assert len(edited) == 2
    changed = 0
    for file in edited:  # every measurement made harmless by hand: identity would be released
        text = file.read_text()
        raw = json.loads(text)
        for m in raw["measurements"]:
            m.update(value=0.0, ci=None if m["ci"] is None else [0.0, 0.0], error=None)
        file.write_text(json.dumps(raw))
        changed += file.read_text() != text  # a result that already reads 0 is left unchanged, and reused
    assert changed >= 1
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 0  # identity blocked again, as expected
    err = capsys.readouterr().err
    assert "identity (2/2): collisions: its cached result does not match the hash the suite wrote; discarded" in err
    after = json.loads((run_dir / "scorecard.json").read_text())
    assert [g["measurements"] for g in after["generators"]] == [g["measurements"] for g in before["generators"]]
