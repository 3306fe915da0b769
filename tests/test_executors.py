"""Fan-out and resume: the same scorecard from one process, a process pool, a Dask cluster or a resumed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from suite.cache import TaskCache
from suite.cli import main
from tests.conftest import ROOT, write_scenario

GENERATORS = [
    {"name": "marginals"},
    {"name": "identity", "expect": "block"},
    {"name": "verbatim_copy", "expect": "block"},
]


def _scenario(tmp_path: Path, small_csv: Path, **overrides) -> Path:
    settings = {"generators": GENERATORS, "checks": ["collisions", "dcr", "fidelity"], "repeats": 2, **overrides}
    return write_scenario(tmp_path, small_csv, **settings)


def _run_folder(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def _measurements(run_dir: Path) -> list[tuple]:
    card = json.loads((run_dir / "scorecard.json").read_text())
    return [
        (g["name"], m["name"], m["repeat"], m["value"], m["ci"], m["status"])
        for g in card["generators"]
        for m in g["measurements"]
    ]


@pytest.fixture(scope="module")
def serial(tmp_path_factory, small_csv):
    folder = tmp_path_factory.mktemp("serial")
    path = _scenario(folder, small_csv)
    assert main(["run", str(path), "--out", str(folder / "out"), "--quiet", "--keep-cache"]) == 0
    return path, _run_folder(folder / "out")


def test_two_local_workers_give_the_same_measurements(serial, tmp_path):
    path, run_dir = serial
    assert main(["run", str(path), "--out", str(tmp_path), "--quiet", "--workers", "2"]) == 0
    assert _measurements(_run_folder(tmp_path)) == _measurements(run_dir)


def test_a_dask_local_cluster_gives_the_same_measurements(serial, tmp_path):
    pytest.importorskip("distributed")
    path, run_dir = serial
    code = main(["run", str(path), "--out", str(tmp_path), "--quiet", "--executor", "dask", "--workers", "2"])
    assert code == 0
    assert _measurements(_run_folder(tmp_path)) == _measurements(run_dir)


def test_resume_reuses_every_finished_task(serial, capsys):
    path, run_dir = serial
    before = _measurements(run_dir)
    tasks = sorted((run_dir / "cache").iterdir())
    assert len(tasks) == 6  # 3 generators x 2 repeats, each under its content hash
    for task in tasks:
        assert {"task.json", "synthetic.parquet", "checks"} <= {p.name for p in task.iterdir()}
    (run_dir / "scorecard.json").unlink()  # as if interrupted before its scorecard: a finished run is never redone
    assert main(["run", "--resume", str(run_dir), "--keep-cache"]) == 0
    err = capsys.readouterr().err
    assert err.count("fit and sample reused from the run folder") == 6
    assert " fit on " not in err and ": dcr" not in err  # nothing refitted, no check rerun
    assert _measurements(run_dir) == before


def test_a_tampered_pickle_is_never_loaded(serial):
    _, run_dir = serial
    task = sorted((run_dir / "cache").iterdir())[0]
    cache = TaskCache(run_dir, task.name)
    assert cache.load_generator() is not None
    blob = (task / "generator.pkl").read_bytes()
    (task / "generator.pkl").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    assert cache.load_generator() is None  # the hash no longer matches what the suite wrote
    (task / "generator.pkl").write_bytes(blob)


def test_a_killed_run_leaves_whole_files_and_resumes_to_the_same_scorecard(serial, tmp_path, small_csv):
    """SIGKILL in the middle of the run: every file left is whole; resume finishes the rest."""
    _, reference = serial
    path = _scenario(tmp_path, small_csv)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "suite", "run", str(path), "--out", str(out), "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = list(out.glob("*/cache/*/task.json"))
        if len(done) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = _run_folder(out)
    assert not (run_dir / "scorecard.json").exists()
    for file in run_dir.rglob("*"):
        if file.name.startswith("."):
            continue  # a temporary name: never read, removed on resume
        if file.suffix == ".json":
            json.loads(file.read_text())
        elif file.suffix == ".parquet":
            pd.read_parquet(file)
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    assert not list(run_dir.rglob(".*.tmp"))
    assert _measurements(run_dir) == _measurements(reference)


def test_resume_refuses_what_it_cannot_continue(tmp_path, small_csv, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    path = _scenario(tmp_path, small_csv, checks=["collisions"])
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    run_dir = _run_folder(tmp_path / "o")
    assert main(["run", str(path), "--resume", str(run_dir)]) == 2
    assert "either scenarios or --resume" in capsys.readouterr().err
    (run_dir / "scorecard.json").unlink()  # as if interrupted (a finished run is refused before anything else)
    path.write_text(path.read_text().replace("seed: 0", "seed: 1"))
    assert main(["run", "--resume", str(run_dir)]) == 2
    assert "changed since this run started" in capsys.readouterr().err
    assert main(["run", str(path), "--address", "tcp://127.0.0.1:1"]) == 2
    assert "--address needs --executor dask" in capsys.readouterr().err


def test_a_finished_run_drops_its_cache_unless_asked(tmp_path, small_csv):
    """identity's fitted model and sample are the training rows: they do not outlive the run."""
    path = _scenario(tmp_path, small_csv, checks=["collisions"], repeats=1)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    run_dir = _run_folder(tmp_path / "o")
    assert not (run_dir / "cache").exists() and (run_dir / "scorecard.json").is_file()
    assert main(["run", str(path), "--out", str(tmp_path / "k"), "--quiet", "--keep-cache"]) == 0
    files = list(_run_folder(tmp_path / "k").glob("cache/*/synthetic.parquet"))
    assert len(files) == 3 and all(f.stat().st_mode & 0o077 == 0 for f in files)  # owner only
