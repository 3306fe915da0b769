"""The shipped attack scenario, end to end on the full quickstart table (slow: about 4 minutes)."""

from __future__ import annotations

import pytest

from suite.cli import main
from suite.reports import read_json
from tests.conftest import ROOT

SCENARIO = ROOT / "scenarios" / "covid_attacks.yaml"
ATTACKS = ("singling_out.", "linkability.", "inference.", "membership.")


@pytest.fixture(scope="module")
def scorecard(tmp_path_factory):
    out = tmp_path_factory.mktemp("attacks")
    assert main(["run", str(SCENARIO), "--out", str(out), "--quiet"]) == 0
    (run_dir,) = out.iterdir()
    return read_json(run_dir / "scorecard.json")


def _gated(scorecard, generator):
    g = next(g for g in scorecard.generators if g.name == generator)
    return {m.name: m for m in g.measurements if m.name.startswith(ATTACKS) and m.status != "ungated"}


@pytest.mark.slow
def test_identity_is_blocked_by_every_attack(scorecard):
    gated = _gated(scorecard, "identity")
    for name in (
        "singling_out.univariate.risk",
        "singling_out.multivariate.risk",
        "linkability.risk",
        "inference.max.excess",
        "membership.distance.auc",
        "membership.density.auc",
    ):
        assert gated[name].status in ("risk shown", "not shown safe"), gated[name].reason
    assert gated["membership.distance.auc"].value > 0.95


@pytest.mark.slow
def test_near_copy_is_blocked_by_membership(scorecard):
    assert _gated(scorecard, "noisy_copy")["membership.distance.auc"].status in ("risk shown", "not shown safe")


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["holdout", "uniform", "marginals", "sdv.gaussian_copula"])
def test_unseen_data_noise_and_models_pass_every_attack(scorecard, generator):
    gated = _gated(scorecard, generator)
    assert set(gated) == {
        "singling_out.univariate.risk",
        "singling_out.multivariate.risk",
        "linkability.risk",
        "inference.max.excess",
        "membership.distance.auc",
        "membership.density.auc",
        "membership.distance.excess_at_fpr",
        "membership.density.excess_at_fpr",
        "membership.local.auc",
        "membership.local.excess_at_fpr",
        "membership.isolated.excess_at_fpr",
    }
    failed = {n: m.reason for n, m in gated.items() if m.status != "pass"}
    assert not failed
    assert abs(gated["membership.distance.auc"].value - 0.5) < 0.05


@pytest.mark.slow
def test_leaks_of_a_few_people_are_blocked_by_the_worst_case_gates(scorecard):
    """Near-copies of the 2% most isolated people, and quasi-identifiers with secrets of 10% pasted into
    clean rows: averages hide both; the local-copying and inference gates do not."""
    local = _gated(scorecard, "outlier_copy")["membership.local.excess_at_fpr"]
    assert local.status in ("risk shown", "not shown safe") and local.ci[0] > 0, local.reason
    isolated = _gated(scorecard, "outlier_copy")["membership.isolated.excess_at_fpr"]
    assert isolated.status == "risk shown", isolated.reason  # a large share of the most isolated people
    partial = next(g for g in scorecard.generators if g.name == "partial_copy")
    assert partial.verdict == "block"
    assert _gated(scorecard, "partial_copy")["inference.max.excess"].status != "pass"
