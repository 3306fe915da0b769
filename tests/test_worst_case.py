"""Worst-case privacy on the shipped quickstart data: canaries that leak a few people, the local-copying
membership attacker that finds them, and reconstruction of secrets from quasi-identifiers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import suite.attacks  # noqa: F401  (registers the checks)
import suite.generators  # noqa: F401  (registers the generators)
from suite.attacks.membership import MembershipAttack
from suite.attacks.reconstruction import ReconstructionAttack, exact_hits, tuple_codes
from suite.dataset import prepare
from suite.metadata import Roles
from suite.neighbors import GowerEncoder, nearest
from suite.policy import PRESETS
from suite.registry import checks
from suite.registry import generators as registry
from suite.testing import check_check, context_for
from tests.conftest import DATA, METADATA, ROLES


@pytest.fixture(scope="module")
def full():
    """The whole quickstart table (10,879 training rows, 1,852 control people: the excess is read at 1%)."""
    return prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


def _by_name(measurements):
    return {m.name: m for m in measurements}


def _fitted(data, name: str, **params):
    return registry.get(name)(**params).fit(data.train, data.metadata)


# --------------------------------------------------------------------------- canaries


def test_outlier_copy_pastes_nudged_copies_of_the_most_isolated_rows(small_data):
    train, md = small_data.train, small_data.metadata
    gen = _fitted(small_data, "outlier_copy", base="marginals")
    out = gen.sample(len(train), seed=3)
    assert list(out.columns) == list(train.columns) and out.dtypes.equals(train.dtypes)
    assert len(out) == len(train)
    assert len(out.merge(train.drop_duplicates(), how="inner")) == 0  # no exact copy survives the nudge
    copied = int(round(0.02 * len(train)))
    isolated = train.iloc[gen.order_[:copied]]
    encoder = GowerEncoder(numerical=md.continuous, categorical=md.discrete).fit(train)
    dist = nearest(encoder.transform(isolated), encoder.transform(out))[0][:, 0]
    typical = nearest(encoder.transform(train), encoder.transform(train), exclude_self=True)[0][:, 0]
    assert (dist > 0).all() and (dist < 0.01).all(), dist.max()  # a near-copy of each, never the row itself
    assert gen.isolation_[gen.order_[:copied]].min() > np.quantile(typical, 0.9)  # the outliers, not anyone


def test_partial_copy_pastes_quasi_identifiers_and_secrets_of_a_tenth_of_training_rows(small_data):
    train = small_data.train
    cols = list(ROLES["quasi_identifiers"]) + list(ROLES["secrets"])
    out = _fitted(small_data, "partial_copy", base="marginals").sample(len(train), seed=1)
    assert out.dtypes.equals(train.dtypes)
    found = out[cols].merge(train[cols].drop_duplicates(), how="inner")
    clean = (
        _fitted(small_data, "marginals")
        .sample(len(train), seed=1)[cols]
        .merge(train[cols].drop_duplicates(), how="inner")
    )
    assert len(found) - len(clean) >= 0.09 * len(train), (len(found), len(clean))


def test_canaries_refuse_what_they_cannot_do(small_data):
    bare = replace(small_data.metadata, roles=Roles())
    with pytest.raises(ValueError, match="quasi-identifiers"):
        registry.get("partial_copy")(base="marginals").fit(small_data.train, bare)
    with pytest.raises(ValueError, match="fraction"):
        registry.get("outlier_copy")(fraction=0.0)
    with pytest.raises(ValueError, match="clean generator"):
        registry.get("outlier_copy")(base="partial_copy").fit(small_data.train, small_data.metadata)


# --------------------------------------------------------------------------- reconstruction


@pytest.fixture(scope="module")
def reconstruction(small_data):
    return {
        g: _by_name(ReconstructionAttack().evaluate(context_for(small_data, g, params=p)))
        for g, p in (("holdout", {}), ("marginals", {}), ("partial_copy", {"base": "marginals"}))
    }


def test_reconstruction_catches_the_partial_copy(reconstruction):
    worst = reconstruction["partial_copy"]["reconstruction.max.excess"]
    assert worst.ci[0] > 0.0, worst
    assert worst.details["attacker"] == "exact"
    # a tenth of the rows carry a training person's tuple and secret: the excess is about that large
    assert 0.03 < worst.value < 0.2, worst


@pytest.fixture(scope="module")
def full_reconstruction(full):
    """Reconstruction on the whole quickstart table: about 530 control people are unique by their tuple."""
    return {
        g: _by_name(ReconstructionAttack(attackers=("exact",)).evaluate(context_for(full, g, params=p)))
        for g, p in (("holdout", {}), ("partial_copy", {"base": "marginals"}))
    }


def test_rare_people_show_the_partial_copy_as_a_risk_past_the_default_gate(full_reconstruction):
    """Among people unique by their quasi-identifiers a pasted tuple is about them: the excess is about the
    tenth that was pasted and its favourable bound is past the default threshold (`risk shown`), which
    the excess over everyone (diluted by common tuples) is not. Real unseen rows stay under it."""
    got = full_reconstruction["partial_copy"]
    for name in ("reconstruction.joint.rare_excess", "reconstruction.max.rare_excess"):
        m = got[name]
        assert m.ci[0] > PRESETS["default"]["reconstruction.joint.rare_excess"].max, (name, m.value, m.ci)
        assert 0.05 < m.value < 0.15, (name, m.value)
        assert m.details["attack"]["n_targets"] > 100 and m.details["control"]["n_targets"] >= 100
        assert m.details["rarity"] >= 1
    # the joint score asks one row to carry every secret: chance rarely does that for control people
    joint = got["reconstruction.joint.rare_excess"].details
    single = got["reconstruction.max.rare_excess"].details
    assert joint["control"]["rate"] <= min(0.05, single["control"]["rate"]), (joint["control"], single["control"])
    assert joint["secrets"] == ROLES["secrets"]
    assert got["reconstruction.max.excess"].ci[0] < got["reconstruction.joint.rare_excess"].ci[0]
    assert got["reconstruction.joint.rare_excess"].details["rarity"] <= 5
    for name in ("reconstruction.joint.rare_excess", "reconstruction.max.rare_excess"):
        null = full_reconstruction["holdout"][name]
        assert null.ci[1] < PRESETS["default"]["reconstruction.joint.rare_excess"].max, (name, null.value, null.ci)
        # adjusted for the reference attacker: narrower than the unadjusted interval, and still holding 0
        plain, adjustment = null.details["unadjusted"], null.details["adjustment"]
        assert isinstance(adjustment, dict) and adjustment["clusters"] >= 30, adjustment
        assert null.ci[0] <= 0.0 <= null.ci[1] and null.ci[1] - null.ci[0] < plain["ci"][1] - plain["ci"][0]
        assert got[name].details["unadjusted"]["ci"][0] > 0.05  # shown either way


def test_on_a_table_too_small_to_single_anyone_out_everyone_is_read(reconstruction):
    # the 3,000-row slice has about 450 control people: fewer than 500 of any rarity, so everyone is taken
    joint = reconstruction["partial_copy"]["reconstruction.joint.rare_excess"].details
    assert (
        joint["control"]["n_targets"]
        == reconstruction["partial_copy"]["reconstruction.max.excess"].details["control"]["n_targets"]
    )


def test_rare_among_takes_unique_people_then_the_next_rarest_until_enough_control_people():
    from suite.attacks.reconstruction import rare_among

    train, control = np.array([0, 1, 2, 2, 3, 3, 3]), np.array([1, 4, 2, 3])
    r_t, r_c, r = rare_among(train, control, 1)  # code 4 is unique (control), 0 too (training)
    assert r == 1 and r_t.tolist() == [True, False, False, False, False, False, False]
    assert r_c.tolist() == [False, True, False, False]
    r_t, r_c, r = rare_among(train, control, 3)  # held by at most 3: codes 0, 1, 2, 4 (3 is held by 4)
    assert r == 3 and r_c.tolist() == [True, True, True, False] and r_t.sum() == 4
    assert rare_among(train, control, 3, max_rarity=2)[2] == 4  # nobody rare enough: everyone
    assert rare_among(train, control, 99)[2] == 4  # never enough control people: everyone


def test_joint_hits_ask_one_row_to_carry_every_secret():
    from suite.attacks.reconstruction import joint_hits

    syn = pd.DataFrame({"q": ["a", "a", "b"], "s": ["x", "y", None], "v": [1.0, 5.0, np.nan]})
    targets = pd.DataFrame({"q": ["a", "b", "c", "a"], "s": ["x", None, "x", "y"], "v": [5.0, np.nan, 1.0, 1.2]})
    # ("a", x, 5): x is in row 0 and 5 in row 1, never in one row; ("b", None, nan): missing matches missing;
    # ("c", ...): no such tuple; ("a", y, 1.2): row 1 has y but 5, row 0 has 1.0 but x
    assert joint_hits(targets, syn, ["q"], {"s": None, "v": 0.5}).tolist() == [False, True, False, False]
    assert joint_hits(targets, syn, ["q"], {"s": None, "v": 0.5}, max_pairs=1).tolist() == [False, True, False, False]
    assert joint_hits(targets, syn, ["q"], {"s": None}).tolist() == [True, True, False, True]
    assert joint_hits(targets, syn, ["q"], {"v": 4.5}).tolist() == [True, True, False, True]


@pytest.mark.parametrize("generator", ["holdout", "marginals"])
def test_reconstruction_shows_no_excess_for_releases_that_never_saw_the_people(reconstruction, generator):
    for name, m in reconstruction[generator].items():
        assert m.ci[0] <= 0.0, (name, m.value, m.ci)
        assert abs(m.value) < 0.05, (name, m.value)


def test_the_model_attacker_guesses_values_the_release_holds(reconstruction):
    # ct_result is 45 for most people (an interquartile range of 0: only an exact guess is right); a
    # regression average is no such value, the snapped guess is, so the model reconstructs it for most
    ct = reconstruction["marginals"]["reconstruction.ct_result.ml_excess"].details
    assert ct["tolerance"] == 0.0 and ct["control"]["rate"] > 0.5, ct["control"]


def test_exact_hits_match_tuples_exactly_and_numbers_within_the_tolerance():
    syn = pd.DataFrame({"a": ["x", "x", "y"], "b": [1.0, 1.0, 2.0], "s": [10.0, np.nan, 20.0]})
    targets = pd.DataFrame(
        {"a": ["x", "x", "y", "y", "x"], "b": [1.0, 1.0, 2.0, 2.5, 1.0], "s": [10.4, 11, 20, 20, np.nan]}
    )
    t_codes, s_codes = tuple_codes(targets, syn, columns=["a", "b"])
    hits = exact_hits(t_codes, targets["s"].to_numpy(), s_codes, syn["s"].to_numpy(), 0.5)
    assert hits.tolist() == [True, False, True, False, True]  # (y, 2.5) is no tuple of the release
    labels = exact_hits(
        t_codes,
        np.array(["u", "v", "u", "u", "v"], dtype=object),
        s_codes,
        np.array(["u", "v", "w"], dtype=object),
        None,
    )
    assert labels.tolist() == [True, True, False, False, True]


def test_reconstruction_keeps_the_check_contract_and_says_what_it_needs(small_data):
    ctx = context_for(small_data, "partial_copy", params={"base": "marginals"})
    check_check(checks.get("reconstruction"), ctx)
    bare = replace(ctx, metadata=replace(ctx.metadata, roles=Roles()))
    with pytest.raises(ValueError, match="quasi_identifiers"):
        ReconstructionAttack().evaluate(bare)


# --------------------------------------------------------------------------- local copying


@pytest.fixture(scope="module")
def local(full):
    """The local attackers (over everyone, and among the most isolated people) on the whole quickstart table
    against clean and leaking releases (`marginals` as the clean part, for speed)."""
    cases = {
        "holdout": ("holdout", {}),
        "clean": ("marginals", {}),
        "outliers": ("outlier_copy", {"base": "marginals"}),
        "random": ("outlier_copy", {"base": "marginals", "pick": "random"}),
    }
    return {
        key: _by_name(MembershipAttack(attackers=("local", "isolated")).evaluate(context_for(full, g, params=p)))
        for key, (g, p) in cases.items()
    }


@pytest.mark.parametrize("case", ["outliers", "random"])
def test_local_attacker_catches_near_copies_of_isolated_and_of_random_people(local, case):
    m = local[case]["membership.local.excess_at_fpr"]
    assert m.details["fpr_requested"] == 0.01 and abs(m.details["fpr"] - 0.01) < 0.001  # the k-th highest's rate
    assert m.ci[0] > 0.0, m
    exposed = m.details["exposed"]
    # 2% of 10,879 rows copied (218 rows of about 7,500 member people): most are found beyond chance
    assert exposed["exposed_beyond_chance"] > 100, exposed


@pytest.mark.parametrize("case", ["holdout", "clean"])
def test_local_attacker_shows_no_excess_for_releases_without_copies(local, case):
    m = local[case]["membership.local.excess_at_fpr"]
    assert m.ci[0] <= 0.0, m
    assert local[case]["membership.local.auc"].value < 0.52


def test_isolated_attacker_shows_near_copies_of_the_most_isolated_people_as_a_risk(local):
    """2% of members near-copied, chosen as the most isolated training rows: a few percent of everyone, but a large
    share of the most isolated people, so even the favourable bound is past the default threshold."""
    gate = PRESETS["default"]["membership.isolated.excess_at_fpr"].max
    m = local["outliers"]["membership.isolated.excess_at_fpr"]
    assert m.ci[0] > gate, m  # observed: 0.17 [0.13, 0.20]
    assert m.details["exposed"]["exposed_beyond_chance"] > 100, m.details["exposed"]
    everyone = local["outliers"]["membership.local.excess_at_fpr"]
    assert m.value > 5 * everyone.value  # the same copies, diluted among everyone
    random = local["random"]["membership.isolated.excess_at_fpr"]
    assert random.value < m.value / 2  # near-copies of random people are mostly not isolated: the local gate's case


@pytest.mark.parametrize("case", ["holdout", "clean"])
def test_isolated_attacker_certifies_releases_without_copies(local, case):
    m = local[case]["membership.isolated.excess_at_fpr"]
    assert m.ci[0] <= 0.0 <= m.ci[1], m
    assert m.ci[1] < PRESETS["default"]["membership.isolated.excess_at_fpr"].max, m  # observed: holdout [-0.017, 0.018]


def test_the_isolated_group_is_chosen_alike_for_members_and_non_members(local):
    """The group is the tenth of all candidates farthest from the control, measured the same way for members and
    non-members: under no leakage each side is about a tenth of itself, and the rate is read at 1% of the group's
    non-members (their k-th highest score)."""
    group = local["holdout"]["membership.isolated.excess_at_fpr"].details
    iso = group["isolated"]
    assert iso["share"] == 0.1 and iso["non_members"] >= 100
    assert iso["members"] + iso["non_members"] >= 0.1 * (iso["of_members"] + iso["of_non_members"])
    for side in ("members", "non_members"):
        assert 0.06 < iso[side] / iso[f"of_{side}"] < 0.14, iso
    assert group["members"] == iso["members"] and group["non_members"] == iso["non_members"]
    assert group["threshold_rank"] == max(1, int(0.01 * (iso["non_members"] + 1)))


def test_exposed_people_are_described_by_columns_never_by_rows(local, full):
    exposed = local["outliers"]["membership.local.excess_at_fpr"].details["exposed"]
    columns = exposed["columns"]
    assert set(columns) <= set(full.train.columns)
    real = pd.concat([full.train, full.control], ignore_index=True)
    for col, entry in columns.items():
        assert set(entry) <= {"statistic", "value", "over_represented", "exposed_median_higher"}
        if "over_represented" in entry:  # a level shown is held by at least min_count real rows
            assert (real[col].astype(str) == entry["over_represented"]).sum() >= exposed["min_count"]
    numbers = [v for e in columns.values() for v in e.values() if isinstance(v, float)]
    assert all(0.0 <= v <= 1.0 for v in numbers)  # statistics only: no real value is quoted


@pytest.mark.slow
@pytest.mark.parametrize("pick", ["isolated", "random"])
def test_local_attacker_blocks_a_gaussian_copula_with_near_copies_of_two_percent(full, pick):
    """The issue's case: the quickstart's Gaussian copula with near-copies of 2% of its training rows."""
    ctx = context_for(full, "outlier_copy", params={"pick": pick})  # base: sdv.gaussian_copula
    m = _by_name(MembershipAttack(attackers=("local",)).evaluate(ctx))["membership.local.excess_at_fpr"]
    assert m.ci[0] > 0.01, m  # a leak of more than 1% of members shown (the clean copula: 0.003 at its lower end)
    assert m.ci[1] > PRESETS["default"]["membership.local.excess_at_fpr"].max, m  # the default preset blocks it


@pytest.mark.slow
def test_isolated_attacker_shows_a_gaussian_copula_with_near_copies_of_its_most_isolated_rows_as_a_risk(full):
    """The issue's case, judged among the most isolated people: `risk shown`, where the gate over everyone is
    near its limit (2% copied against a threshold of 1.5%); the clean copula is certified."""
    gate = PRESETS["default"]["membership.isolated.excess_at_fpr"].max
    leak, clean = (
        _by_name(MembershipAttack(attackers=("isolated",)).evaluate(context_for(full, g)))[
            "membership.isolated.excess_at_fpr"
        ]
        for g in ("outlier_copy", "sdv.gaussian_copula")
    )
    assert leak.ci[0] > gate, leak
    assert clean.ci[1] < gate, clean


# --------------------------------------------------------------------------- longitudinal tables


@pytest.fixture(scope="module")
def pbc():
    """The shipped PBC follow-up visits: 312 patients, one history record each (156 in train)."""
    from tests.test_histories import PBC, PBC_METADATA

    return prepare(PBC, metadata_path=PBC_METADATA, roles=Roles(), holdout=0.5, seed=0)


def test_canaries_copy_whole_histories_on_a_longitudinal_table(pbc):
    from suite.histories import COUNT

    train = pbc.train
    gen = _fitted(pbc, "outlier_copy", fraction=0.1, base="marginals")
    out = gen.sample(len(train), seed=2)
    copied = train.iloc[gen.order_[: int(round(0.1 * len(train)))]].reset_index(drop=True)
    assert len(copied) == 16 and not len(out.merge(train, how="inner"))  # no history survives unchanged
    shape = [COUNT, "day.first", "day.span"]
    for _, patient in copied.iterrows():
        same = (out.astype(object) == patient.astype(object)) | (out.isna() & patient.isna().to_numpy())
        best = same.sum(axis=1).idxmax()
        # one synthetic history is this patient's whole history with one measured value moved
        assert same.loc[best].sum() == len(train.columns) - 1, patient
        assert same.loc[best, shape].all()
    # partial copies: the age, sex, status and last stage of a tenth of the training patients
    cols = ["age", "sex", "status", "stage.last"]
    pasted = _fitted(pbc, "partial_copy", base="marginals").sample(len(train), seed=1)
    assert len(pasted[cols].merge(train[cols], how="inner")) >= round(0.1 * len(train))


def test_the_model_attacker_fits_when_a_secret_class_is_held_by_one_synthetic_row():
    """Above 10,000 rows the boosted model stops early on a stratified split, which needs two rows of each class:
    a class held by one synthetic row is left out of the fit instead of failing the check (it blocked a null
    release of adult, split seed 19)."""
    from suite.attacks.reconstruction import model_guesses

    rng = np.random.default_rng(0)
    n = 12_000
    synthetic = pd.DataFrame({"age": rng.integers(18, 90, n), "sex": rng.choice(["f", "m"], n)})
    synthetic["job"] = np.where(synthetic["age"] > 50, "retired", "working")
    synthetic.loc[0, "job"] = "armed forces"  # one row
    targets = [synthetic.iloc[:50], synthetic.iloc[50:80]]
    guesses = model_guesses(synthetic, targets, ["age", "sex"], "job", False, 0)
    assert [len(g) for g in guesses] == [50, 30]
    assert set(np.concatenate(guesses)) <= {"retired", "working"}
    assert (guesses[0] == np.where(targets[0]["age"] > 50, "retired", "working")).mean() > 0.9
    lone = pd.DataFrame({"age": [30, 60, 70], "sex": ["f", "m", "f"], "job": ["a", "b", "b"]})
    assert list(model_guesses(lone, [lone], ["age", "sex"], "job", False, 0)[0]) == ["b", "b", "b"]
