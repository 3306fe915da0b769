"""report.html: one self-contained page a data protection officer can read offline.

A pure function of the scorecard, never of the real data. Everything is inline: the styles, a
small script that checks the page rendered, and every figure as a base64 PNG data URI drawn with
matplotlib's Agg canvas (reports/plots.py). A Content-Security-Policy meta tag forbids any other
source, so an accidental external request is blocked (and logged by the browser), never made.

No leaks: only the aggregates of the scorecard are drawn, and small cells are suppressed again at
the report's `min_count` (never below the scenario's `report.min_count`, kept in
`scorecard.disclosure`): category levels with fewer real rows are folded into "other (rare)",
histogram bins and PCA cells with fewer rows are hidden. Every string from the data or the
scenario goes through jinja2's autoescape, and through `plots.label` before matplotlib draws it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from suite import policy
from suite.declarations import FAMILIES, family_order, is_privacy, spec_of
from suite.io import write_text_atomic
from suite.reports import plots
from suite.reports.markdown import membership_exposure
from suite.reports.text import matrix
from suite.scorecard import UNSHOWN, GeneratorRecord, MeasurementRecord, Scorecard

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_STATUS_ORDER = {
    "risk shown": 0,
    "not shown safe": 1,
    "error": 2,
    "missing": 3,
    "pass": 4,
    "ungated": 5,
    "not applicable": 6,
}


def meaning_of(m: MeasurementRecord) -> str:
    """The measurement's own meaning, else its check's declared one (a row whose check gave none)."""
    return m.meaning or spec_of(m.name).meaning


# --- view model ----------------------------------------------------------------------------------


@dataclass
class Plot:
    """One figure of the page: an image, or a one-line note saying why there is none."""

    title: str
    alt: str
    uri: str | None = None
    note: str = ""
    caption: str = ""


def draw(title: str, alt: str, make: Callable[[], str | tuple[str, str]], caption: str = "") -> Plot:
    """Run a drawing; a failure becomes "plot unavailable: <reason>" on the page, never an exception."""
    try:
        made = make()
    except Exception as exc:  # noqa: BLE001 - a broken figure must not cost the report
        return Plot(title, alt, note=f"plot unavailable: {type(exc).__name__}: {exc}")
    uri, extra = (made, "") if isinstance(made, str) else made
    return Plot(title, alt, uri=uri, caption=" ".join(t for t in (caption, extra) if t))


def absent(title: str, why: str) -> Plot:
    return Plot(title, title, note=f"not drawn: {why}")


def _num(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _interval(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def finite(value: float | None) -> float | None:
    """A number, or None: an errored measurement holds NaN in memory (None once written as JSON)."""
    return value if value is not None and math.isfinite(value) else None


def first(g: GeneratorRecord, name: str) -> MeasurementRecord | None:
    """The measurement `name` of the first repeat that has a value, else of the first repeat."""
    found = sorted((m for m in g.measurements if m.name == name), key=lambda m: (finite(m.value) is None, m.repeat))
    return found[0] if found else None


def _first_with(g: GeneratorRecord, names: Iterable[str], key: str) -> MeasurementRecord | None:
    for name in names:
        m = first(g, name)
        if m is not None and key in m.details:
            return m
    return None


def conservative(m: MeasurementRecord, side: str) -> float | None:
    """The bound the policy judges a `max` (side 'max') or `min` threshold on (`suite.policy.bounds`)."""
    if m.value is None or not policy.finite(m.value, m.ci):
        return None
    low, high = policy.bounds(m.value, m.ci)
    return high if side == "max" else low


@dataclass
class Risk:
    ratio: float | None
    measurement: str = ""
    unknown: list[str] = field(default_factory=list)


def privacy_risk(g: GeneratorRecord) -> Risk:
    """The worst ratio conservative value / max threshold over the generator's gated privacy
    measurements (those their checks declare of kind "privacy").

    1 is at the threshold, above 1 fails it. The conservative value is the upper interval bound
    (the value without an interval), as the policy judges it. Errored or missing measurements
    have no value; they are listed in `unknown` (they block the release anyway).
    """
    worst = Risk(None)
    for m in g.measurements:
        if not is_privacy(m.name) or m.threshold is None or m.threshold.max is None:
            continue
        value = conservative(m, "max")
        if value is None:
            worst.unknown.append(m.name)
            continue
        limit = m.threshold.max
        ratio = value / limit if limit > 0 else (0.0 if value <= 0 else math.inf)
        if worst.ratio is None or ratio > worst.ratio:
            worst.ratio, worst.measurement = ratio, m.name
    worst.unknown = sorted(set(worst.unknown))
    return worst


def utility_score(g: GeneratorRecord) -> tuple[float | None, str]:
    """`fidelity.quality` when present, else the mean of the available maximize utility measurements
    that describe the generator (declared `scored`; a plugin's undeclared measurement is not averaged)."""
    quality = [m.value for m in g.measurements if m.name == "fidelity.quality" and finite(m.value) is not None]
    if quality:
        return sum(quality) / len(quality), "fidelity.quality"
    values = [
        m.value
        for m in g.measurements
        if m.goal == "maximize"
        and finite(m.value) is not None
        and (spec := spec_of(m.name)).kind == "utility"
        and spec.scored
    ]
    if not values:
        return None, ""
    return sum(values) / len(values), f"mean of {len(values)} utility measurement(s)"


def _gate_row(m: MeasurementRecord, repeats: bool) -> dict[str, Any]:
    return {
        "name": m.name,
        "repeat": m.repeat + 1 if repeats else None,
        "value": _num(m.value),
        "ci": _interval(m.ci),
        "baseline": "" if m.baseline is None else _num(m.baseline),
        "threshold": "" if m.threshold is None or not m.threshold.gates else str(m.threshold),
        "status": m.status.value,
        "meaning": meaning_of(m),
        "reason": m.reason if m.status.blocks or m.status.value == "not applicable" else "",
        "error": m.error or "",
        "goal": "lower is better" if m.goal == "minimize" else "higher is better",
        "uninformative": m.informative is False,
    }


def _verdicts(sc: Scorecard, repeats: bool) -> list[dict[str, Any]]:
    out = []
    for i, g in enumerate(sc.generators):
        blocking = sorted(
            (m for m in g.measurements if m.status.blocks),
            key=lambda m: (_STATUS_ORDER[m.status.value], m.name, m.repeat),
        )
        prefix = (lambda m: f"repeat {m.repeat + 1}: ") if repeats else (lambda m: "")
        out.append(
            {
                "anchor": f"gen-{i}",
                "name": g.name,
                "generator": g.generator,
                "verdict": g.verdict,
                "expected": g.expected,
                "as_expected": g.as_expected,
                "reasons": [
                    {"status": m.status.value, "text": prefix(m) + m.reason + (f". {m.advice}" if m.advice else "")}
                    for m in blocking
                ]
                + [{"status": "not shown safe", "text": r} for r in g.reasons if r.startswith(UNSHOWN)],
                "passed": sum(m.status.value == "pass" for m in g.measurements),
                "gated": sum(m.status.value not in ("ungated", "not applicable") for m in g.measurements),
            }
        )
    return out


def _gates(sc: Scorecard, repeats: bool) -> list[dict[str, Any]]:
    out = []
    for i, g in enumerate(sc.generators):
        ordered = sorted(
            g.measurements, key=lambda m: (not m.status.blocks, _STATUS_ORDER[m.status.value], m.name, m.repeat)
        )
        out.append(
            {
                "anchor": f"gates-{i}",
                "name": g.name,
                "verdict": g.verdict,
                "gated": [_gate_row(m, repeats) for m in ordered if m.status.value != "ungated"],
                "ungated": [_gate_row(m, repeats) for m in ordered if m.status.value == "ungated"],
            }
        )
    return out


def _by_kind(sc: Scorecard, repeats: bool) -> dict[str, Any]:
    """Every measurement in its declared kind's section: privacy grouped by attack family, then utility."""
    rows: dict[str, list[dict[str, Any]]] = {}
    families: dict[str, str] = {}
    for g in sc.generators:
        for m in sorted(g.measurements, key=lambda m: (m.name, m.repeat)):
            spec = spec_of(m.name)
            key = f"privacy:{spec.family or 'other'}" if spec.kind == "privacy" else "utility"
            families.setdefault(key, spec.family or "other")
            rows.setdefault(key, []).append({"generator": g.name, **_gate_row(m, repeats)})
    privacy = [
        {"family": f, "rows": rows[f"privacy:{f}"]}
        for f in family_order(v for k, v in families.items() if k.startswith("privacy:"))
    ]
    return {"privacy": privacy, "utility": rows.get("utility", [])}


# --- privacy -------------------------------------------------------------------------------------

_RISK_ORDER = [
    "singling_out.univariate.risk",
    "singling_out.multivariate.risk",
    "linkability.risk",
    "inference.max.excess",
    "inference.*.excess",
    "shadow.worst_excess",
]


def _risk_names(sc: Scorecard) -> list[str]:
    """The built-in attacks' risks, then the gated (max) privacy measurements of any other attack family
    a check declares (a plugin's attack is drawn like a built-in one)."""
    names = {m.name for g in sc.generators for m in g.measurements}
    out: list[str] = []
    for pattern in _RISK_ORDER:
        out += sorted(n for n in names if fnmatch.fnmatchcase(n, pattern) and n not in out)
    gated = {
        m.name for g in sc.generators for m in g.measurements if m.threshold is not None and m.threshold.max is not None
    }
    others = [n for n in gated if is_privacy(n) and spec_of(n).family not in FAMILIES]
    return out + sorted(n for n in others if n not in out)


def _privacy(sc: Scorecard) -> list[Plot]:
    gens = sc.generators
    colors = plots.colors_for([g.name for g in gens])
    plots_: list[Plot] = []

    dcr = [(g.name, m) for g in gens if (m := _first_with(g, ["dcr.share_closer_to_train"], "histogram_edges"))]
    title = "Distance to the closest record: synthetic → train against holdout → train"
    if dcr:
        plots_.append(
            draw(
                title,
                "Histograms of the distance from each synthetic row, and from each unseen real row, "
                "to its nearest training row, one panel per generator",
                lambda: plots.dcr_histograms([(name, m.details, finite(m.value)) for name, m in dcr]),
                "A generator that copies puts its synthetic rows at distance 0 (left edge), much nearer "
                "the training rows than unseen real people are. A safe generator's orange line lies to the "
                "right of, or on, the green area.",
            )
        )
    else:
        plots_.append(absent(title, "no dcr.share_closer_to_train measurement with histograms in this scorecard"))

    attackers = sorted(
        {
            m.name.split(".")[1]
            for g in gens
            for m in g.measurements
            if fnmatch.fnmatchcase(m.name, "membership.*.auc") and "roc" in m.details
        }
    )
    if not attackers:
        plots_.append(absent("Membership inference ROC curves", "no membership.*.auc measurement in this scorecard"))
    for attacker in attackers:
        name = f"membership.{attacker}.auc"
        curves = [
            (g.name, m.details["roc"]["fpr"], m.details["roc"]["tpr"], finite(m.value))
            for g in gens
            if (m := _first_with(g, [name], "roc"))
        ]
        plots_.append(
            draw(
                f"Membership inference: the {attacker} attacker",
                f"ROC curves of the {attacker} membership attacker, one line per generator, with the chance diagonal",
                lambda curves=curves, attacker=attacker: plots.roc_curves(attacker, curves, colors),
                "Each line: how many training people the attacker finds (up) for how many unseen people it "
                "wrongly accuses (right). The dashed diagonal is guessing. The right panel zooms on the few "
                "most exposed people (1% false positives, dotted).",
            )
        )

    risk_names = _risk_names(sc)
    title = "Singling out, linkability and attribute inference risks"
    if risk_names:
        panels = []
        for name in risk_names:
            threshold = sc.policy.get(name)
            bars = []
            for g in gens:
                m = first(g, name)
                if m is not None:
                    bars.append((g.name, finite(m.value), m.ci))
                    if threshold is None and m.threshold is not None:
                        threshold = m.threshold
            panels.append(plots.RiskPanel(name, None if threshold is None else threshold.max, bars))
        plots_.append(
            draw(
                title,
                "Bar charts of each attack's risk per generator with its interval and the threshold line",
                lambda: plots.risk_bars(panels, colors),
                "Bars: the residual risk (success on training people beyond unseen people); whiskers: its "
                "interval. The gate judges the upper end of the whisker against the dashed red line.",
            )
        )
    else:
        plots_.append(absent(title, "no singling_out, linkability or inference measurement in this scorecard"))
    return plots_


# --- utility -------------------------------------------------------------------------------------


def _patterns(details: Mapping[str, Any], min_count: int) -> list[dict[str, str]]:
    """Missingness patterns with at least `min_count` real rows; the others stay pooled."""
    rows = int(details.get("real_rows") or 0)
    out, rare_real, rare_synth = [], 0.0, 0.0
    for p in details.get("patterns", []):
        real, synth = float(p.get("real") or 0), float(p.get("synthetic") or 0)
        if real * rows < min_count - 1e-9:
            rare_real, rare_synth = rare_real + real, rare_synth + synth
            continue
        missing = p.get("missing") or []
        out.append({"missing": ", ".join(map(str, missing)) or "(nothing missing)", "real": real, "synth": synth})
    for key in ("rare_patterns", "other_patterns"):
        pooled = details.get(key) or {}
        rare_real += float(pooled.get("real") or 0)
        rare_synth += float(pooled.get("synthetic") or 0)
    if rare_real or rare_synth:
        out.append(
            {
                "missing": "other patterns (pooled: rare, unseen or beyond the list)",
                "real": rare_real,
                "synth": rare_synth,
            }
        )
    return [{"missing": r["missing"], "real": f"{r['real']:.3f}", "synth": f"{r['synth']:.3f}"} for r in out]


_UTILITY_KINDS = {
    "distributions": ("fidelity.columns_passed", "by_column", "fidelity"),
    "correlations": ("dependence.correlation_mae", "real", "dependence"),
    "mutual_information": ("dependence.mutual_information_mae", "real", "dependence"),
    "pca": ("structure.pca_overlap", "histogram_real", "structure"),
    "shap": ("propensity.auc", "top_features", "propensity"),
    "missingness": ("missingness.pattern_tvd", "patterns", "missingness"),
}


def _method(details: Mapping[str, Any]) -> str:
    method = details.get("correlation")
    return method if isinstance(method, str) else "spearman"


def _distributions(g: GeneratorRecord) -> MeasurementRecord | None:
    """The measurement whose details hold the per-column distributions (`by_column`) of generator `g`."""
    name, key, _ = _UTILITY_KINDS["distributions"]
    return _first_with(g, [name], key)


#: Worker processes that draw the per-generator distribution figures ahead while the page is built (0: none).
FIGURE_WORKERS = 2
#: Panels (columns drawn, over every generator) below which the figures are drawn in this process only: a
#: worker's start (about 1 s: Python, numpy, pandas, matplotlib) would cost more than it saves.
_AHEAD_MIN_PANELS = 60
#: What a worker runs: the parent's import path first (its first input), then `plots.serve`.
_WORKER = (
    "import pickle, sys; sys.path[:0] = pickle.load(sys.stdin.buffer); "
    "from suite.reports.plots import serve; serve(sys.stdin.buffer, sys.stdout.buffer)"
)
#: Seconds the page waits for a worker's figure before drawing it itself.
_WORKER_WAIT = 600.0


class _Ahead:
    """The per-generator distribution figures (`plots.distribution_overlays`: 1.5-4 s each at census_100k's 30
    panels, most of the report's time) drawn ahead by worker processes while this one builds the rest of the page.
    Each worker is a fresh interpreter that imports `suite.reports.plots` alone (`_WORKER`; not multiprocessing,
    whose spawned children import the caller's main script again) and takes the next figure when done with one. A
    figure no worker has taken when the page reaches it is drawn here; one whose worker failed (no worker, a worker
    gone, an error in the drawing) is drawn here again. Each figure is the same function of the same details and
    settings (`plots.changed_rc`) wherever it is drawn, so the page is the same byte for byte."""

    def __init__(self, jobs: dict[int, tuple[Any, ...]], workers: int) -> None:
        self._jobs = jobs
        self._todo: list[int] = []  # figures no worker has taken yet
        self._taken: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        panels = sum(min(len(args[0]), 30) if isinstance(args[0], Mapping) else 0 for args in jobs.values())
        if workers < 1 or len(jobs) < 2 or panels < _AHEAD_MIN_PANELS or not sys.executable:
            return
        self._todo = list(jobs)
        rc = plots.changed_rc()
        for _ in range(min(workers, len(jobs))):
            try:
                worker = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed command
                    [sys.executable, "-c", _WORKER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:  # no worker: the figures not taken are drawn here
                break
            thread = threading.Thread(target=self._feed, args=(worker, rc), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _take(self) -> tuple[int, Future] | None:
        with self._lock:
            if not self._todo:
                return None
            index = self._todo.pop(0)
            future = self._taken[index] = Future()
            return index, future

    def _feed(self, worker: subprocess.Popen, rc: dict[str, Any]) -> None:
        """One worker's figures, one at a time, until none is left."""
        assert worker.stdin is not None and worker.stdout is not None
        try:
            pickle.dump(list(sys.path), worker.stdin)
            pickle.dump(rc, worker.stdin)
            worker.stdin.flush()
            while (taken := self._take()) is not None:
                index, future = taken
                try:
                    pickle.dump(self._jobs[index], worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    worker.stdin.flush()
                    status, value = pickle.load(worker.stdout)  # noqa: S301 - our own worker's answer
                except BaseException as exc:  # noqa: BLE001 - the worker is gone: this figure is drawn here
                    future.set_exception(RuntimeError(f"figure worker failed: {type(exc).__name__}"))
                    return
                if status == "ok":
                    future.set_result(value)
                else:
                    future.set_exception(RuntimeError(value))
        except BaseException:  # noqa: BLE001 - the worker never started: the figures are drawn here
            return
        finally:
            with contextlib.suppress(OSError):
                worker.stdin.close()  # the worker's input ends: it exits
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    def overlays(
        self, index: int, by_column: Mapping[str, Any], rows: int, min_count: int
    ) -> tuple[str, plots.Suppressed, int]:
        """Generator `index`'s figure: a worker's, else drawn here."""
        with self._lock:
            future = None if index in self._todo else self._taken.get(index)
            if index in self._todo:
                self._todo.remove(index)
        if future is not None:
            try:
                return future.result(timeout=_WORKER_WAIT)  # type: ignore[no-any-return]
            except Exception:  # noqa: BLE001 - drawn here instead: the same figure, or the same error
                pass
        return plots.distribution_overlays(by_column, rows, min_count)

    def close(self) -> None:
        """No further figure is taken; the workers finish the one they draw and exit."""
        with self._lock:
            self._todo.clear()
        for thread in self._threads:
            thread.join()
        self._threads.clear()


def _ahead(sc: Scorecard, min_count: int, workers: int) -> _Ahead:
    """The distribution figures of every generator that has them, started in worker processes."""
    jobs = {}
    for index, g in enumerate(sc.generators):
        m = _distributions(g)
        if m is not None:
            jobs[index] = (m.details["by_column"], int(m.details.get("rows_per_table") or 0), min_count)
    return _Ahead(jobs, workers)


def _utility_for(
    g: GeneratorRecord, index: int, kinds: set[str], min_count: int, ahead: _Ahead | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "anchor": f"utility-{index}",
        "name": g.name,
        "verdict": g.verdict,
        "plots": [],
        "patterns": None,
        "failed": [],
    }

    def get(kind: str) -> MeasurementRecord | None:
        if kind == "distributions":
            return _distributions(g)
        name, key, _ = _UTILITY_KINDS[kind]
        names = [name, "propensity.pmse"] if kind == "shap" else [name]
        return _first_with(g, names, key)

    if "distributions" in kinds:
        title = "Per-column distributions: real against synthetic"
        m = get("distributions")
        if m is None:
            out["plots"].append(absent(title, f"{_UTILITY_KINDS['distributions'][0]} has no details for {g.name}"))
        else:
            rows = int(m.details.get("rows_per_table") or 0)
            out["failed"] = [str(c) for c in m.details.get("failed_columns", [])]

            def make(m: MeasurementRecord = m, rows: int = rows) -> tuple[str, str]:
                by_column = m.details["by_column"]
                drawn = ahead.overlays(index, by_column, rows, min_count) if ahead is not None else None
                uri, hidden, left_out = drawn or plots.distribution_overlays(by_column, rows, min_count)
                notes = []
                if hidden.levels:
                    notes.append(
                        f"{hidden.levels} level(s) seen fewer than {min_count} times folded into "
                        f"\u201c{plots.RARE_LEVEL}\u201d."
                    )
                if hidden.bins:
                    notes.append(f"{hidden.bins} histogram bin(s) with fewer than {min_count} rows hidden (grey).")
                if left_out:
                    notes.append(f"{left_out} further column(s) not drawn.")
                return uri, " ".join(notes)

            out["plots"].append(
                draw(
                    title,
                    f"Small multiples: each column's distribution in the real and synthetic data for {g.name}",
                    make,
                    f"Shares of {rows} rows of each table. Blue: real (training); orange: synthetic. Columns whose "
                    "test finds a difference come first, titled in red; TVD is the total variation distance "
                    "(0 = same shares, 1 = disjoint).",
                )
            )
    heatmaps = {
        "correlations": (
            "Associations between columns: real, synthetic and their difference",
            "pairwise association",
            plots.correlation_heatmaps,
            lambda d: (
                f"Association of each pair of columns: {_method(d).capitalize()} correlation for two numbers, "
                "Cramér's V for two categories, the correlation ratio eta for a number and a category; grey = "
                "undefined (a constant column). The right panel "
                "should be pale: strong colours are associations the generator lost or invented."
            ),
        ),
        "mutual_information": (
            "Mutual information between columns: real, synthetic and their difference",
            "pairwise mutual information",
            plots.mutual_information_heatmaps,
            lambda d: (
                "Normalised mutual information of each pair of columns after binning numbers "
                f"({d.get('bins', '?')} quantile bins): 0 = independent, 1 = one column determines the other. "
                "Unlike a correlation it sees any dependence, not only a monotone one. The right panel should "
                "be pale."
            ),
        ),
    }
    for kind, (title, what, drawing, caption) in heatmaps.items():
        if kind not in kinds:
            continue
        m = get(kind)
        if m is None:
            out["plots"].append(absent(title, f"{_UTILITY_KINDS[kind][0]} has no details for {g.name}"))
            continue
        d = m.details
        out["plots"].append(
            draw(
                title,
                f"Three heatmaps of {what} for {g.name}: real, synthetic, synthetic minus real",
                lambda d=d, drawing=drawing: drawing(d["columns"], d["real"], d["synthetic"]),
                caption(d),
            )
        )
    if "pca" in kinds:
        title = "Principal components: where the real and the synthetic rows lie"
        m = get("pca")
        if m is None:
            out["plots"].append(absent(title, f"structure.pca_overlap has no details for {g.name}"))
        else:

            def make_pca(m: MeasurementRecord = m) -> tuple[str, str]:
                uri, hidden = plots.pca_heatmaps(m.details, min_count)
                note = f"{hidden.cells} cell(s) with fewer than {min_count} rows hidden (grey)." if hidden.cells else ""
                return uri, note

            out["plots"].append(
                draw(
                    title,
                    f"Two 2-D histograms over the first two principal components of the real data for {g.name}",
                    make_pca,
                    f"Colour: share of rows in each cell of a grid over the real data's first two principal "
                    f"components (same scale in both panels); overlap "
                    f"{_num(m.value)} (1 = identical"
                    + ("" if m.baseline is None else f"; real unseen rows reach {_num(m.baseline)}")
                    + ").",
                )
            )
    if "shap" in kinds:
        title = "What gives the synthetic rows away"
        m = get("shap")
        if m is None:
            out["plots"].append(absent(title, f"propensity has no feature importances for {g.name}"))
        else:
            auc = first(g, "propensity.auc")
            out["plots"].append(
                draw(
                    title,
                    f"Bar chart of the columns a classifier uses most to tell synthetic from real rows for {g.name}",
                    lambda m=m: plots.shap_bar(m.details["top_features"]),
                    "Mean |SHAP| of the boosted classifier telling real from synthetic rows"
                    + ("" if auc is None else f" (AUC {_num(auc.value)}; 0.5 = indistinguishable)")
                    + ": the columns at the top are the ones the generator reproduces worst.",
                )
            )
    if "missingness" in kinds:
        m = get("missingness")
        out["patterns"] = [] if m is None else _patterns(m.details, min_count)
    return out


def _utility(sc: Scorecard, min_count: int, ahead: _Ahead | None = None) -> dict[str, Any]:
    gens = sc.generators
    present = {
        kind
        for kind, (name, key, _) in _UTILITY_KINDS.items()
        for g in gens
        for m in g.measurements
        if (m.name == name or (kind == "shap" and m.name == "propensity.pmse")) and key in m.details
    }
    notes = [
        f"{label}: not drawn, no {name} measurement with details in this scorecard "
        f"(check `{check}`; an errored check has none)."
        for kind, label in (
            ("distributions", "Per-column distributions"),
            ("correlations", "Association heatmaps"),
            ("mutual_information", "Mutual-information heatmaps"),
            ("pca", "Principal-component overlap"),
            ("shap", "What gives the synthetic rows away (SHAP)"),
            ("missingness", "Missingness patterns"),
        )
        if kind not in present
        for name, _, check in [_UTILITY_KINDS[kind]]
    ]
    title = "Train on synthetic, test on real (TSTR) against train on real (TRTR)"
    scores = []
    chance, metric = None, "score"
    for g in gens:
        tstr, trtr, ratio = (
            first(g, "utility.tstr_score"),
            first(g, "utility.trtr_score"),
            first(g, "utility.tstr_ratio"),
        )
        if tstr is None and trtr is None:
            continue
        if ratio is not None and ratio.details:
            chance = ratio.details.get("chance", chance)
            metric = str(ratio.details.get("metric", metric))
        scores.append(
            plots.ModelScores(
                g.name,
                None if tstr is None else finite(tstr.value),
                None if tstr is None else tstr.ci,
                None if trtr is None else finite(trtr.value),
                None if trtr is None else trtr.ci,
            )
        )
    if scores:
        tstr_plot = draw(
            title,
            "Grouped bars per generator: the scores of models trained on real rows and on synthetic rows",
            lambda: plots.tstr_bars(scores, chance, metric),
            "Both models are scored on the same real unseen rows. A useful release keeps the orange bar close to "
            "the blue one, well above chance.",
        )
    else:
        tstr_plot = absent(title, "no utility.tstr_score measurement in this scorecard (check `utility`)")
    return {
        "notes": notes,
        "tstr": tstr_plot,
        "generators": [_utility_for(g, i, present, min_count, ahead) for i, g in enumerate(gens)] if present else [],
    }


# --- trade-off -----------------------------------------------------------------------------------


def _tradeoff(sc: Scorecard) -> dict[str, Any]:
    rows, points = [], []
    for g in sc.generators:
        risk = privacy_risk(g)
        utility, source = utility_score(g)
        rows.append(
            {
                "name": g.name,
                "verdict": g.verdict,
                "risk": "n/a" if risk.ratio is None else ("∞" if math.isinf(risk.ratio) else f"{risk.ratio:.2f}"),
                "driver": risk.measurement,
                "unknown": ", ".join(risk.unknown),
                "utility": _num(utility),
                "source": source,
            }
        )
        if risk.ratio is not None and utility is not None:
            points.append(plots.TradeoffPoint(g.name, risk.ratio, utility, g.verdict))
    title = "Privacy against utility"
    if points:
        plot = draw(
            title,
            "Scatter plot: each generator's privacy risk ratio (x) against its utility (y), coloured by verdict",
            lambda: plots.tradeoff(points),
        )
    else:
        plot = absent(
            title, "no generator has both a gated privacy measurement with a max threshold and a utility measurement"
        )
    return {"plot": plot, "rows": rows}


# --- provenance ----------------------------------------------------------------------------------


def _provenance(sc: Scorecard, min_count: int, allow_records: bool) -> dict[str, Any]:
    spec = sc.scenario.get("spec", {})
    prov = sc.provenance
    return {
        "scenario": [
            ("name", sc.scenario.get("name", "")),
            ("file", sc.scenario.get("path", "")),
            ("file sha256", sc.scenario.get("sha256", "")),
            ("created (UTC)", sc.created),
            ("scorecard schema", sc.schema_version),
            ("preset", spec.get("preset", "")),
            ("confidence", spec.get("confidence", "")),
            ("repeats", spec.get("repeats", 1)),
        ],
        "spec": yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100),
        "dataset": [(k, v) for k, v in sc.dataset.items()],
        "metadata": [
            (
                "metadata",
                ("inferred, written to " if sc.metadata.get("inferred") else "given, copied to ")
                + str(sc.metadata.get("file", "")),
            ),
            ("columns never shown to a generator", ", ".join(sc.metadata.get("dropped_columns", [])) or "none"),
        ],
        "columns": list((sc.metadata.get("columns") or {}).items()),
        "policy": [(name, str(t)) for name, t in sorted(sc.policy.items())],
        "environment": [
            ("python", prov.get("python", "")),
            ("platform", prov.get("platform", "")),
            ("split seed", prov.get("split_seed", "")),
            ("generator seeds", ", ".join(map(str, prov.get("seeds", [])))),
        ],
        "packages": sorted((prov.get("packages") or {}).items()),
        "sources": [("generator", k, v) for k, v in (prov.get("generators") or {}).items()]
        + [("check", k, v) for k, v in (prov.get("checks") or {}).items()],
        "generators": [
            {
                "name": g.name,
                "generator": g.generator,
                "params": json.dumps(g.params, sort_keys=True, default=str),
                "source": g.source,
                "seconds": f"{sum(g.seconds.values()):.1f}",
            }
            for g in sc.generators
        ],
        "disclosure": [
            ("smallest count shown (min_count)", str(min_count)),
            (
                "real records allowed in reports (allow_records)",
                "yes (scenario opt-in; this report shows none)" if allow_records else "no",
            ),
        ],
        "command": f"python -m suite run {sc.scenario.get('path', '<scenario>')}",
    }


# --- rendering -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def effective_min_count(scorecard: Scorecard, min_count: int) -> int:
    """The report never shows smaller cells than the scenario allowed (`scorecard.disclosure`)."""
    disclosure = getattr(scorecard, "disclosure", None) or {}
    return max(int(min_count), int(disclosure.get("min_count") or 1), 1)


def render_html(
    scorecard: Scorecard, *, min_count: int = 10, allow_records: bool = False, workers: int = FIGURE_WORKERS
) -> str:
    """The whole report as one HTML string (no external resource). `workers`: processes that draw the distribution
    figures ahead (`_Ahead`; 0 = all in this process): the same page either way."""
    sc = scorecard
    min_count = effective_min_count(sc, min_count)
    ahead = _ahead(sc, min_count, workers)
    try:
        return _render(sc, min_count, allow_records, ahead)
    finally:
        ahead.close()


def _render(sc: Scorecard, min_count: int, allow_records: bool, ahead: _Ahead) -> str:
    repeats = int(sc.scenario.get("spec", {}).get("repeats", 1) or 1)
    confidence = sc.scenario.get("spec", {}).get("confidence", 0.95)
    context = {
        "csp": CSP,
        "sc": sc,
        "title": f"Release gate: {sc.scenario.get('name', '')}",
        "summary": sc.summary,
        "repeats": repeats,
        "interval": f"interval (ends: one-sided {float(confidence):.0%} bounds)",
        "min_count": min_count,
        "verdicts": _verdicts(sc, repeats > 1),
        "gates": _gates(sc, repeats > 1),
        "canaries": dict(zip(("header", "rows"), matrix(sc))) | {"any": bool(sc.canaries)},
        "privacy": _privacy(sc),
        "exposure": [(g.name, text) for g in sc.generators if (text := membership_exposure(g))],
        "utility": _utility(sc, min_count, ahead),
        "by_kind": _by_kind(sc, repeats > 1),
        "tradeoff": _tradeoff(sc),
        "provenance": _provenance(sc, min_count, allow_records),
        "dataset": sc.dataset,
        "selection": getattr(sc, "selection", None),
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_html(scorecard: Scorecard, path: Path, *, min_count: int = 10, allow_records: bool = False) -> None:
    """Write report.html atomically."""
    write_text_atomic(Path(path), render_html(scorecard, min_count=min_count, allow_records=allow_records))
