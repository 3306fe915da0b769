"""The suite's own attack surface: YAML, pickles, output paths and plugins."""

from __future__ import annotations

import pickle

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
    for name in ("os:system", "generators.calibration:IdentityGenerator", "generators.calibration.IdentityGenerator"):
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
