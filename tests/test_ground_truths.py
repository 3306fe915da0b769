"""The calibration generators get the verdicts ARCHITECTURE.md promises, on the shipped data."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.conftest import IDENTIFIERS, METADATA, ROOT
from tests.regenerate_scorecards import load, structure


def _generator(scorecard, name):
    return next(g for g in scorecard.generators if g.name == name)


def _measurement(scorecard, generator, name):
    return next(m for m in _generator(scorecard, generator).measurements if m.name == name)


def test_quickstart_exits_zero_with_every_verdict_as_expected(quickstart_run):
    code, _, scorecard = quickstart_run
    assert code == 0
    assert scorecard.summary.all_as_expected
    verdicts = {g.name: g.verdict for g in scorecard.generators}
    assert verdicts == {
        "marginals": "block",
        "sdv.gaussian_copula": "release",
        "holdout": "release",
        "identity": "block",
        "noisy_copy": "block",
        "uniform": "block",
    }


@pytest.mark.parametrize("name", ["collisions.excess", "dcr.share_closer_to_train"])
def test_identity_is_blocked_by_each_privacy_check(quickstart_run, name):
    m = _measurement(quickstart_run[2], "identity", name)
    assert m.status == "risk shown", m.reason  # even the lower bound is past the threshold
    assert m.value > 0.9  # nearly every synthetic row is a training row


def test_near_copy_escapes_collisions_but_not_dcr(quickstart_run):
    scorecard = quickstart_run[2]
    assert _measurement(scorecard, "noisy_copy", "collisions.excess").status == "pass"
    dcr = _measurement(scorecard, "noisy_copy", "dcr.share_closer_to_train")
    assert dcr.status == "risk shown" and dcr.ci[0] > 0.65
    assert _generator(scorecard, "noisy_copy").reasons[0] == dcr.reason


def test_identity_collisions_are_whole_copies(quickstart_run):
    scorecard = quickstart_run[2]
    assert _measurement(scorecard, "identity", "collisions.rate").value == 1.0
    assert _measurement(scorecard, "identity", "dcr.median_distance_to_train").value == 0.0


@pytest.mark.parametrize("generator", ["uniform", "holdout", "marginals", "sdv.gaussian_copula"])
@pytest.mark.parametrize("name", ["collisions.excess", "dcr.share_closer_to_train"])
def test_non_copying_generators_pass_privacy_checks(quickstart_run, generator, name):
    m = _measurement(quickstart_run[2], generator, name)
    assert m.status == "pass", m.reason


def test_holdout_sits_at_the_no_leakage_level(quickstart_run):
    m = _measurement(quickstart_run[2], "holdout", "dcr.share_closer_to_train")
    assert m.ci[0] <= 0.5 + 0.02 and m.ci[1] >= 0.5 - 0.02
    assert abs(m.value - 0.5) < 0.03


def test_uniform_fails_fidelity_and_holdout_scores_highest(quickstart_run):
    scorecard = quickstart_run[2]
    uniform = _measurement(scorecard, "uniform", "fidelity.quality")
    assert uniform.status == "risk shown"  # no interval: a failed value is a risk shown
    copies = {"identity", "noisy_copy"}
    scores = {
        g.name: _measurement(scorecard, g.name, "fidelity.quality").value
        for g in scorecard.generators
        if g.name not in copies
    }
    assert max(scores, key=scores.get) == "holdout"
    assert min(scores, key=scores.get) == "uniform"
    assert _generator(scorecard, "uniform").reasons[0] == uniform.reason


def test_stored_quickstart_scorecard_matches_a_fresh_run(quickstart_run):
    """The report tests render tests/data/scorecards/quickstart.json: a change in the checks, the generators
    or the verdicts must show up here (regenerate with `python -m tests.regenerate_scorecards quickstart`)."""
    assert structure(load("quickstart")) == structure(quickstart_run[2])


def test_run_folder_holds_scorecard_report_and_metadata(quickstart_run):
    from suite.reports import render_junit

    _, run_dir, scorecard = quickstart_run
    names = sorted(p.name for p in run_dir.iterdir())
    # no cache: a finished run drops its fitted models and samples (identity's are the training rows)
    assert names == ["junit.xml", "metadata.json", "release", "report.html", "report.md", "run.json", "scorecard.json"]
    # the reports are renderings of the scorecard: the report tests render the stored one instead of a run
    assert (run_dir / "junit.xml").read_text(encoding="utf-8") == render_junit(scorecard)
    # the judged table of each released, non-calibration generator, and nothing else
    released = {g.name for g in scorecard.generators if g.verdict == "release" and g.name != "holdout"}
    assert {t.generator for t in scorecard.release} == released
    assert sorted(p.name for p in (run_dir / "release").iterdir()) == sorted(t.file[8:] for t in scorecard.release)
    assert scorecard.schema_version == "1.4"
    assert scorecard.metadata["dropped_columns"] == IDENTIFIERS
    for g in scorecard.generators:
        for m in g.measurements:
            assert m.goal in ("minimize", "maximize")
            assert (m.passed is None) == (m.status == "ungated")


def test_no_identifier_value_appears_in_any_output(quickstart_run, covid):
    _, run_dir, _ = quickstart_run
    text = "\n".join(p.read_text() for p in run_dir.iterdir() if p.is_file())
    text += "\n".join(pd.read_parquet(p).to_csv() for p in (run_dir / "release").glob("*.parquet"))
    names = set(covid["fake_last_name"].dropna()) | {n for n in covid["fake_first_name"].dropna() if len(n) >= 5}
    words = set(re.findall(r"[^\W\d_]+", text))  # whole words: "number" does not leak the name "umber"
    # some fake names are English words ("small"): those the suite's own code and templates use are prose
    sources = [*ROOT.glob("*/*.py"), *ROOT.glob("reports/templates/*")]
    prose = set(re.findall(r"[^\W\d_]+", "\n".join(p.read_text() for p in sources)))
    leaked = sorted((names & words) - prose)
    assert not leaked, f"identifier values in outputs: {leaked[:5]}"
    assert "subject_id" in text  # named as a dropped column, never its values
    assert METADATA.exists()


# --------------------------------------------------------------------------- utility and fidelity

#: The generators that do not copy training rows: the utility ground truths rank these.
FRESH = ("holdout", "sdv.gaussian_copula", "marginals", "uniform")

#: Each utility measurement with the direction in which it is better.
UTILITY = {
    "fidelity.quality": max,
    "fidelity.column_shapes": max,
    "fidelity.columns_passed": max,
    "dependence.correlation_mae": min,
    "dependence.mutual_information_mae": min,
    "missingness.pattern_tvd": min,
    "structure.gower_ks": min,
    "structure.pca_overlap": max,
    "structure.voas_williamson_fit": max,
    "propensity.auc": min,
    "propensity.pmse": min,
    "utility.tstr_ratio": max,
}


def _values(scorecard, name):
    return {g: _measurement(scorecard, g, name).value for g in FRESH}


def test_every_generator_carries_every_utility_measurement(quickstart_run):
    scorecard = quickstart_run[2]
    for g in scorecard.generators:
        names = {m.name for m in g.measurements}
        missing = set(UTILITY) | {"diagnostic.validity", "missingness.rate_mae", "utility.trtr_score"}
        assert missing <= names, f"{g.name} lacks {sorted(missing - names)}"


#: Column shapes alone: `marginals` models exactly the training table's columns, so it keeps them closer to
#: the training rows than an independent real sample does; holdout is best on everything else.
MARGINAL_ONLY = {"fidelity.column_shapes", "fidelity.columns_passed"}


@pytest.mark.parametrize("name", sorted(set(UTILITY) - MARGINAL_ONLY))
def test_holdout_scores_best_on_every_utility_measurement(quickstart_run, name):
    values = _values(quickstart_run[2], name)
    best = UTILITY[name]
    assert best(values, key=values.get) == "holdout", values


@pytest.mark.parametrize(
    "name",
    [
        "fidelity.quality",
        "fidelity.column_shapes",
        "structure.pca_overlap",
        "structure.voas_williamson_fit",
        "propensity.auc",
        "utility.tstr_ratio",
        "structure.gower_ks",
    ],
)
def test_uniform_scores_worst(quickstart_run, name):
    values = _values(quickstart_run[2], name)
    worst = min if UTILITY[name] is max else max
    assert worst(values, key=values.get) == "uniform", values


@pytest.mark.parametrize("name", ["dependence.correlation_mae", "dependence.mutual_information_mae"])
def test_uniform_loses_every_dependence(quickstart_run, name):
    values = _values(quickstart_run[2], name)
    assert values["uniform"] >= 0.95 * max(values.values())  # as bad as independent columns get


@pytest.mark.parametrize("name", sorted(MARGINAL_ONLY))
def test_holdout_and_marginals_keep_every_column(quickstart_run, name):
    values = _values(quickstart_run[2], name)
    assert min(values["holdout"], values["marginals"]) > max(values["sdv.gaussian_copula"], values["uniform"])


def test_marginals_keep_shapes_but_lose_dependence(quickstart_run):
    scorecard = quickstart_run[2]
    shapes = _values(scorecard, "fidelity.column_shapes")
    corr = _values(scorecard, "dependence.correlation_mae")
    assert shapes["marginals"] > 0.95 and shapes["marginals"] >= shapes["sdv.gaussian_copula"]
    assert corr["marginals"] > 1.2 * corr["sdv.gaussian_copula"]
    assert corr["marginals"] > 4 * corr["holdout"]
    ratio = _measurement(scorecard, "marginals", "utility.tstr_ratio")
    assert ratio.status.blocks and ratio.ci[0] < 0.1  # independent columns say nothing about the target


def test_propensity_cannot_tell_holdout_from_real_but_finds_uniform(quickstart_run):
    auc = _values(quickstart_run[2], "propensity.auc")
    assert auc["holdout"] < 0.56
    assert auc["uniform"] > 0.95


def test_selection_names_the_best_released_generator_never_a_yardstick(quickstart_run):
    _, run_dir, scorecard = quickstart_run
    sel = scorecard.selection
    assert sel is not None and sel.by == "utility.tstr_ratio" and sel.goal == "maximize"
    released = set(scorecard.summary.released)
    assert "holdout" in released and {r["name"] for r in sel.ranking} == released - {"holdout"}
    assert sel.chosen == "sdv.gaussian_copula"
    assert f"Selected by `utility.tstr_ratio`: **{sel.chosen}**" in (run_dir / "report.md").read_text()
