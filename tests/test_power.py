"""Power planning: the null release (the holdout's reference half) says which gates a table can certify."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from suite.cli import main
from suite.policy import Threshold, certify_advice, holdout_factor, judge
from suite.power import MAX_HOLDOUT, TARGET_PASS_RATE, Power, _power, joint_advice, joint_rate, refine
from suite.types import Goal, Measurement
from tests.conftest import write_scenario


def test_holdout_factor_certifies_at_the_target_pass_rate() -> None:
    # bound 0.08 past the centre at 95% (se 0.08 / 1.645), threshold 0.05 past it: the holdout that puts the
    # threshold (z + z_target) standard errors away, ((1.645 + 1.282) / 1.645 * 0.08 / 0.05)^2 = 8.1x
    z, z_t = norm.ppf(0.95), norm.ppf(TARGET_PASS_RATE)
    assert holdout_factor(0.08, 0.05, 0.95) == pytest.approx(((z + z_t) / z * 0.08 / 0.05) ** 2)
    assert holdout_factor(0.08, 0.05, 0.95) == pytest.approx(8.1, abs=0.05)
    # a centre already past the threshold cannot be certified by any holdout
    assert holdout_factor(0.05, -0.05, 0.95) is None and holdout_factor(0.05, 0.0, 0.95) is None


def test_a_blocked_gate_and_the_plan_give_the_same_holdout_advice() -> None:
    # one rule for both: the plan's holdout needed, over its holdout, is the advice's factor for the same spread
    plan = _null(0.0, 0.008 * norm.ppf(0.95))
    advice = certify_advice(0.0, (-0.0132, 0.008 * norm.ppf(0.95)), Threshold(max=0.01), 0.95)
    assert f"about {plan.holdout_needed / 0.3:.3g}x the holdout rows" in advice


def test_plan_certifies_a_large_table_and_warns_on_a_small_one(tmp_path, small_csv, capsys) -> None:
    policy = {"collisions.excess": {"max": 0.01}, "dcr.share_closer_to_train": {"max": 0.56}}
    big = write_scenario(tmp_path, small_csv, name="big", policy=policy)
    assert main(["plan", str(big)]) == 0
    out = capsys.readouterr().out
    assert "collisions.excess" in out and "dcr.share_closer_to_train" in out
    assert "ok   collisions.excess" in out  # 3,000 rows certify a 1% excess of exact copies

    rows = pd.read_csv(small_csv).head(260)  # about 40 control people: no interval is tight
    tiny_csv = tmp_path / "tiny.csv"
    rows.to_csv(tiny_csv, index=False)
    # a threshold below what unseen real people score on so few rows: no holdout certifies it
    tiny = write_scenario(tmp_path, tiny_csv, name="tiny", policy={"dcr.share_closer_to_train": {"max": 0.3}})
    assert main(["plan", str(tiny)]) == 0  # advice, not a verdict
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "dcr.share_closer_to_train" in x)
    assert line.strip().startswith("WARN") and "not certifiable" in line


def _null(value: float, half: float, limit: float = 0.01, holdout: float = 0.3) -> Power:
    """The plan's reading of one null draw of `collisions.excess` with a symmetric interval."""
    m = Measurement("collisions.excess", value, Goal.MINIMIZE, ci=(value - half, value + half))
    (j,) = judge([m], {"collisions.excess": Threshold(max=limit)})
    return _power(m, j, holdout, 0.95)


def test_the_pass_rate_comes_from_the_width_not_from_the_luck_of_one_null_draw() -> None:
    # census_20k at holdout 0.3: half-width 0.0135 against max 0.01 -> se 0.0082, and a clean release (mean 0)
    # passes when its estimate is below 0.01 - 0.0135: Phi(0.01 / se - z) = 0.33 (the study saw 6 of 20)
    se = 0.0135 / norm.ppf(0.95)
    expected = norm.cdf(0.01 / se - norm.ppf(0.95))
    lucky, unlucky = _null(-0.009, 0.0135), _null(0.008, 0.0135)
    assert lucky.pass_rate == pytest.approx(expected) and unlucky.pass_rate == pytest.approx(expected)
    assert 0.3 < expected < 0.36 and not lucky.certifiable  # the lucky draw passes its own gate, the plan warns
    assert lucky.bound == pytest.approx(se * (norm.ppf(0.95) + norm.ppf(TARGET_PASS_RATE)))
    # a null past the no-leak value by twice its half-width shows the table's floor: the plan starts from it;
    # past it by less (a valid bound's 1-in-20 draw) it does not
    assert _null(0.015, 0.01, limit=0.05).center == 0.0
    floor = _null(0.03, 0.01, limit=0.05)
    assert floor.center == pytest.approx(0.03) and floor.pass_rate == pytest.approx(
        norm.cdf(0.02 / floor.spread - 1.645), abs=1e-3
    )
    assert _null(0.0, 0.002).certifiable and "passes about 100%" in _null(0.0, 0.002).note


def test_refine_reads_the_holdout_needed_off_two_measured_sizes() -> None:
    small, large = _null(0.0, 0.008 * norm.ppf(0.95)), _null(0.0, 0.003 * norm.ppf(0.95), holdout=0.5)
    (advice,) = refine([small], [large], 0.3, 0.5, 0.95)
    slope = np.log(0.003 / 0.008) / np.log(0.5 / 0.3)  # se = a * holdout^slope through the two points
    target = 0.01 / (norm.ppf(0.95) + norm.ppf(TARGET_PASS_RATE))
    assert advice.holdout_needed == pytest.approx(0.3 * (target / 0.008) ** (1 / slope))
    assert 0.4 < advice.holdout_needed < 0.5 and "a holdout of about 0.47" in advice.note
    assert "95% at holdout 0.5 (measured)" in advice.note
    # a spread that shrinks too slowly: no holdout up to MAX_HOLDOUT certifies it, and the note says what would
    (stuck,) = refine([small], [_null(0.0, 0.006 * norm.ppf(0.95), holdout=0.5)], 0.3, 0.5, 0.95)
    assert stuck.holdout_needed is None and f"not certifiable at any holdout up to {MAX_HOLDOUT:.2g}" in stuck.note


def test_joint_advice_finds_the_holdout_where_every_gate_passes_together() -> None:
    # two gates each certifiable alone (93%) pass together 86%: the joint advice reads each gate's two-size
    # law; a gate whose spread grows with the holdout (fewer people trained on) can forbid any holdout
    z, z_t = norm.ppf(0.95), norm.ppf(0.93)
    se = 0.01 / (z + z_t)  # a 93% gate at max 0.01
    a = _null(0.0, se * z)
    b = dataclasses.replace(a, measurement="inference.max.excess")
    assert a.pass_rate == pytest.approx(0.93) and joint_rate([a, b]) == pytest.approx(0.8649)
    shrinks = [
        _null(0.0, se * z * 0.6, holdout=0.5),
        dataclasses.replace(_null(0.0, se * z * 0.6, holdout=0.5), measurement=b.measurement),
    ]
    text = joint_advice([a, a], shrinks[:1], 0.3, 0.5, 0.95)  # same gate twice: both follow the measured law
    assert text is not None and text.startswith("100% at holdout 0.5 (measured); a holdout of about 0.3")
    assert 0.3 < float(text.split("about ")[1].split()[0]) < 0.4 and text.endswith("would make it 90%")
    grows = dataclasses.replace(_null(0.0, se * z * 1.3, holdout=0.5), measurement=b.measurement)
    stuck = joint_advice([a, b], [shrinks[0], grows], 0.3, 0.5, 0.95)
    assert stuck is not None and "no holdout up to" in stuck
    assert joint_advice([_null(0.0, 0.001)], [], 0.3, 0.5, 0.95) is None  # certain already: nothing to advise


def test_a_run_with_the_yardstick_warns_from_its_task_without_a_second_null_release(
    tmp_path, small_csv, capsys, monkeypatch
) -> None:
    # the `holdout` yardstick's first task is a null release: the run judges it first, warns from it before any
    # other generator is fitted, and does not measure the null release besides
    import suite.runner as runner

    def forbidden(*args, **kwargs):
        raise AssertionError("the yardstick's task is the null release: no second one")

    monkeypatch.setattr(runner, "null_release", forbidden)
    tight = {"dcr.share_closer_to_train": {"max": 0.3}}  # below what unseen real people score
    path = write_scenario(
        tmp_path, small_csv, policy=tight, checks=["dcr"], generators=[{"name": "uniform"}, {"name": "holdout"}]
    )
    main(["run", str(path), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    warning = err.index("warning: thresholds this table may not certify")
    assert "WARN dcr.share_closer_to_train" in err[warning:]
    assert warning < err.index("uniform")  # before the other generator's task


def test_the_run_warns_when_gates_that_pass_alone_fail_together() -> None:
    from suite.runner import _warn_weak

    se = 0.01 / (norm.ppf(0.95) + norm.ppf(0.93))
    a = _null(0.0, se * norm.ppf(0.95))  # 93% alone: certifiable
    said: list[str] = []
    _warn_weak([a, dataclasses.replace(a, measurement="inference.max.excess")], "t", said.append)
    assert a.certifiable and len(said) == 1 and "passes every gate above about 86%" in said[0]
    said.clear()
    _warn_weak([a], "t", said.append)  # one gate at 93%: nothing to say
    assert said == []
