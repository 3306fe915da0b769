"""Membership inference on the shipped real data: copies are exposed, unseen real data is not."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import attacks.membership  # noqa: F401  (registers the check until attacks/__init__ imports it)
from attacks._membership_features import ROC_GRID, roc_summary
from attacks.membership import MembershipAttack, select_candidates, unit_max
from suite.dataset import prepare
from suite.metadata import Roles
from suite.registry import checks
from suite.testing import check_check, context_for
from suite.types import Context
from tests.conftest import DATA, METADATA, ROLES


def _prepare(path):
    return prepare(path, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


@pytest.fixture(scope="module")
def small(small_csv):
    return _prepare(small_csv)


@pytest.fixture(scope="module")
def full():
    return _prepare(DATA)


def _context(data, generator: str, *, seed: int = 0, entities: bool = True, reference: bool = True) -> Context:
    ctx = context_for(data, generator, seed=seed)
    if not entities:
        ctx = replace(ctx, train_entities=None, holdout_entities=None, reference_entities=None)
    if not reference:
        ctx = replace(ctx, reference=None, reference_entities=None)
    return ctx


def _by_name(measurements):
    return {m.name: m for m in measurements}


@pytest.fixture(scope="module")
def copies(small):
    """Both default attackers against the two copying generators, on the 3,000-row slice."""
    return {g: _by_name(MembershipAttack().evaluate(_context(small, g))) for g in ("identity", "noisy_copy")}


@pytest.fixture(scope="module")
def unseen(full):
    """Both default attackers against generators that never saw the training rows, on the full table
    (the 3,000-row slice has only 360 control patients: too few to pin 0.5 down to +-0.05)."""
    return {g: _by_name(MembershipAttack().evaluate(_context(full, g))) for g in ("holdout", "uniform")}


# --------------------------------------------------------------------------- ground truths


def test_distance_attacker_exposes_identity_and_the_near_copy(copies):
    identity = copies["identity"]
    assert identity["membership.distance.auc"].value > 0.9
    assert identity["membership.distance.tpr_at_fpr_1pct"].value > 0.9
    noisy = copies["noisy_copy"]["membership.distance.auc"]
    assert noisy.ci[0] > 0.6, noisy


@pytest.mark.parametrize("generator", ["holdout", "uniform"])
def test_distance_attacker_sits_at_chance_on_unseen_real_data_and_noise(unseen, generator):
    m = unseen[generator]["membership.distance.auc"]
    assert abs(m.value - 0.5) <= 0.05
    assert m.ci[0] <= 0.5 <= m.ci[1] or (0.45 <= m.ci[0] and m.ci[1] <= 0.55), m
    low = unseen[generator]["membership.distance.tpr_at_fpr_10pct"]
    assert low.ci[0] <= 0.1 + 0.05 and low.value < 0.2


def test_density_attacker_exposes_identity_and_not_the_holdout(copies, unseen):
    identity = copies["identity"]["membership.density.auc"]
    assert identity.ci[0] > 0.7, identity
    holdout = unseen["holdout"]["membership.density.auc"]
    assert abs(holdout.value - 0.5) <= 0.05 and holdout.ci[0] <= 0.5 <= holdout.ci[1], holdout
    assert unseen["holdout"]["membership.density.auc"].details["reference"].startswith("the reference half")


def test_intervals_contain_the_value_and_names_are_declared(copies, unseen):
    for per_generator in (*copies.values(), *unseen.values()):
        assert set(per_generator) == {
            f"membership.{a}.{q}"
            for a in ("distance", "density")
            for q in ("auc", "tpr_at_fpr_10pct", "tpr_at_fpr_1pct")
        }
        for m in per_generator.values():
            assert m.ci[0] <= m.value <= m.ci[1], m
            assert m.goal == "minimize" and m.baseline in (0.5, 0.1, 0.01)


def test_details_hold_a_small_roc_curve_and_counts_never_rows(copies):
    m = copies["identity"]["membership.distance.auc"]
    roc = m.details["roc"]
    assert len(roc["fpr"]) == len(roc["tpr"]) <= 101 and len(ROC_GRID) <= 101
    assert np.all(np.diff(roc["fpr"]) > 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0
    d = m.details
    assert d["level"] == "entity" and d["members"] == d["non_members"] and d["entities"] == d["members"] * 2
    text = json.dumps(d)  # plain numbers and words only
    assert "female" not in text and "clinical lab" not in text


# --------------------------------------------------------------------------- entities and balance


def test_entity_candidates_are_balanced_whole_people_on_one_side_only(small):
    rng = np.random.default_rng(0)
    c = select_candidates(small.train, small.control, rng, small.train_entities, small.control_entities)
    n_members = small.control_entities.nunique()  # the control is the smaller side: every patient is used
    assert c.entity_level and c.labels.sum() == n_members and len(c.labels) == 2 * n_members
    assert len(c.rows) == len(c.unit) and set(c.unit) == set(range(len(c.labels)))
    # every candidate is one entity, with all of its rows, on one side only
    member_ids = set(small.train_entities)
    rows_per_unit = np.bincount(c.unit)
    assert (rows_per_unit >= 1).all()
    ids = pd.concat([small.train_entities, small.control_entities], ignore_index=True)
    counts = ids.value_counts()
    assert len(c.entities) == len(set(c.entities))
    chosen = pd.factorize(ids, use_na_sentinel=False)[1][c.entities]
    assert (rows_per_unit == counts.loc[chosen].to_numpy()).all()
    sides = {e: bool(label) for e, label in zip(chosen, c.labels)}
    assert all((e in member_ids) == is_member for e, is_member in sides.items())


def test_entity_with_rows_on_both_sides_counts_as_a_member_only():
    train = pd.DataFrame({"x": np.arange(6.0)})
    control = pd.DataFrame({"x": np.arange(4.0) + 10})
    t_ent = pd.Series(["a", "a", "b", "c", "d", "e"])
    c_ent = pd.Series(["b", "f", "g", "g"])  # "b" also trained on: not a non-member
    c = select_candidates(train, control, np.random.default_rng(1), t_ent, c_ent)
    assert c.overlap_dropped == 1
    assert c.labels.tolist() == [1, 1, 0, 0] and len(c.rows) == len(c.unit)
    non_member_rows = c.rows.loc[c.unit >= 2, "x"].tolist()
    assert sorted(non_member_rows) == [11.0, 12.0, 13.0]  # "f" and both rows of "g"


def test_row_level_without_entities(small):
    c = select_candidates(small.train, small.control, np.random.default_rng(0))
    assert not c.entity_level and len(c.labels) == 2 * len(small.control) == len(c.rows)
    assert "entities" not in c.details()


def test_entity_score_is_its_most_exposed_record():
    scores = np.array([-0.3, -0.1, -0.5, -0.2])
    assert unit_max(scores, np.array([0, 0, 1, 1]), 2).tolist() == [-0.1, -0.2]


def test_entity_level_run_reports_entities(small):
    ms = _by_name(MembershipAttack(attackers=("distance",)).evaluate(_context(small, "marginals")))
    d = ms["membership.distance.auc"].details
    assert d["entities"] == d["members"] + d["non_members"] == 2 * small.control_entities.nunique()
    row_level = _by_name(
        MembershipAttack(attackers=("distance",)).evaluate(_context(small, "marginals", entities=False))
    )
    assert row_level["membership.distance.auc"].details["members"] == len(small.control)


# --------------------------------------------------------------------------- ROC statistics


def test_roc_summary_matches_sklearn_and_reads_tpr_at_low_fpr():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(300), np.zeros(300)]
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties
    s = roc_summary(scores, labels, alphas=(0.1, 0.01), rng=rng, confidence=0.95, n_boot=200)
    assert math.isclose(s["point"]["auc"], roc_auc_score(labels, scores), abs_tol=1e-12)
    low, high = s["ci"]["auc"]
    assert low < s["point"]["auc"] < high and high - low < 0.12
    perfect = roc_summary(labels, labels, alphas=(0.01,), rng=rng, confidence=0.95, n_boot=50)
    assert perfect["point"] == {"auc": 1.0, 0.01: 1.0} and perfect["ci"]["auc"] == (1.0, 1.0)
    tied = roc_summary(np.zeros(600), labels, alphas=(0.1, 0.01), rng=rng, confidence=0.95, n_boot=50)
    assert tied["point"]["auc"] == 0.5 and math.isclose(tied["point"][0.01], 0.01)  # a coin flip's TPR


# --------------------------------------------------------------------------- contract


def test_check_contract_and_reproducibility(small):
    ctx = _context(small, "marginals")
    measurements = check_check(MembershipAttack, ctx)
    assert checks.get("membership") is MembershipAttack
    again = MembershipAttack().evaluate(ctx)
    assert [(m.name, m.value, m.ci, dict(m.details, seconds=0)) for m in measurements] == [
        (m.name, m.value, m.ci, dict(m.details, seconds=0)) for m in again
    ]
    other = MembershipAttack().evaluate(_context(small, "marginals", seed=1))
    assert [m.value for m in other] != [m.value for m in measurements], "the seed must matter"


def test_density_falls_back_to_half_the_control_without_reference(small):
    ctx = _context(small, "identity", reference=False)
    m = _by_name(MembershipAttack(attackers=("density",)).evaluate(ctx))["membership.density.auc"]
    assert "half of the control" in m.details["reference"]
    assert m.details["non_members"] <= small.control_entities.nunique() // 2 + 1
    assert m.value > 0.7


def test_unknown_attacker_and_missing_refit_are_clear_errors(small):
    ctx = _context(small, "marginals")
    with pytest.raises(ValueError, match="unknown attacker"):
        MembershipAttack(attackers=("distanse",)).evaluate(ctx)
    no_refit = Context(ctx.train, ctx.holdout, ctx.synthetic, ctx.metadata, seed=0)
    with pytest.raises(ValueError, match="fit_generator"):
        MembershipAttack(attackers=("shadow",)).evaluate(no_refit)


# --------------------------------------------------------------------------- shadow models

_TINY = {"attackers": ("shadow",), "shadow_targets": 2, "shadow_sets": 4, "shadow_size": 300}


def test_shadow_attack_announces_its_fits_and_stays_near_chance_on_unseen_rows(small, capsys):
    # `holdout` never sees the training rows, in the release or in any shadow refit: a true negative.
    # (Independent marginals are not one on 300-row shadow sets: one isolated record moves the
    # quantile bins of a sparse column such as ct_result, and this attack sees it.)
    (m,) = MembershipAttack(**_TINY).evaluate(_context(small, "holdout"))
    err = capsys.readouterr().err
    assert "membership.shadow: 16 generator fits (2 targets x 2 x 4 sets)" in err
    assert m.name == "membership.shadow.success" and m.baseline == 0.5
    assert m.ci[0] <= m.value <= m.ci[1] and m.ci[0] < 0.5  # not shown to beat chance
    assert len(m.details["targets"]) == 2 and m.details["generator_fits"] == 16
    assert set(m.details["targets"][0]) == {
        "target_index",
        "held_out_accuracy",
        "p_in_on_release",
        "release_chunks_called_in",
    }


def test_shadow_attack_succeeds_against_identity(small):
    (m,) = MembershipAttack(**_TINY).evaluate(_context(small, "identity"))
    assert m.value > 0.9 and m.ci[0] > 0.5, m


def test_shadow_attack_cannot_reach_the_holdout_baseline(small):
    """`holdout` is fitted on reference rows, never on train: its output cannot depend on the target."""
    (m,) = MembershipAttack(**_TINY).evaluate(_context(small, "holdout"))
    assert m.ci[0] < 0.5 < m.ci[1]
