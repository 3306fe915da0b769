"""report.html: every section, self-contained, escaped, no small cells; and a real browser renders it offline.

Scorecards come from real runs of the suite (the quickstart's utility side, a small privacy run, a run over
hostile column names and values), stored in tests/data/scorecards/ by tests/regenerate_scorecards.py and kept
current by tests/test_stored_scorecards.py.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from suite.reports import plots
from suite.reports.html import CSP, privacy_risk, render_html, write_html
from suite.scorecard import Scorecard
from tests.conftest import ROOT
from tests.regenerate_scorecards import HOSTILE_COLUMN, HOSTILE_LABEL, HOSTILE_VALUE, SOMEWHAT_RARE, VERY_RARE, load

SECTIONS = ["verdicts", "gates", "privacy", "utility", "tradeoff", "provenance"]
ARTIFACTS = ROOT / "artifacts"
BROWSER_TIMEOUT = 180


# --- fixtures: stored scorecards of real runs (tests/regenerate_scorecards.py) ------------------------


@pytest.fixture(scope="module")
def quickstart() -> tuple[Scorecard, str, float]:
    scorecard = load("quickstart")
    start = time.perf_counter()
    html = render_html(scorecard)
    return scorecard, html, time.perf_counter() - start


@pytest.fixture(scope="module")
def privacy_run() -> Scorecard:
    """Every privacy check on 3,000 rows, a private generator and a copying canary."""
    return load("privacy")


@pytest.fixture(scope="module")
def hostile_run() -> Scorecard:
    """A column named like a script, category values like an image tag, a generator label with both
    HTML and mathtext in it, and two rare levels of a real column."""
    return load("hostile")


# --- helpers -------------------------------------------------------------------------------------


def _section(html: str, section: str) -> str:
    match = re.search(rf'<section id="{section}">(.*?)</section>', html, re.S)
    assert match, f"no <section id={section!r}>"
    return match.group(1)


def _images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", html)


def _assert_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    assert f'content="{escape(CSP)}"' in html  # the browser decodes the entities of an attribute
    for tag in _images(html):
        src = re.search(r'src="([^"]*)"', tag)
        assert src and src.group(1).startswith("data:image/png;base64,"), tag[:120]
        png = base64.b64decode(src.group(1).split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    for value in re.findall(r'\b(?:src|href|action|poster|srcset)="([^"]*)"', html):
        assert value.startswith(("data:image/png;base64,", "#")), value[:120]
    assert "<link" not in html and "@import" not in html and "url(" not in html


def _drawn_labels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every data string matplotlib draws goes through plots.label: record them."""
    seen: list[str] = []
    original = plots.label

    def recording(text, width=28):  # noqa: ANN001, ANN202
        seen.append(str(text))
        return original(text, width)

    monkeypatch.setattr(plots, "label", recording)
    return seen


# --- the quickstart: utility plots ---------------------------------------------------------------


def test_quickstart_report_has_every_section_and_plot(quickstart):
    scorecard, html, seconds = quickstart
    positions = [html.find(f'<section id="{s}">') for s in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    _assert_self_contained(html)
    assert "plot unavailable" not in html
    n_gen = len(scorecard.generators)
    utility = _section(html, "utility")
    # Per generator: distributions, association and mutual-information heatmaps, PCA, SHAP; once: TSTR.
    assert len(_images(utility)) == 5 * n_gen + 1
    assert "Mutual information between columns" in utility
    assert len(_images(_section(html, "privacy"))) == 1  # DCR only: the quickstart's utility side runs no attack
    assert len(_images(_section(html, "tradeoff"))) == 1
    assert "Every verdict is as expected" in _section(html, "verdicts")
    for g in scorecard.generators:
        assert g.name in _section(html, "gates")
    assert scorecard.dataset["sha256"] in _section(html, "provenance")
    assert seconds < 60, f"rendering took {seconds:.1f} s"


def test_quickstart_report_is_kept_as_artefact(quickstart):
    _, html, seconds = quickstart
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-quickstart.html").write_text(html, encoding="utf-8")
    print(f"quickstart report: {seconds:.1f} s, {len(html) / 1e6:.2f} MB, {len(_images(html))} images")


def test_write_html_is_atomic_and_deterministic(privacy_run, tmp_path):
    path = tmp_path / "report.html"
    write_html(privacy_run, path)
    assert path.read_text(encoding="utf-8") == render_html(privacy_run)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


def test_gate_rows_put_blocking_first_and_fold_ungated(quickstart):
    scorecard, html, _ = quickstart
    gates = _section(html, "gates")
    blocked = next(g for g in scorecard.generators if g.verdict == "block")
    block = gates.split(f"<h3>{blocked.name} ")[1].split('<div class="gen')[0]
    statuses = re.findall(r'<span class="badge (pass|risk-shown|not-shown-safe|error|missing|ungated)">', block)
    first_pass = statuses.index("pass")
    assert all(s in ("risk-shown", "not-shown-safe", "error", "missing") for s in statuses[:first_pass])
    assert first_pass > 0
    assert "<details>" in block and "reported without a threshold" in block


# --- privacy plots -------------------------------------------------------------------------------


def test_privacy_report_draws_dcr_roc_and_risk_bars(privacy_run):
    html = render_html(privacy_run)
    _assert_self_contained(html)
    assert "plot unavailable" not in html
    privacy = _section(html, "privacy")
    attackers = {
        m.name.split(".")[1] for g in privacy_run.generators for m in g.measurements if m.name.endswith(".auc")
    }
    assert attackers, "membership produced no AUC"
    # DCR histograms, one ROC figure per attacker, the risk bars.
    assert len(_images(privacy)) == 1 + len(attackers) + 1
    for attacker in attackers:
        assert f"the {attacker} attacker" in privacy
    # Utility: no utility check ran; the missing plots are named in one line each.
    utility = _section(html, "utility")
    assert not _images(utility)
    assert utility.count("not drawn") >= 5


def test_tradeoff_risk_is_the_worst_ratio_to_the_max_threshold(privacy_run):
    identity = next(g for g in privacy_run.generators if g.name == "identity")
    expected = max(
        (max(m.ci) if m.ci else m.value) / m.threshold.max
        for m in identity.measurements
        if m.name.split(".")[0] in ("collisions", "dcr", "singling_out", "linkability", "inference", "membership")
        and m.threshold is not None
        and m.threshold.max
        and m.value is not None
    )
    risk = privacy_risk(identity)
    assert risk.ratio == pytest.approx(expected) and risk.ratio > 1
    html = render_html(privacy_run)
    assert f"{risk.ratio:.2f}" in _section(html, "tradeoff")


def test_errored_measurements_in_memory_are_not_numbers(privacy_run):
    """Before the JSON round trip an errored measurement's value is NaN, not None."""
    from suite.policy import Status

    def errored(m):  # noqa: ANN001, ANN202
        if not m.name.startswith("dcr."):
            return m
        return m.model_copy(update={"value": float("nan"), "ci": None, "status": Status.ERROR, "details": {}})

    generators = [
        g.model_copy(update={"measurements": [errored(m) for m in g.measurements]}) for g in privacy_run.generators
    ]
    card = privacy_run.model_copy(update={"generators": generators})
    for g in card.generators:
        risk = privacy_risk(g)
        assert risk.ratio is not None and not np.isnan(risk.ratio) and risk.measurement != "dcr.share_closer_to_train"
        assert "dcr.share_closer_to_train" in risk.unknown
    html = render_html(card)
    assert "not drawn: no dcr.share_closer_to_train" in html and "plot unavailable" not in html


def test_repeats_get_a_column(privacy_run):
    generators = [
        g.model_copy(
            update={"measurements": g.measurements + [m.model_copy(update={"repeat": 1}) for m in g.measurements]}
        )
        for g in privacy_run.generators
    ]
    spec = {**privacy_run.scenario["spec"], "repeats": 2}
    html = render_html(
        privacy_run.model_copy(update={"generators": generators, "scenario": {**privacy_run.scenario, "spec": spec}})
    )
    assert "<th>repeat</th>" in _section(html, "gates") and "Figures show the first repeat" in html


def test_collisions_only_scorecard_renders_with_notes(privacy_run):
    generators = [
        g.model_copy(update={"measurements": [m for m in g.measurements if m.name.startswith("collisions.")]})
        for g in privacy_run.generators
    ]
    html = render_html(privacy_run.model_copy(update={"generators": generators}))
    for section in SECTIONS:
        _section(html, section)
    assert not _images(html[html.find('<section id="privacy">') : html.find('<section id="tradeoff">')])
    assert "not drawn: no dcr.share_closer_to_train" in html
    assert "not drawn: no membership" in html
    assert "plot unavailable" not in html


def test_a_failing_plot_is_reported_not_raised(privacy_run, monkeypatch):
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(plots, "dcr_histograms", broken)
    html = render_html(privacy_run)
    assert "plot unavailable: RuntimeError: boom" in _section(html, "privacy")
    assert len(_images(_section(html, "privacy"))) >= 2  # the other privacy figures are still drawn


# --- escaping and small cells --------------------------------------------------------------------


def test_hostile_names_and_values_are_escaped(hostile_run, monkeypatch):
    drawn = _drawn_labels(monkeypatch)
    html = render_html(hostile_run)
    _assert_self_contained(html)
    assert HOSTILE_COLUMN not in html and HOSTILE_VALUE not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the column is named, escaped
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the generator label too
    assert "plot unavailable" not in html  # a `$` in a label never reaches mathtext
    assert HOSTILE_COLUMN in drawn and HOSTILE_LABEL in drawn and HOSTILE_VALUE in drawn
    # The only <script> is the report's own self-check.
    assert len(re.findall(r"<script\b", html)) == 1
    assert plots.label("a $x$ b") == r"a \$x\$ b"


def test_rare_levels_are_never_shown(hostile_run, monkeypatch):
    card = hostile_run.model_dump_json()
    assert VERY_RARE not in card  # the check pools it already
    assert SOMEWHAT_RARE in card  # about 28 real rows: above the check's own min_count of 10
    drawn = _drawn_labels(monkeypatch)
    html = render_html(hostile_run, min_count=10)
    assert SOMEWHAT_RARE in drawn  # drawn at 10, so the next assertion is not vacuous
    drawn.clear()
    html = render_html(hostile_run, min_count=50)
    assert SOMEWHAT_RARE not in drawn
    assert SOMEWHAT_RARE not in html and VERY_RARE not in html
    assert "seen fewer than 50 times folded into" in html


def test_min_count_never_goes_below_the_scenarios(hostile_run, monkeypatch):
    drawn = _drawn_labels(monkeypatch)
    strict = hostile_run.model_copy(update={"disclosure": {"min_count": 50, "allow_records": False}})
    html = render_html(strict, min_count=5)
    assert SOMEWHAT_RARE not in drawn
    assert "smallest count shown (min_count)</th><td>50" in html


def test_small_cells_are_folded_or_hidden():
    dist = {
        "kind": "levels",
        "levels": ["a", "b", "c", "other (rare or unseen levels)"],
        "real": [0.9, 0.095, 0.004, 0.001],
        "synthetic": [0.8, 0.1, 0.05, 0.05],
    }
    levels, real, synth, folded = plots.fold_levels(dist, rows=1000, min_count=10)
    assert levels == ["a", "b", plots.RARE_LEVEL] and folded == 1
    assert real.tolist() == pytest.approx([0.9, 0.095, 0.005]) and synth.tolist() == pytest.approx([0.8, 0.1, 0.1])
    hide = plots.hidden_bins(np.array([0.5, 0.495, 0.005, 0.0]), np.array([0.5, 0.5, 0.0, 0.0]), 1000, 10)
    assert hide.tolist() == [False, False, True, False]
    real_grid = np.array([[0.5, 0.004], [0.0, 0.496]])
    details = {
        "histogram_real": real_grid.tolist(),
        "histogram_synthetic": real_grid.tolist(),
        "train_rows": 1000,
        "synthetic_rows": 1000,
        "grid_edges_pc1": [0, 1, 2],
        "grid_edges_pc2": [0, 1, 2],
        "explained_variance_ratio": [0.5, 0.2],
    }
    uri, hidden = plots.pca_heatmaps(details, min_count=10)
    assert hidden.cells == 1 and uri.startswith("data:image/png;base64,")


def test_dates_and_long_tails_are_drawn_readably():
    """A date column is labelled with dates (not nanoseconds); a long-tailed one gets log-spaced bins."""
    from suite.encoding import as_float
    from suite.metrics.fidelity import numeric_test

    covid = pd.read_parquet(ROOT / "data" / "covid_testing.parquet")
    days = pd.Timestamp("2020-03-01") + pd.to_timedelta(covid["pan_day"], unit="D")
    when = as_float(days)
    dated = numeric_test(when[:5000], when[5000:10000], 20, min_count=10, axis="datetime")["distribution"]
    labels = plots.edge_labels(np.asarray(dated["edges"])[[0, -1]], "datetime")
    assert all(re.fullmatch(r"2020-\d\d-\d\d", x) for x in labels), labels
    adult = pd.read_parquet(ROOT / "data" / "adult.parquet")
    gains = adult["capital-gain"].to_numpy(dtype=float)
    gains = gains[gains > 0]
    tail = numeric_test(gains[::2], gains[1::2], 20, min_count=10)["distribution"]
    assert tail["scale"] == "log" and tail["axis"] == "number"
    by_column = {
        "pan_day": {"distribution": dated, "tvd": 0.1, "passed": True},
        "capital-gain": {"distribution": tail, "tvd": 0.1, "passed": True},
    }
    uri, _, _ = plots.distribution_overlays(by_column, 5000, 10)
    assert uri.startswith("data:image/png;base64,")


def test_template_never_disables_escaping():
    template = (ROOT / "reports" / "templates" / "report.html.j2").read_text(encoding="utf-8")
    assert "|safe" not in template.replace(" ", "") and "autoescape false" not in template
    assert "Markup(" not in (ROOT / "reports" / "html.py").read_text(encoding="utf-8")


def test_readers_guide_links_the_docs_and_embeds_the_screenshot():
    guide = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    for link in ("utility.md", "attacks.md", "policies.md", "img/report.png"):
        assert f"]({link})" in guide, link
        assert (ROOT / "docs" / link).is_file(), link
    assert (ROOT / "docs" / "img" / "report.png").stat().st_size > 20_000
    for section in ("Verdicts", "Gates", "Privacy", "Utility", "trade-off", "Provenance"):
        assert section in guide


def test_allow_records_is_noted():
    from suite.reports.html import _provenance

    scorecard = Scorecard.model_construct(
        scenario={"name": "x", "spec": {}},
        dataset={},
        metadata={},
        policy={},
        provenance={},
        generators=[],
        created="now",
        schema_version="1.0",
    )
    rows = dict(_provenance(scorecard, 10, True)["disclosure"])
    assert rows["real records allowed in reports (allow_records)"].startswith("yes")


# --- a real browser, offline ---------------------------------------------------------------------

OFFLINE = [
    "--headless=new",
    "--disable-gpu",
    "--no-sandbox",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-first-run",
    "--disable-extensions",
    "--hide-scrollbars",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("SUITE_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium is not installed, and SUITE_REQUIRE_BROWSER=1 requires the browser test")
    pytest.skip("chromium is not installed (Debian: apt-get install chromium); SUITE_REQUIRE_BROWSER=1 makes this fail")


def _browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [_chromium(), *OFFLINE, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)


def _dump(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after load, and chromium's console lines (every console message, whatever its level,
    is logged as `INFO:CONSOLE`, so any line at all is a finding)."""
    result = _browse(page, profile, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [
        line
        for line in result.stderr.splitlines()
        if "CONSOLE" in line or "Refused" in line or "Content Security Policy" in line
    ]
    return result.stdout, console


def test_browser_harness_sees_console_errors_and_blocked_requests(tmp_path):
    """The checks below are only worth something if chromium reports what they look for."""
    page = tmp_path / "throwaway.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CSP}"></head>'
        '<body><img src="https://example.invalid/x.png">'
        '<script>console.error("deliberate error"); document.body.dataset.rendered = "fail";</script></body></html>'
    )
    dom, console = _dump(page, tmp_path / "profile")
    assert 'data-rendered="fail"' in dom
    assert any("deliberate error" in line for line in console), console
    assert any("Content Security Policy" in line for line in console), console


@pytest.mark.parametrize("which", ["quickstart", "privacy", "hostile"])
def test_browser_renders_offline_without_console_errors(which, request, tmp_path):
    if which == "quickstart":
        html = request.getfixturevalue("quickstart")[1]
    else:
        html = render_html(request.getfixturevalue(f"{which}_run"))
    page = tmp_path / f"report-{which}.html"
    page.write_text(html, encoding="utf-8")
    dom, console = _dump(page, tmp_path / "profile")
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-rendered="ok"' in body, body
    assert f'data-images="{len(_images(html))}"' in body
    assert not console, "\n".join(console)


def test_browser_screenshot_is_kept(quickstart, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page = tmp_path / "report.html"
    page.write_text(quickstart[1], encoding="utf-8")
    shot = ARTIFACTS / "report-quickstart.png"
    shot.unlink(missing_ok=True)
    result = _browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2400")
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000, len(data)


# --- figures drawn ahead in worker processes ------------------------------------------------------


def _overlay_jobs(scorecard: Scorecard) -> dict[int, tuple]:
    from suite.reports import html as report

    return {
        i: (m.details["by_column"], int(m.details.get("rows_per_table") or 0), 10)
        for i, g in enumerate(scorecard.generators)
        if (m := report._distributions(g)) is not None
    }


def test_report_with_figures_drawn_by_workers_is_the_one_drawn_here(quickstart):
    """The quickstart (covid_testing, six generators, 14 columns each) has enough panels for the distribution
    figures to be drawn by worker processes: the page is the one drawn all in this process, byte for byte."""
    scorecard, html, _ = quickstart
    assert len(_overlay_jobs(scorecard)) == 6
    serial = render_html(scorecard, workers=0)
    assert render_html(scorecard, workers=2) == serial == html


def test_workers_draw_the_figures_and_any_failure_draws_them_here(quickstart, monkeypatch):
    from suite.reports import html as report

    jobs = _overlay_jobs(quickstart[0])
    serial = {i: plots.distribution_overlays(*args) for i, args in jobs.items()}
    here: list[int] = []
    drawn_here = plots.distribution_overlays

    def counted(*args):  # noqa: ANN002, ANN202
        here.append(1)
        return drawn_here(*args)

    monkeypatch.setattr(plots, "distribution_overlays", counted)

    def collect(ahead: report._Ahead, wait: bool) -> dict[int, tuple]:
        deadline = time.monotonic() + 120
        while wait and ahead._todo and time.monotonic() < deadline:  # every figure taken by a worker
            time.sleep(0.05)
        try:
            return {i: ahead.overlays(i, *args) for i, args in jobs.items()}
        finally:
            ahead.close()

    assert collect(report._Ahead(jobs, 2), wait=True) == serial and not here  # all six drawn by the workers
    monkeypatch.setattr(report, "_WORKER", "import sys; sys.exit(3)")  # workers that die at once
    assert collect(report._Ahead(jobs, 2), wait=False) == serial and len(here) == 6
    monkeypatch.setattr(report.sys, "executable", "")  # no interpreter to start: no worker
    assert collect(report._Ahead(jobs, 2), wait=False) == serial and len(here) == 12


def test_a_figure_that_fails_in_a_worker_fails_here_alike(quickstart, monkeypatch):
    """A worker's error is not passed on: the figure is drawn here again and meets the same error."""
    from suite.reports import html as report

    jobs = _overlay_jobs(quickstart[0])
    jobs[2] = ({"age": {"tvd": 0.1}}, *jobs[2][1:])  # no column carries a distribution: a ValueError
    ahead = report._Ahead(jobs, 2)
    deadline = time.monotonic() + 120
    while ahead._todo and time.monotonic() < deadline:  # every figure taken by a worker, the failing one too
        time.sleep(0.05)
    try:
        assert 2 in ahead._taken
        with pytest.raises(ValueError, match="no column carries a distribution"):
            ahead.overlays(2, *jobs[2])
        assert ahead.overlays(3, *jobs[3]) == plots.distribution_overlays(*jobs[3])
    finally:
        ahead.close()
