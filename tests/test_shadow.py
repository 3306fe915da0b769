"""The shadow-model attack on its worst target, on the shipped quickstart slice: a copy is shown to leak,
a generator that never sees the training rows is not, and an attack the budget cannot afford is skipped."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import attacks.shadow  # noqa: F401  (registers the check)
from attacks._membership_features import clopper_pearson
from attacks.shadow import ShadowAttack, bonferroni_level, excess_bounds, pick_targets, power
from suite.policy import DEFAULT_POLICY, Status, judge
from suite.testing import context_for

#: Fewer fits than the defaults, for a generator whose leak is large (a copy): still 100 predictions a target.
_QUICK = {"targets": 3, "predictions": 100, "train_fits": 40, "min_predictions": 100}


def _by_name(measurements):
    return {m.name: m for m in measurements}


def _status(m):
    (j,) = judge([m], {}, DEFAULT_POLICY)
    return j.status


def test_holdout_is_not_flagged_at_the_default_settings(small_data, capsys):
    """`holdout` is fitted on reference rows, never on a shadow set: the target's presence cannot show."""
    ms = _by_name(ShadowAttack().evaluate(context_for(small_data, "holdout")))
    m = ms["shadow.worst_excess"]
    assert "300 generator fits" in capsys.readouterr().err
    assert m.ci[0] <= m.value <= m.ci[1] and m.ci[0] < 0.0 < m.ci[1]  # no leak shown on any target
    assert _status(m) is Status.PASS
    d = m.details
    assert d["held_out_predictions"] == 200 and d["train_fits"] == 100 and len(d["targets"]) == 5
    assert d["shadow_set_rows"] == min(d["real_pool_rows"], len(small_data.train))
    assert "Bonferroni over 10 rates" in d["interval"]
    assert d["power"]["certifiable_excess"] < DEFAULT_POLICY["shadow.worst_excess"].max
    assert ms["shadow.predictions"].value == 200


def test_identity_is_shown_to_leak_its_most_isolated_people(small_data):
    ms = _by_name(ShadowAttack(**_QUICK).evaluate(context_for(small_data, "identity")))
    m = ms["shadow.worst_excess"]
    assert m.value > 0.9 and m.ci[0] > DEFAULT_POLICY["shadow.worst_excess"].max
    assert _status(m) is Status.RISK_SHOWN
    ranks = [t["isolation_rank"] for t in m.details["targets"]]
    isolation = [t["isolation"] for t in m.details["targets"]]
    assert ranks == [1, 2, 3] and isolation == sorted(isolation, reverse=True)


def test_an_attack_over_budget_is_skipped_and_judged_nowhere(small_data, capsys):
    ms = ShadowAttack(budget_s=0.001).evaluate(context_for(small_data, "identity"))
    (note,) = ms
    assert note.name == "shadow.predictions" and note.value == 0
    assert "over budget_s=0.001" in note.details["skipped"] and "nothing passed" in note.details["skipped"]
    assert note.details["seconds_per_fit"] > 0 and note.details["estimated_seconds"] > 0
    assert "skipped" in capsys.readouterr().err
    assert not [j for j in judge(ms, {}, DEFAULT_POLICY) if j.status is Status.PASS]  # never a pass


def test_a_generator_that_cannot_be_refitted_is_skipped(small_data):
    ctx = replace(context_for(small_data, "holdout"), fit_generator=None)
    (note,) = ShadowAttack().evaluate(ctx)
    assert note.value == 0 and "cannot be refitted" in note.details["skipped"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"targets": 0}, "targets must be >= 1"),
        ({"predictions": 50, "min_predictions": 100}, "min_predictions <= predictions"),
        ({"train_fits": 2}, "train_fits must be >= 4"),
        ({"budget_s": float("nan")}, "budget_s must be a positive"),
    ],
)
def test_bad_parameters_are_clear_errors(small_data, params, message):
    with pytest.raises(ValueError, match=message):
        ShadowAttack(**params).evaluate(context_for(small_data, "holdout"))


def test_bounds_are_exact_and_corrected_for_the_targets():
    level = bonferroni_level(0.90, 10)
    assert level == pytest.approx(0.99)
    low, high = excess_bounds(50, 50, 0, 50, level)  # a perfect attack on 50 + 50 predictions
    assert low == pytest.approx(1 - 2 * (1 - 0.005 ** (1 / 50)), abs=1e-9) and high == 1.0
    # more predictions certify a smaller excess; more targets cost power
    floors = [power(n // 2, n - n // 2, level)["certifiable_excess"] for n in (60, 100, 200, 400)]
    assert floors == sorted(floors, reverse=True)
    assert (
        power(100, 100, bonferroni_level(0.90, 2))["certifiable_excess"] < power(100, 100, level)["certifiable_excess"]
    )
    # at chance, the Bonferroni-corrected upper bounds of 5 targets all hold in at least 95% of runs
    n = 100
    tpr_low = np.array([clopper_pearson(k, n, level)[0] for k in range(n + 1)])
    fpr_high = np.array([clopper_pearson(k, n, level)[1] for k in range(n + 1)])
    rng = np.random.default_rng(0)
    tp, fp = rng.binomial(n, 0.5, (2000, 5)), rng.binomial(n, 0.5, (2000, 5))
    shown = (tpr_low[tp] - fpr_high[fp] > 0.0).any(axis=1)  # some target's lower bound above chance
    assert shown.mean() <= 0.05


def test_targets_are_the_most_isolated_people_once_each():
    import pandas as pd

    score = np.array([0.1, 0.9, 0.8, 0.7, 0.2])
    assert pick_targets(score, None, 2) == [1, 2]
    people = pd.Series(["a", "b", "b", "c", "d"])
    assert pick_targets(score, people, 3) == [1, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize(("generator", "leaks"), [("marginals", False), ("outlier_copy", True)])
def test_marginals_pass_and_near_copies_of_isolated_people_are_caught(small_data, generator, leaks):
    ms = _by_name(ShadowAttack(budget_s=3600).evaluate(context_for(small_data, generator)))
    m = ms["shadow.worst_excess"]
    assert _status(m) is (Status.RISK_SHOWN if leaks else Status.PASS), m
