"""suite/encoding.py's category coding, the one the utility metrics and the density attacker share."""

from __future__ import annotations

import numpy as np

from suite.attacks._membership_features import DensityEncoding
from suite.encoding import fit_codes
from suite.testing import contract_table


def test_levels_beyond_the_kept_ones_share_the_other_code_and_missing_has_its_own() -> None:
    train, _ = contract_table()
    coding = fit_codes(train["payor_group"], False, max_levels=2)  # commercial, government (missing is not a level)
    assert coding.levels == ("commercial", "government")
    codes = coding.transform(train["payor_group"])
    assert set(codes[train["payor_group"].isin(["self pay", "charity care"]).to_numpy()]) == {2}  # other
    assert set(codes[train["payor_group"].isna().to_numpy()]) == {coding.missing_code}


def test_the_density_attacker_codes_categories_as_the_metrics_do() -> None:
    """Two rows that differ only in levels outside the kept ones are one point; a missing value is another."""
    train, md = contract_table()
    enc = DensityEncoding(numerical=md.continuous, categorical=["payor_group"], max_levels=2).fit(train)
    row = train[train["payor_group"].isna()].head(1)
    points = [enc.transform(row.assign(payor_group=v)) for v in ("self pay", "charity care", None, "commercial")]
    assert np.array_equal(points[0], points[1])
    assert not np.allclose(points[0], points[2]) and not np.allclose(points[0], points[3])
