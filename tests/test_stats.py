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
