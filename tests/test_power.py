"""Power planning: the null release (the holdout's reference half) says which gates a table can certify."""

from __future__ import annotations

import pandas as pd
import pytest

from suite.cli import main
from suite.power import holdout_factor
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
