"""The DP claim audit: generators declare their claim, `dp_audit` refutes a broken one and keeps a correct one."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

import suite.attacks  # noqa: F401 - registers the checks
from suite.attacks._membership_features import clopper_pearson, one_run_epsilon
from suite.attacks.dp_audit import DPAudit
from suite.generators.bayesian_network import BayesianNetworkGenerator
from suite.generators.vae import VAEGenerator
from suite.plan import Component
from suite.policy import PRESETS, Status, judge
from suite.runner import make_context
from suite.scenario import GeneratorSpec
from suite.testing import check_check
from suite.types import Context, PrivacyClaim


class NoNoiseBayesianNetwork(BayesianNetworkGenerator):
    """Broken on purpose: declares the epsilon-DP claim of its `epsilon` but fits exact counts (no noise)."""

    def fit(self, train, metadata):
        epsilon, self.epsilon = self.epsilon, None
        try:
            return super().fit(train, metadata)
        finally:
            self.epsilon = epsilon


class DomainCoveredBayesianNetwork(BayesianNetworkGenerator):
    """The shipped network with the claim it would make if its domains were covered by the budget."""

    def privacy_claim(self):
        return replace(super().privacy_claim(), public=("n",))


def _context(data, cls, seed: int = 0, **params) -> Context:
    return Context(
        train=data.train,
        holdout=data.control,
        synthetic=data.reference,
        metadata=data.metadata,
        seed=seed,
        confidence=0.9,
        fit_generator=lambda rows: cls(**params).fit(rows, data.metadata),
        privacy_claim=cls(**params).privacy_claim(),
    )


def _audit(data, cls, seed: int = 0, **params) -> list:
    return DPAudit().evaluate(_context(data, cls, seed, **params))


def test_one_run_bound_is_clopper_pearsons_log_odds_and_delta_only_lowers_it():
    exact = one_run_epsilon(200, 100, 95, 0.0, 0.9)
    low = clopper_pearson(95, 100, 0.9)[0]
    assert exact == pytest.approx(math.log(low / (1 - low)))
    assert one_run_epsilon(200, 100, 95, 1e-12, 0.9) == pytest.approx(exact, abs=1e-4)  # the delta search, at ~0
    assert 0 < one_run_epsilon(200, 100, 95, 1e-3, 0.9) < exact
    assert one_run_epsilon(200, 100, 50, 0.0, 0.9) == 0.0  # a coin's accuracy shows nothing
    assert one_run_epsilon(200, 0, 0, 0.0, 0.9) == 0.0


def test_noise_switched_off_violates_the_claim_and_blocks(small_data):
    lower, excess = check_check(DPAudit, _context(small_data, NoNoiseBayesianNetwork))  # twice, same values
    assert lower.details["claim"]["epsilon"] == 1.0 and lower.details["can_refute_claim"]
    assert lower.value > 1.0 and excess.value == pytest.approx(lower.value - 1.0)
    assert excess.details["claim_violated"] is True
    (verdict,) = [j for j in judge([lower, excess], {}, PRESETS["default"]) if j.measurement == excess.name]
    assert verdict.status is Status.RISK_SHOWN


def test_the_private_network_keeps_its_claim(small_data):
    lower, excess = _audit(small_data, BayesianNetworkGenerator, random_state=0)
    assert lower.details["canary_kind"].startswith("inside the domain")
    assert lower.details["can_refute_claim"]  # the audit could have refuted epsilon = 1 ...
    assert lower.value < 1.0 and excess.value < 0  # ... and did not
    assert not excess.details["claim_violated"]
    (verdict,) = [j for j in judge([lower, excess], {}, PRESETS["default"]) if j.measurement == excess.name]
    assert verdict.status is Status.PASS


def test_domains_read_from_the_data_would_break_a_claim_that_covered_them(small_data):
    """Canaries with levels of their own show through the network's data-derived domains: the claim
    is honest only because it names the domain as public."""
    lower, excess = _audit(small_data, DomainCoveredBayesianNetwork, random_state=0)
    assert lower.details["canary_kind"].startswith("outside the domain")
    assert excess.value > 0
    assert "domain" in BayesianNetworkGenerator().privacy_claim().public


def test_a_generator_without_a_claim_is_not_applicable(small_data, capsys):
    ctx = Context(
        train=small_data.train,
        holdout=small_data.control,
        synthetic=small_data.reference,
        metadata=small_data.metadata,
        seed=0,
    )
    assert DPAudit().evaluate(ctx) == []
    assert "not applicable" in capsys.readouterr().err
    assert not [
        j for j in judge([], {}, PRESETS["default"]) if j.measurement.startswith("dp_audit")
    ]  # no gate, no block
    with pytest.raises(ValueError, match="cannot refit"):
        DPAudit().evaluate(replace(ctx, privacy_claim=PrivacyClaim(epsilon=1.0)))


def test_the_runner_hands_each_generators_declared_claim_to_the_checks(small_data):
    def claim(cls, **params):
        component = Component(spec=GeneratorSpec(name=cls.name), cls=cls, params=params)
        return make_context(component, small_data, small_data.reference, seed=0).privacy_claim

    assert claim(BayesianNetworkGenerator, epsilon=0.5) == BayesianNetworkGenerator(epsilon=0.5).privacy_claim()
    assert claim(BayesianNetworkGenerator, epsilon=None) is None
    assert claim(VAEGenerator) is None
    vae = claim(VAEGenerator, dp=True, epsilon=2.0, delta=1e-5)
    assert (vae.epsilon, vae.delta, vae.neighbours, vae.unit) == (2.0, 1e-5, "add_remove", "row")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": 1.0, "delta": 1.0}, "delta"),
        ({"epsilon": 1.0, "unit": "visit"}, "unit"),
    ],
)
def test_a_malformed_claim_names_its_field(kwargs, field):
    with pytest.raises(ValueError, match=f"privacy claim: {field}"):
        PrivacyClaim(**kwargs)


@pytest.mark.slow
def test_the_dp_vae_keeps_its_claim(small_data):
    lower, excess = _audit(small_data, VAEGenerator, dp=True, epsilon=1.0, epochs=10)
    assert lower.details["can_refute_claim"]
    assert excess.value < 0


def test_a_malformed_claim_is_a_config_error_before_any_fit(tmp_path, small_csv):
    from suite.errors import ConfigError
    from suite.plan import resolve
    from suite.scenario import load_scenario
    from tests.conftest import write_scenario

    path = write_scenario(tmp_path, small_csv, generators=[{"name": "vae", "params": {"dp": True, "delta": 2.0}}])
    with pytest.raises(ConfigError, match=r"generators\[0\]\.params: vae declares a malformed privacy claim.*delta"):
        resolve(*load_scenario(path))


def test_the_audit_refits_through_the_runners_path(small_data):
    from suite.testing import context_for

    ctx = context_for(small_data, "bayesian_network", params={"random_state": 0})
    lower, excess = DPAudit().evaluate(ctx)
    fitted = lower.details["rows_fitted"]
    assert fitted == 1000 + lower.details["canaries"] and lower.details["rows_sampled"] == 10 * fitted  # n fixed
    assert lower.details["claim"]["public"] == ["n", "domain"] and excess.value < 0


@pytest.mark.parametrize("public", [(), ("domain",)])
def test_canaries_of_every_awkward_column_kind_fit(public):
    """Dates, nullable integers, booleans, categoricals with missing values and an all-missing column."""
    from tests.conftest import mixed_table

    frame, metadata = mixed_table(200)
    ctx = Context(
        train=frame,
        holdout=frame.iloc[:50],
        synthetic=frame,
        metadata=metadata,
        seed=0,
        fit_generator=lambda rows: BayesianNetworkGenerator(random_state=0).fit(rows, metadata),
        privacy_claim=PrivacyClaim(epsilon=1.0, public=public),
    )
    lower, excess = DPAudit().evaluate(ctx)
    assert lower.details["canaries"] == 50 and math.isfinite(lower.value) and excess.value == lower.value - 1.0
