"""The shipped quickstart end to end, attacks and leak canaries included (slow: about 4 minutes on 2 cores).

The default test run uses the quickstart's utility side instead (tests/conftest.py `quickstart_run`); the
fast test here keeps the README's printed verdicts in step with the scenario.
"""

from __future__ import annotations

import re

import pytest
import yaml

from suite.cli import main
from suite.reports import read_json
from tests.conftest import QUICKSTART, ROOT

#: Every attack kind the quickstart runs must carry at least one gated measurement on the released copula.
ATTACK_GATES = ("singling_out.", "inference.", "reconstruction.", "membership.distance.", "membership.local.")


@pytest.fixture(scope="module")
def scorecard(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart-full")
    assert main(["run", str(QUICKSTART), "--out", str(out), "--quiet"]) == 0
    (run_dir,) = out.iterdir()
    return read_json(run_dir / "scorecard.json")


def _generator(scorecard, name):
    return next(g for g in scorecard.generators if g.name == name)


def _gated(scorecard, generator):
    return {m.name: m for m in _generator(scorecard, generator).measurements if m.status != "ungated"}


@pytest.mark.slow
def test_quickstart_gets_every_expected_verdict(scorecard):
    verdicts = {g.name: g.verdict for g in scorecard.generators}
    assert verdicts == {
        "sdv.gaussian_copula": "release",
        "holdout": "release",
        "identity": "block",
        "noisy_copy": "block",
        "outlier_copy": "block",
        "partial_copy": "block",
    }
    assert scorecard.summary.all_as_expected


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["sdv.gaussian_copula", "holdout"])
def test_released_generators_met_every_attack(scorecard, generator):
    gated = _gated(scorecard, generator)
    for prefix in ATTACK_GATES:
        met = [m for name, m in gated.items() if name.startswith(prefix)]
        assert met and all(m.status == "pass" for m in met), (prefix, [m.reason for m in met])
    assert not any(name.startswith("membership.density.") for name in gated)  # left out of the quickstart


@pytest.mark.slow
def test_leaks_of_a_few_people_are_blocked_by_worst_case_gates(scorecard):
    """Near-copies of the 2% most isolated people slip past the averages; the local-copying gate catches
    them. Secrets pasted with quasi-identifiers are caught by attribute inference and shown by reconstruction."""
    outlier = _gated(scorecard, "outlier_copy")
    blocking = {name for name, m in outlier.items() if m.status in ("risk shown", "not shown safe")}
    assert "membership.local.excess_at_fpr" in blocking, sorted(blocking)
    assert outlier["collisions.excess"].status == "pass"  # no exact copy: only the worst-case gate sees it
    partial = _gated(scorecard, "partial_copy")
    assert partial["inference.max.excess"].status in ("risk shown", "not shown safe")
    # among people of rare quasi-identifier tuples the pasted secrets are a shown risk, not only unproven safety
    assert partial["reconstruction.joint.rare_excess"].status == "risk shown", partial[
        "reconstruction.joint.rare_excess"
    ]


def _printed_verdicts() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## What the quickstart prints", 1)[1].split("```", 2)[1]
    rows = re.findall(r"^(\S+)\s+(release|block)\s+(release|block)\s+yes\b", block, flags=re.M)
    return {name: (verdict, expected) for name, verdict, expected in rows}


def test_readme_prints_one_expected_verdict_per_quickstart_generator():
    generators = yaml.safe_load(QUICKSTART.read_text())["generators"]
    expected = {g["name"]: g.get("expect", "release") for g in generators}
    assert _printed_verdicts() == {name: (e, e) for name, e in expected.items()}
