"""The suite's own attack surface: YAML, pickles, output paths and plugins."""

from __future__ import annotations

import pickle
import time

import pytest

from suite.cache import TaskCache
from suite.cli import main
from tests.conftest import write_scenario


def test_yaml_cannot_construct_python_objects(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert main(["validate", str(path)]) == 2
    assert "malformed YAML" in capsys.readouterr().err
    assert not marker.exists()


def test_output_cannot_climb_out_of_the_working_folder(tmp_path, small_csv, capsys):
    path = write_scenario(tmp_path, small_csv, output="runs/../../escaped")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "output" in err and "'..'" in err
    assert not (tmp_path.parent / "escaped").exists()


def test_a_module_path_is_not_a_plugin(tmp_path, small_csv, capsys):
    """Only registered names (built-ins and installed entry points) load; a scenario cannot import code."""
    for name in (
        "os:system",
        "suite.generators.calibration:IdentityGenerator",
        "suite.generators.calibration.IdentityGenerator",
    ):
        path = write_scenario(tmp_path, small_csv, generators=[{"name": name}])
        assert main(["validate", str(path)]) == 2
        assert f"unknown generator {name!r}" in capsys.readouterr().err


def test_only_the_suites_own_pickle_is_loaded(tmp_path):
    """The cache loads a fitted generator only if the hash file the suite wrote beside it matches."""
    cache = TaskCache(tmp_path, "k")
    assert cache.save_generator({"fitted": True})
    assert cache.load_generator() == {"fitted": True}
    planted = pickle.dumps({"planted": True})
    (cache.dir / "generator.pkl").write_bytes(planted)
    assert cache.load_generator() is None
    (cache.dir / "generator.sha256").unlink()
    assert cache.load_generator() is None


@pytest.mark.parametrize("output", ["/abs/elsewhere", "runs/sub"])
def test_absolute_and_nested_outputs_are_fine(tmp_path, small_csv, output):
    path = write_scenario(tmp_path, small_csv, output=output)
    assert main(["validate", str(path)]) == 0


def test_a_key_given_twice_is_refused_not_silently_merged(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    path.write_text("name: a\npolicy: {dcr.share_closer_to_train: {max: 0.6}}\npolicy: {}\n")
    assert main(["validate", str(path)]) == 2
    assert "key 'policy' appears twice in one mapping (first on line 2)" in capsys.readouterr().err


def test_a_misspelt_parameter_gets_the_nearest_name(tmp_path, small_csv, capsys):
    path = write_scenario(tmp_path, small_csv, generators=[{"name": "marginals", "params": {"bin": 3}}])
    assert main(["validate", str(path)]) == 2
    assert "has no parameter 'bin'; did you mean 'bins'?" in capsys.readouterr().err


LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (LAUGHS + "name: *i\n", ["line 6", "more than 100,000 values (aliases expanded)"]),
        ("name: x\ngenerators: " + "[" * 100_000 + "]" * 100_000 + "\n", ["nested more than 64 levels deep"]),
        ("name: &a [x, *a]\n", ["line 1", "an alias refers to the anchor it sits in"]),
    ],
    ids=["billion laughs", "nested 100,000 levels", "alias inside its anchor"],
)
def test_yaml_that_expands_or_nests_without_bound_is_refused_quickly(tmp_path, capsys, text, needles):
    """A few hundred bytes used to print a 34 MB message (or recurse until Python gave up, exit 1)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    assert main(["validate", str(path)]) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err
    assert "bomb.yaml" in err and "Traceback" not in err and len(err) < 1_000, err[:2_000]
    for needle in needles:
        assert needle in err, err


def test_aliases_that_stay_small_still_work(tmp_path, small_csv):
    """Anchors are legitimate YAML: shared parameters written once."""
    path = write_scenario(tmp_path, small_csv)
    path.write_text(
        path.read_text() + "policy:\n  collisions.excess: &strict {max: 0.01}\n  dcr.share_closer_to_train: *strict\n"
    )
    assert main(["validate", str(path)]) == 0


@pytest.mark.parametrize(
    "value",
    [
        "x" * 1_000_000,
        {f"key{i}": list(range(100)) for i in range(200)},
    ],
    ids=["a 1 MB string", "a 200 x 100 mapping"],
)
def test_echoed_input_is_cut_short(tmp_path, small_csv, capsys, value):
    """Every error that echoes a value (here: a wrong type for `repeats`) shows at most a few dozen characters."""
    path = write_scenario(tmp_path, small_csv, repeats=value)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "repeats: " in err and len(err) < 600, err[:2_000]


def test_output_through_a_symlink_in_the_working_folder_is_refused(tmp_path, small_csv, capsys, monkeypatch):
    """A pull request can commit `runs -> /elsewhere`; the run folder goes there only if `--out` names it."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "runs").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.chdir(work)
    path = write_scenario(work, small_csv, output="runs", generators=[{"name": "uniform"}], checks=["collisions"])
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "small.yaml: output" in err and f"is a symlink to {elsewhere}" in err and "--out" in err, err
    assert not any(elsewhere.iterdir())
    assert main(["run", str(path), "--quiet", "--out", "runs"]) == 0
    (run_dir,) = elsewhere.iterdir()
    assert f"run folder: {run_dir}\n" in capsys.readouterr().out


def test_the_run_prints_the_resolved_run_folder(tmp_path, small_csv, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_scenario(
        tmp_path, small_csv, output="out/./here", generators=[{"name": "uniform"}], checks=["collisions"]
    )
    assert main(["run", str(path), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "out" / "here").iterdir()
    assert f"run folder: {run_dir}\n" in capsys.readouterr().out
