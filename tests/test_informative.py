"""Each gate proves it can fire (issue 14, item 7), on 3,000 real rows of the quickstart table.

One run: the `holdout` yardstick (real unseen rows), a candidate, and two leak canaries (`identity`, a copy
of everyone; `verbatim_copy`, 10% of training rows pasted into a marginals release, a leak of a few
people), under membership and linkability on the default column halves.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from suite.cli import main
from suite.informative import UNSHOWN, settle, unshowable
from suite.reports import read_json
from suite.reports.html import render_html
from suite.reports.markdown import render_markdown
from suite.reports.text import canary_table
from tests.conftest import write_scenario

GENERATORS = [
    {"name": "holdout"},
    {"name": "marginals", "expect": "candidate"},
    {"name": "identity", "expect": "block"},
    {"name": "verbatim_copy", "params": {"fraction": 0.1}, "expect": "block"},
]
CHECKS = [
    {"name": "membership", "params": {"attackers": ["distance", "local"]}},
    {"name": "linkability", "params": {"n_attacks": 200}},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_csv):
    folder = tmp_path_factory.mktemp("informative")
    # On 3,000 rows the control holds ~430 people: the default local gate (0.015) cannot certify holdout there
    # (`suite plan` says so); this test is about which gates fire, so that gate is set where the slice certifies.
    path = write_scenario(
        folder,
        small_csv,
        generators=GENERATORS,
        checks=CHECKS,
        select={"by": "membership.distance.auc"},
        policy={"membership.local.excess_at_fpr": {"max": 0.05}},
    )
    code = main(["run", str(path), "--out", str(folder / "out"), "--quiet"])
    (run_dir,) = (folder / "out").iterdir()
    return code, run_dir, read_json(run_dir / "scorecard.json")


def _gate(scorecard, name):
    return next(g for g in scorecard.gates if g.measurement == name)


def test_the_canaries_are_the_declared_leak_canaries_of_the_scenario(run):
    _, _, sc = run
    assert sc.canaries == {"identity": "everyone", "verbatim_copy": "few"}  # holdout and the candidate are not


def test_a_gate_that_catches_a_canary_is_informative(run):
    _, _, sc = run
    auc = _gate(sc, "membership.distance.auc")
    assert auc.attack == "membership" and not auc.worst_case
    assert auc.canaries["identity"] == "caught" and auc.informative
    local = _gate(sc, "membership.local.excess_at_fpr")  # worst case: it must catch the leak of a few people
    assert local.worst_case and local.canaries["verbatim_copy"] == "caught" and local.informative
    identity = next(g for g in sc.generators if g.name == "identity")
    assert all(m.informative for m in identity.measurements if m.name == "membership.distance.auc")


def test_a_worst_case_gate_that_catches_only_a_copy_of_everyone_is_uninformative(run):
    _, _, sc = run
    records, found = settle(sc.generators, {"identity": "everyone"})  # the run without its few-people canary
    local = next(g for g in found if g.measurement == "membership.local.excess_at_fpr")
    assert local.canaries == {"identity": "caught"} and not local.informative
    assert "leaks a few people" in local.reason
    auc = next(g for g in found if g.measurement == "membership.distance.auc")
    assert auc.informative  # an average gate may prove itself on identity


def test_linkability_that_links_no_one_is_uninformative(run):
    _, _, sc = run
    link = _gate(sc, "linkability.risk")
    assert link.attack == "linkability"
    assert link.canaries == {"identity": "passed", "verbatim_copy": "passed"} and not link.informative
    holdout = next(g for g in sc.generators if g.name == "holdout")
    (m,) = [m for m in holdout.measurements if m.name == "linkability.risk"]
    assert m.status == "pass" and m.informative is False  # its pass is reported, and marked


def test_a_release_without_an_informative_gate_of_an_attack_kind_is_blocked(run):
    code, _, sc = run
    holdout = next(g for g in sc.generators if g.name == "holdout")
    assert all(m.status == "pass" for m in holdout.measurements if m.threshold and m.threshold.gates)
    assert holdout.verdict == "block" and holdout.why == ["not shown safe"] and not holdout.as_expected
    (reason,) = [r for r in holdout.reasons if r.startswith(UNSHOWN)]
    assert "linkability" in reason and "membership gate" not in reason  # membership did show it can fire
    assert code == 1
    # a candidate is held to the same rule, so none is selected
    candidate = next(g for g in sc.generators if g.name == "marginals")
    assert candidate.verdict == "block" and candidate.as_expected
    assert sc.selection.chosen is None and "no candidate was released" in sc.selection.reason
    assert not {t.generator for t in sc.release}  # nothing blocked is written out


def test_a_scenario_without_canaries_releases_nothing_on_attacks(run):
    _, _, sc = run
    said = []
    judged = [  # holdout as its gates alone judged it (each passes), before this run's canaries blocked it
        g.model_copy(update={"verdict": "release", "reasons": [], "why": []}) if g.name == "holdout" else g
        for g in sc.generators
    ]
    records, found = settle(judged, {}, said.append)
    assert found and not any(g.informative for g in found)
    holdout = next(g for g in records if g.name == "holdout")
    assert holdout.verdict == "block"
    assert {r.split(" gate,")[0] for r in holdout.reasons} >= {f"{UNSHOWN} membership", f"{UNSHOWN} linkability"}
    assert any("runs no leak canary" in s for s in said)


def test_every_report_shows_the_matrix_and_the_uninformative_marker(run):
    _, run_dir, sc = run
    text = canary_table(sc)
    assert "verbatim_copy" in text.splitlines()[1] and "linkability.risk" in text
    line = next(ln for ln in text.splitlines() if "linkability.risk" in ln)
    assert line.split()[-3:] == ["passed", "passed", "uninformative"]
    md = (run_dir / "report.md").read_text()
    assert md == render_markdown(sc) and "## Which gate caught which leak canary" in md
    assert "| linkability.risk | linkability | passed | passed | **uninformative** |" in md
    assert "| pass (uninformative) |" in md
    html = render_html(sc)
    assert "Which gate caught which leak canary" in html and "badge uninformative" in html
    assert UNSHOWN in html  # the verdict table says why holdout is blocked
    junit = ET.parse(run_dir / "junit.xml").getroot()
    holdout = next(s for s in junit if s.get("name").endswith(".holdout"))
    case = next(c for c in holdout if c.get("name") == "linkability.risk")
    assert case.find("properties/property[@name='informative']").get("value") == "false"
    assert "uninformative" in case.find("system-out").text
    verdict = next(c for c in holdout if c.get("name") == "verdict")
    assert UNSHOWN in verdict.find("failure").get("message")


def test_before_any_fit_a_run_without_canaries_is_warned_that_its_attacks_cannot_release():
    from suite.policy import PRESETS

    warning = unshowable(PRESETS["default"], {})
    assert warning and all(k in warning for k in ("membership", "singling_out", "linkability", "inference"))
    assert unshowable(PRESETS["default"], {"identity": "everyone"}) is None
    distance_only = {k: t for k, t in PRESETS["default"].items() if k.startswith(("dcr.", "collisions."))}
    assert unshowable(distance_only, {}) is None  # the quickstart's distance checks are not an attack kind
