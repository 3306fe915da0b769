"""One import name: the families install under `suite`, a wheel holds only `suite`, and another project's
top-level `metrics` or `generators` package neither shadows ours nor is shadowed by it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools.namespace_codemod import main as codemod
from tools.namespace_codemod import rewrite

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("generators", "attacks", "metrics", "reports")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built as a wheel from a copy of the checkout (the build leaves the checkout untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("suite", *FAMILIES, "data"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "census_kdd.*"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    # Build isolation: the build uses setuptools>=68 as pyproject.toml asks, not whatever the venv holds.
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)]
    subprocess.run(pip, check=True, capture_output=True)
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_installs_one_top_level_name_and_the_contract_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"suite"}
    for family in FAMILIES:
        assert f"suite/{family}/__init__.py" in names
    assert {"suite/data/covid_testing.parquet", "suite/data/pbcseq.metadata.json"} <= set(names)
    assert "suite/reports/templates/report.html.j2" in names


def test_another_projects_metrics_and_generators_live_beside_ours(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what a non-editable install puts in site-packages
    other = tmp_path / "other"
    for name in ("metrics", "generators"):
        (other / name).mkdir(parents=True)
        (other / name / "__init__.py").write_text(f"WHOSE = 'theirs: {name}'\n")
    code = """
import importlib.util, sys
import generators, metrics
import suite.generators.marginals, suite.metrics.dcr
from suite.registry import checks, generators as registry
from suite.testing import contract_table
assert metrics.WHOSE == "theirs: metrics" and generators.WHOSE == "theirs: generators"
assert suite.metrics.dcr.__file__.startswith(sys.argv[1]), suite.metrics.dcr.__file__
assert "marginals" in registry.names() and "dcr" in checks.names()
assert importlib.util.find_spec("attacks") is None and importlib.util.find_spec("reports") is None
assert len(contract_table(rows=50)[0]) == 50
print("ok")
"""
    # -S: no .pth hooks (the development venv's editable install); the libraries come on PYTHONPATH, the checkout not.
    # (A virtual environment inside the checkout, as CI makes, holds libraries: its site-packages are kept.)
    libraries = [
        p
        for p in sys.path
        if p and Path(p).is_dir() and ("site-packages" in Path(p).parts or not Path(p).resolve().is_relative_to(ROOT))
    ]
    path = os.pathsep.join([str(other), str(site), *libraries])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, str(site)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_checkout_imports_its_own_folders_under_suite() -> None:
    import suite.generators
    import suite.metrics
    from suite.registry import checks, generators

    generators.names(), checks.names()
    assert Path(suite.generators.__file__).parent == ROOT / "generators"
    assert Path(suite.metrics.__file__).parent == ROOT / "metrics"
    assert not [m for m in sys.modules if m.partition(".")[0] in FAMILIES]


def test_nothing_in_the_repository_uses_the_old_top_level_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert codemod(["--check"]) == 0, capsys.readouterr().out


def test_the_codemod_rewrites_modules_only_and_is_idempotent() -> None:
    before = (
        "from metrics.dcr import DCRMetric\n"
        "import attacks.inference\n"
        "from suite.registry import generators\n"
        '@generators.register("marginals")\n'
        'name = "generators.calibration:IdentityGenerator"\n'
        "card.generators, `metrics.dcr.DCRMetric`, [attacks.md](attacks.md)\n"
    )
    after = (
        "from suite.metrics.dcr import DCRMetric\n"
        "import suite.attacks.inference\n"
        "from suite.registry import generators\n"
        '@generators.register("marginals")\n'
        'name = "suite.generators.calibration:IdentityGenerator"\n'
        "card.generators, `suite.metrics.dcr.DCRMetric`, [attacks.md](attacks.md)\n"
    )
    assert rewrite(before, ROOT) == after
    assert rewrite(after, ROOT) == after
