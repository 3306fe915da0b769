"""suite/ in layers (docs/plugins.md, "Layers"): core imports only core, numerics import core and numerics, the
application imports anything; the plugin families (metrics, attacks, generators, reports) import core, numerics and
their own package, never the application nor another family. Found by reading every import statement (those
inside functions too), in either spelling of a family (`metrics.x` or `suite.metrics.x`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = frozenset(
    {"types", "registry", "metadata", "policy", "scorecard", "io", "errors", "declarations", "disclosure", "coercion"}
)
NUMERICS = frozenset({"neighbors", "stats", "encoding", "seeding", "histories", "constraints"})
FAMILIES = ("metrics", "attacks", "generators", "reports")
#: What each layer may import (a family also imports its own package).
ALLOWED = {"core": {"core"}, "numerics": {"core", "numerics"}, "family": {"core", "numerics"}}


def layer(module: str) -> tuple[str, str] | None:
    """(layer, family or "") of a dotted module name; None outside this repository's packages."""
    parts = module.split(".")
    if parts[0] == "suite" and len(parts) > 1 and parts[1] in FAMILIES:
        parts = parts[1:]
    if parts[0] in FAMILIES:
        return "family", parts[0]
    if parts[0] != "suite":
        return None
    if len(parts) == 1 or parts[1] == "__init__":
        return "core", ""  # the package itself holds only its version
    if parts[1] in CORE:
        return "core", ""
    return ("numerics", "") if parts[1] in NUMERICS else ("application", "")  # a new module is application until listed


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the tree; `from pkg import mod` counts as `pkg.mod`."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names if layer(name) == ("core", "")]
    return out


def offences(root: Path) -> list[str]:
    """Every import under `root` that runs up a layer, as `file:line: module (layer) imports name (layer)`."""
    files = sorted((root / "suite").glob("*.py"))
    for family in FAMILIES:
        files += sorted((root / family).rglob("*.py")) + sorted((root / "suite" / family).rglob("*.py"))
    found = []
    for path in files:
        module = module_name(path, root)
        own = layer(module)
        if own is None or own[0] == "application":
            continue
        for line, name in imported(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
            target = layer(name)
            if target is None or target[0] in ALLOWED[own[0]] or (own[0] == "family" and target == own):
                continue
            what = f"the {target[1]} family" if target[0] == "family" else f"the {target[0]}"
            found.append(
                f"{path.relative_to(root)}:{line}: {module} ({own[0]}{' ' + own[1] if own[1] else ''}) imports {name} "
                f"({what}); move what it needs down a layer"
            )
    return found


def test_no_import_runs_up_a_layer() -> None:
    assert offences(ROOT) == []


def test_every_listed_module_exists() -> None:
    """A stale list would let a renamed module escape the scan."""
    assert sorted(m for m in CORE | NUMERICS if not (ROOT / "suite" / f"{m}.py").exists()) == []


@pytest.mark.parametrize(("row", "modules"), [("core", CORE), ("numerics", NUMERICS)])
def test_the_docs_list_the_layers_the_scan_uses(row: str, modules: frozenset[str]) -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    (cell,) = re.findall(rf"^\| {row} \| (.*?) \|", doc, re.M)
    assert set(re.findall(r"`(\w+)`", cell)) == modules


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("name", "text", "offender"),
    [
        ("suite/policy.py", "from suite.runner import run\n", "suite.runner"),
        ("suite/scorecard.py", "def f():\n    from suite.release import x\n", "suite.release"),
        ("suite/metadata.py", "from suite import neighbors\n", "suite.neighbors"),
        ("suite/stats.py", "from . import cli\n", "suite.cli"),
        ("metrics/rules.py", "from suite.processing import complies\n", "suite.processing"),
        ("metrics/rules.py", "import suite.scenario\n", "suite.scenario"),
        ("suite/constraints.py", "from suite.generators.marginals import M\n", "suite.generators.marginals"),
        ("generators/external.py", "from suite.attacks._anonymeter import x\n", "suite.attacks._anonymeter"),
        ("attacks/x.py", "from suite.metrics._tabular import subsample\n", "suite.metrics._tabular"),
    ],
)
def test_an_import_up_a_layer_is_named(tmp_path: Path, name: str, text: str, offender: str) -> None:
    (found,) = offences(_tree(tmp_path, {name: text}))
    assert found.startswith(f"{name}:") and f"imports {offender} " in found


@pytest.mark.parametrize(
    "text",
    [
        "from suite.types import Measurement\nfrom suite.stats import wilson_ci\n",
        "from suite.metrics._tabular import subsample\nfrom metrics import _tabular\nfrom . import _tabular\n",
        "import numpy as np\nfrom suite import encoding\n",
    ],
)
def test_imports_down_or_within_a_family_are_allowed(tmp_path: Path, text: str) -> None:
    assert offences(_tree(tmp_path, {"metrics/rules.py": text})) == []
