"""Nothing lost: read-only inputs, fresh run folders, and a crash that leaves earlier runs intact."""

from __future__ import annotations

import hashlib
import os
import stat

import metrics.dcr
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

    monkeypatch.setattr(metrics.dcr.DCRMetric, "evaluate", interrupt)
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 130
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
