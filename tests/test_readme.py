"""The README's two commands stay true: CI runs the README's test line verbatim."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_line():
    test_line = next(b.strip() for b in _bash_blocks() if "pytest" in b and "\n" not in b.strip())
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_line in ci


def test_readme_quickstart_line_installs_torch_first_and_runs_the_quickstart():
    quick = next(b.strip() for b in _bash_blocks() if "scenarios/quickstart.yaml" in b and "pip install" in b)
    assert quick.index("torch==2.13.0") < quick.index("pip install -e .")
    assert quick.endswith("python -m suite run scenarios/quickstart.yaml")
    assert (ROOT / "scenarios" / "quickstart.yaml").is_file()
