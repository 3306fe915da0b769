"""suite/stats.py: the one place the suite draws bootstrap resamples."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from suite.stats import bootstrap_weights, cluster_bootstrap_ci, cluster_codes
from tests.conftest import DATA


def _rows() -> pd.DataFrame:
    """2,000 real test rows, with the patient each belongs to."""
    return pd.read_parquet(DATA, columns=["subject_id", "age", "col_rec_tat"]).head(2000)


def test_a_resample_draws_whole_patients_as_many_as_each_sample_holds() -> None:
    rows = _rows()
    people = cluster_codes(rows["subject_id"], len(rows))
    other = np.arange(300)  # a second sample, rows as units
    seen = 0
    for start, (w, v) in bootstrap_weights(people, other, rng=np.random.default_rng(0), n_boot=50, batch=16):
        assert start == seen and w.shape == (len(v), len(rows)) and v.shape[1] == 300
        seen += len(w)
        draws = pd.DataFrame(w).T.groupby(people).first()  # one weight per patient
        assert (pd.DataFrame(w).T.groupby(people).nunique() == 1).all().all()  # a patient's rows count alike
        assert (draws.sum() == people.max() + 1).all() and (v.sum(axis=1) == 300).all()
    assert seen == 50


def test_the_interval_of_a_mean_matches_the_normal_one_on_real_data() -> None:
    """Rows as units: the percentile interval of the mean age is the textbook one (within bootstrap noise)."""
    age = _rows()["age"].dropna().to_numpy()
    low, high = cluster_bootstrap_ci(
        lambda w: (w * age).sum(axis=1) / w.sum(axis=1), cluster_codes(None, len(age)), rng=np.random.default_rng(1)
    )
    half = stats.norm.ppf(0.975) * age.std(ddof=1) / np.sqrt(len(age))
    assert abs(low - (age.mean() - half)) < 0.15 * half and abs(high - (age.mean() + half)) < 0.15 * half
    assert (low, high) == cluster_bootstrap_ci(  # the seed decides the interval
        lambda w: (w * age).sum(axis=1) / w.sum(axis=1), cluster_codes(None, len(age)), rng=np.random.default_rng(1)
    )


def _attack_on_split(frame: pd.DataFrame, seed: int) -> tuple[tuple, tuple, tuple, tuple]:
    """One random split of real people into train, control and reference; the release is the reference rows
    drawn again (no one in train or control is in it: a release without leakage). The attack guesses `death`
    from the nearest release row on age, sex and sample year; the reference attacker from the reference rows."""
    from suite.attacks.inference import correct_guesses, nearest_secrets, tied_share, tuple_codes
    from suite.neighbors import GowerEncoder

    rng = np.random.default_rng(seed)
    part = rng.choice(3, size=len(frame), p=[0.7, 0.15, 0.15])
    train, control, reference = (frame[part == k].reset_index(drop=True) for k in range(3))
    release = reference.iloc[rng.integers(0, len(reference), len(train))].reset_index(drop=True)
    aux = ["age", "sex", "sample.yr"]
    enc = GowerEncoder(numerical=["age", "sample.yr"], categorical=["sex"]).fit(train, control)
    y = tuple(
        correct_guesses(nearest_secrets(t, release, enc, aux, "death"), t["death"].to_numpy(), None).astype(float)
        for t in (train, control)
    )
    x = tuple(tied_share(t, reference, enc, aux, "death", None) for t in (train, control))
    return y, x, tuple(tuple_codes(train, control, columns=aux)), (len(train), len(control))


def test_the_adjusted_excess_covers_no_leak_and_is_narrower_than_newcombe_over_real_splits() -> None:
    """flchain, 40 random splits, a release without leakage: the adjusted interval holds 0 as often as it
    should, its standard error matches the spread of its values over the splits, and it is narrower than
    Newcombe's interval of the unadjusted difference, which it replaces."""
    from suite.stats import adjusted_difference, newcombe_difference_ci

    frame = pd.read_parquet(DATA.parent / "flchain.parquet").sample(4000, random_state=0).reset_index(drop=True)
    values, ses, covered, ratio = [], [], [], []
    for seed in range(40):
        y, x, codes, (n_t, n_c) = _attack_on_split(frame, seed)
        adj = adjusted_difference(y, x, codes, confidence=0.9)
        assert adj is not None
        low, high = newcombe_difference_ci(y[0].sum(), n_t, y[1].sum(), n_c, 0.9)
        values.append(adj.value)
        ses.append(adj.se)
        covered.append(adj.ci[0] <= 0.0 <= adj.ci[1])
        ratio.append((adj.ci[1] - adj.ci[0]) / (high - low))
    assert np.mean(covered) >= 0.8  # nominal 0.9; 40 draws
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))  # no bias
    assert 0.7 < np.std(values, ddof=1) / np.mean(ses) < 1.4
    assert np.mean(ratio) < 0.85


def test_the_adjustment_steps_aside_where_it_cannot_help_and_never_claims_no_spread() -> None:
    from suite.stats import MIN_ADJUSTED, adjusted_difference

    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(float), (rng.random(100) < 0.3).astype(float)
    ones = np.ones(200), np.ones(100)
    people = np.arange(200), np.arange(200, 300)
    assert adjusted_difference(y, ones, people) is None  # a covariate without spread carries nothing
    assert adjusted_difference(y, (np.full(200, np.nan), np.zeros(100)), people) is None  # nor one not measured
    few = (y[0][: MIN_ADJUSTED - 1], y[1]), (y[0][: MIN_ADJUSTED - 1], y[1]), (people[0][: MIN_ADJUSTED - 1], people[1])
    assert adjusted_difference(*few) is None
    one_tuple = np.zeros(200), np.zeros(100)  # everyone shares one quasi-identifier tuple: one cluster
    assert adjusted_difference(y, y, one_tuple) is None
    # the covariate explains the outcome exactly: no residual spread, yet the interval keeps Wilson's floor
    adj = adjusted_difference(y, y, people, confidence=0.9)
    assert adj is not None and adj.value == 0.0 and abs(adj.theta - 1.0) < 1e-12
    z = stats.norm.ppf(0.95)
    assert np.isclose(adj.ci[1], z * z * np.sqrt(1 / 200**2 + 1 / 100**2))
    # a covariate unrelated to the outcome leaves the difference and the usual normal interval
    noise = rng.random(200), rng.random(100)
    adj = adjusted_difference(y, noise, people, confidence=0.9)
    assert adj is not None and abs(adj.value - (y[0].mean() - y[1].mean())) < 0.02
    wald = z * np.sqrt(y[0].var(ddof=1) / 200 + y[1].var(ddof=1) / 100)
    assert abs((adj.ci[1] - adj.ci[0]) / 2 - wald) < 0.1 * wald
