"""Power planning: the null release (the holdout's reference half) says which gates a table can certify."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from suite.cli import main
from suite.policy import Threshold, holdout_factor, judge
from suite.power import MAX_HOLDOUT, TARGET_PASS_RATE, Power, _power, refine
from suite.types import Goal, Measurement
from tests.conftest import write_scenario


def test_holdout_factor_is_the_squared_ratio_of_half_width_to_margin() -> None:
    # estimate 0.55, upper bound 0.63 (half-width 0.08), threshold 0.6 (margin 0.05): 2.56 x the control
    assert holdout_factor(0.55, 0.63, 0.6) == pytest.approx((0.08 / 0.05) ** 2)
    # a lower bound for a `min` gate works the same way round
    assert holdout_factor(0.8, 0.7, 0.75) == pytest.approx(4.0)
    # an estimate already past the threshold cannot be certified by any holdout
    assert holdout_factor(0.65, 0.7, 0.6) is None


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
    assert stuck.holdout_needed is None and f"not certifiable at any holdout up to {MAX_HOLDOUT:g}" in stuck.note
