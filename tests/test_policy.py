"""Judgements: the unfavourable bound, the class of a failed gate, and a gate that fails closed."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from suite.policy import BLOCKING, DEFAULT_POLICY, PRESETS, Status, Threshold, certify_advice, judge, preset_policy
from suite.scorecard import MeasurementRecord, explain
from suite.types import Goal, Measurement


def _one(m: Measurement, threshold: Threshold | None):
    policy = {m.name: threshold} if threshold is not None else {}
    (j,) = judge([m], policy)
    return j


def test_privacy_is_judged_on_the_upper_end_of_its_interval():
    m = Measurement("dcr.share_closer_to_train", 0.52, Goal.MINIMIZE, ci=(0.50, 0.56))
    j = _one(m, Threshold(max=0.55))
    assert j.status is Status.NOT_SHOWN_SAFE and j.observed == 0.56
    assert j.reason == "dcr.share_closer_to_train: not shown safe: upper bound 0.56 > max 0.55 (value 0.52)"
    assert _one(m, Threshold(max=0.57)).status is Status.PASS


def test_utility_is_judged_on_the_lower_end():
    m = Measurement("fidelity.quality", 0.82, Goal.MAXIMIZE, ci=(0.78, 0.85))
    j = _one(m, Threshold(min=0.8))
    assert j.status is Status.NOT_SHOWN_SAFE and "lower bound 0.78 < min 0.8" in j.reason
    assert _one(m, Threshold(min=0.75)).status is Status.PASS


def test_errors_and_nan_block_even_without_a_threshold():
    err = Measurement.from_error("dcr.share_closer_to_train", Goal.MINIMIZE, "boom")
    assert _one(err, None).status is Status.ERROR
    nan = Measurement("collisions.rate", math.nan, Goal.MINIMIZE)
    assert _one(nan, Threshold(max=0.1)).status is Status.ERROR
    assert Status.ERROR.blocks and Status.MISSING.blocks
    assert Status.RISK_SHOWN.blocks and Status.NOT_SHOWN_SAFE.blocks
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
    assert j.status is Status.NOT_SHOWN_SAFE  # default max 0.6
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


def test_a_failed_gate_says_whether_a_risk_was_shown_or_only_not_shown_safe():
    leak = Measurement("dcr.share_closer_to_train", 0.75, Goal.MINIMIZE, ci=(0.7, 0.8))
    j = _one(leak, Threshold(max=0.6))
    assert j.status is Status.RISK_SHOWN  # even the lower bound is past the max: a leak was measured
    assert j.reason == "dcr.share_closer_to_train: risk shown: lower bound 0.7 > max 0.6 (value 0.75)"
    low_utility = Measurement("fidelity.quality", 0.5, Goal.MAXIMIZE, ci=(0.45, 0.55))
    assert _one(low_utility, Threshold(min=0.6)).status is Status.RISK_SHOWN
    no_interval = Measurement("collisions.rate", 0.2, Goal.MINIMIZE)
    j = _one(no_interval, Threshold(max=0.1))
    assert j.status is Status.RISK_SHOWN and j.reason == "collisions.rate: risk shown: value 0.2 > max 0.1"
    both = Measurement("fidelity.quality", 0.7, Goal.MAXIMIZE, ci=(0.65, 0.9))
    j = _one(both, Threshold(min=0.5, max=0.85))  # the min holds; the interval straddles the max
    assert j.status is Status.NOT_SHOWN_SAFE
    assert j.reason == "fidelity.quality: not shown safe: upper bound 0.9 > max 0.85 (value 0.7)"


def test_a_value_outside_its_own_interval_is_judged_not_hidden():
    m = Measurement("dcr.share_closer_to_train", 0.7, Goal.MINIMIZE, ci=(0.4, 0.5))
    j = _one(m, Threshold(max=0.6))
    assert j.status is Status.NOT_SHOWN_SAFE and j.observed == 0.7
    assert "value 0.7 > max 0.6 (outside its own interval" in j.reason
    assert m.conservative() == 0.7
    utility = Measurement("fidelity.quality", 0.5, Goal.MAXIMIZE, ci=(0.8, 0.9))
    assert _one(utility, Threshold(min=0.6)).status is Status.NOT_SHOWN_SAFE


@pytest.mark.parametrize(
    ("value", "ci"),
    [
        (0.1, (math.nan, math.nan)),
        (0.1, (0.0, math.inf)),
        (0.1, (-math.inf, 0.2)),
        (math.inf, None),
        (0.1, (0.0, math.nan)),
    ],
)
def test_a_non_finite_value_or_interval_end_is_an_error(value, ci):
    m = Measurement("dcr.share_closer_to_train", value, Goal.MINIMIZE, ci=ci)
    for threshold in (Threshold(max=0.6), Threshold(min=0.0), None):
        j = _one(m, threshold)
        assert j.status is Status.ERROR and j.status.blocks and "not a number" in j.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("side", ["max", "min"])
def test_a_non_finite_threshold_is_refused(bad, side):
    with pytest.raises(ValidationError, match="finite number.*write {} to report"):
        Threshold(**{side: bad})
    with pytest.raises(ValidationError):
        Threshold.model_validate_json(f'{{"{side}": "{bad}"}}')


def test_advice_names_the_threshold_this_data_certifies_and_the_holdout_it_would_need():
    # half-width 0.07 on the unfavourable side, 0.05 of room below the max: ((1.645 + 1.282) / 1.645 * 0.07 /
    # 0.05)^2 = 6.2x the rows put the max 0.6 where the bound stays inside it 90% of the time (the plan's rule)
    advice = certify_advice(0.55, (0.48, 0.62), Threshold(max=0.6), 0.95)
    assert advice == (
        "the tightest max this data certifies is 0.62; about 6.2x the holdout rows would certify max 0.6 "
        "90% of the time if the estimate held"
    )
    assert "about 12.7x" in certify_advice(0.82, (0.78, 0.85), Threshold(min=0.8), 0.95)
    past = certify_advice(0.65, (0.55, 0.72), Threshold(max=0.6), 0.95)
    assert past.endswith("cannot certify max 0.6: the estimate itself is past the threshold")
    assert "0.72" in past


def _record(m: Measurement, threshold: Threshold) -> MeasurementRecord:
    return MeasurementRecord.build(m, _one(m, threshold), 0)


def test_why_lists_the_blocking_classes_and_advice_comes_only_when_power_alone_blocks():
    straddles = _record(
        Measurement("dcr.share_closer_to_train", 0.55, Goal.MINIMIZE, ci=(0.48, 0.62)), Threshold(max=0.6)
    )
    passes = _record(Measurement("collisions.excess", 0.0, Goal.MINIMIZE, ci=(0.0, 0.001)), Threshold(max=0.01))
    leak = _record(Measurement("collisions.rate", 0.2, Goal.MINIMIZE), Threshold(max=0.1))
    why, records = explain([straddles, passes], 0.95)
    assert why == ["not shown safe"]
    assert records[0].advice and "6.2x" in records[0].advice and records[1].advice is None
    why, records = explain([leak, straddles], 0.95)
    assert why == ["risk shown", "not shown safe"] and all(r.advice is None for r in records)
    assert explain([passes], 0.95) == ([], [passes])


def test_a_scorecard_before_1_3_reads_fail_as_a_blocking_status():
    legacy = _record(Measurement("collisions.rate", 0.2, Goal.MINIMIZE), Threshold(max=0.1)).model_dump(mode="json")
    legacy["status"] = "fail"
    record = MeasurementRecord.model_validate(legacy)
    assert record.status is Status.NOT_SHOWN_SAFE and record.status.blocks


def test_a_non_finite_interval_is_written_as_null_so_the_scorecard_reads_back():
    m = Measurement("dcr.share_closer_to_train", 0.5, Goal.MINIMIZE, ci=(math.nan, math.nan))
    record = _record(m, Threshold(max=0.6))
    assert record.status is Status.ERROR
    again = MeasurementRecord.model_validate_json(record.model_dump_json())
    assert again.ci is None and again.value == 0.5 and again.status is Status.ERROR


def test_not_applicable_neither_passes_nor_blocks_nor_counts_as_a_pass():
    """A refit a file cannot give: `not applicable` under a default or a scenario threshold (never `missing`),
    no block, and `passed` is None (a gate that applies and passes says True)."""
    why = "the shadow attacker refits the generator"
    na = Measurement.inapplicable("shadow.worst_excess", Goal.MINIMIZE, why)
    for policy, defaults in (({}, DEFAULT_POLICY), ({"shadow.worst_excess": Threshold(max=0.5)}, {})):
        (j,) = judge([na], policy, defaults)
        assert j.status is Status.NOT_APPLICABLE and not j.status.blocks and why in j.reason
        assert MeasurementRecord.build(na, j, 0).passed is None
    assert Status.NOT_APPLICABLE not in (Status.PASS, *BLOCKING)
    # an error wins: a check that failed blocks whatever else it says
    both = Measurement("shadow.worst_excess", math.nan, Goal.MINIMIZE, error="boom", not_applicable=why)
    assert judge([both], {})[0].status is Status.ERROR
