"""Judgements: conservative ends of intervals, and a gate that fails closed."""

from __future__ import annotations

import math

from suite.policy import DEFAULT_POLICY, PRESETS, Status, Threshold, judge, preset_policy
from suite.types import Goal, Measurement


def _one(m: Measurement, threshold: Threshold | None):
    policy = {m.name: threshold} if threshold is not None else {}
    (j,) = judge([m], policy)
    return j


def test_privacy_is_judged_on_the_upper_end_of_its_interval():
    m = Measurement("dcr.share_closer_to_train", 0.52, Goal.MINIMIZE, ci=(0.50, 0.56))
    j = _one(m, Threshold(max=0.55))
    assert j.status is Status.FAIL and j.observed == 0.56
    assert "0.56 > max 0.55" in j.reason
    assert _one(m, Threshold(max=0.57)).status is Status.PASS


def test_utility_is_judged_on_the_lower_end():
    m = Measurement("fidelity.quality", 0.82, Goal.MAXIMIZE, ci=(0.78, 0.85))
    assert _one(m, Threshold(min=0.8)).status is Status.FAIL
    assert _one(m, Threshold(min=0.75)).status is Status.PASS


def test_errors_and_nan_block_even_without_a_threshold():
    err = Measurement.from_error("dcr.share_closer_to_train", Goal.MINIMIZE, "boom")
    assert _one(err, None).status is Status.ERROR
    nan = Measurement("collisions.rate", math.nan, Goal.MINIMIZE)
    assert _one(nan, Threshold(max=0.1)).status is Status.ERROR
    assert Status.ERROR.blocks and Status.MISSING.blocks and Status.FAIL.blocks
    assert not Status.UNGATED.blocks and not Status.PASS.blocks


def test_a_threshold_without_its_measurement_is_missing_and_blocks():
    judgements = judge([], {"collisions.excess": Threshold(max=0.0)})
    assert [j.status for j in judgements] == [Status.MISSING]


def test_empty_threshold_reports_without_gating():
    m = Measurement("collisions.rate", 0.9, Goal.MINIMIZE)
    assert _one(m, Threshold()).status is Status.UNGATED
    assert judge([], {"collisions.rate": Threshold()}) == []


def test_defaults_apply_only_to_selected_checks_and_scenario_overrides_them():
    defaults = preset_policy("default", ["dcr.*", "collisions.rate"])
    assert "dcr.share_closer_to_train" in defaults
    assert "fidelity.quality" not in defaults and "collisions.excess" not in defaults
    m = Measurement("dcr.share_closer_to_train", 0.58, Goal.MINIMIZE, ci=(0.56, 0.62))
    (j,) = judge([m], {}, defaults)
    assert j.status is Status.FAIL  # default max 0.6
    (j,) = judge([m], {"dcr.share_closer_to_train": Threshold(max=0.65)}, defaults)
    assert j.status is Status.PASS  # the scenario's threshold wins


def test_a_default_whose_measurement_never_arrives_does_not_block_but_a_scenario_threshold_does():
    defaults = preset_policy("default", ["membership.*.auc"])
    assert {"membership.distance.auc", "membership.density.auc"} <= set(defaults)
    only_distance = [Measurement("membership.distance.auc", 0.5, Goal.MINIMIZE, ci=(0.48, 0.52))]
    assert [j.status for j in judge(only_distance, {}, defaults)] == [Status.PASS]
    statuses = [j.status for j in judge(only_distance, {"membership.density.auc": Threshold(max=0.6)}, defaults)]
    assert statuses == [Status.PASS, Status.MISSING]


def test_presets_differ_in_strictness_and_none_gates_nothing():
    strict, research = PRESETS["strict"], PRESETS["research"]
    for name, threshold in DEFAULT_POLICY.items():
        if threshold.max is not None:
            assert strict[name].max <= threshold.max <= research[name].max, name
        if threshold.min is not None:
            assert strict[name].min >= threshold.min >= research[name].min, name
    assert preset_policy("none", ["*"]) == {}
