"""Figures for report.html: each drawn from scorecard aggregates and returned as a PNG data URI.

No pyplot: every figure is a bare `matplotlib.figure.Figure` rendered by the Agg canvas, so
nothing is registered globally, nothing needs closing and no display is touched. Every text
drawn from the data (column names, levels, generator names) goes through `label`, which
escapes `$` so matplotlib never parses it as mathtext.

Small-cell suppression happens here, where the shares become pictures: a level, a histogram
bin or a PCA cell that holds fewer than `min_count` rows is never drawn as itself.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 80
REAL = "#4c72b0"
SYNTHETIC = "#dd8452"
HOLDOUT = "#55a868"
VERDICT = {"release": "#2e7d32", "block": "#c62828"}
HIDDEN = "#d9d9d9"
HIDDEN_CELL = "#e6e6e6"
RARE_LEVEL = "other (rare)"
PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974"]
_RC = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7}


def colors_for(names: Sequence[str]) -> dict[str, str]:
    """One colour per generator, the same in every figure of a report."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def label(text: Any, width: int = 28) -> str:
    """A data string made safe to draw: `$` escaped (no mathtext), cut to `width` characters."""
    s = " ".join(str(text).split())
    if len(s) > width:
        s = s[: width - 1] + "…"
    return s.replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_uri(fig: Figure) -> str:
    """The figure as a base64 PNG data URI (no metadata chunk: the file names no software or URL)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 6})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _styled(fn):  # noqa: ANN001, ANN202
    """Draw under the report's small fonts without touching the global rcParams."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _place(
    fig: Figure,
    nrows: int,
    ncols: int,
    *,
    left: float = 0.6,
    right: float = 0.2,
    top: float = 0.35,
    bottom: float = 0.5,
    wgap: float = 0.6,
    hgap: float = 0.75,
) -> None:
    """Fixed margins and gaps in inches (a layout engine would draw every figure twice)."""
    width, height = fig.get_size_inches()
    axes_w = max((width - left - right - (ncols - 1) * wgap) / ncols, 0.1)
    axes_h = max((height - top - bottom - (nrows - 1) * hgap) / nrows, 0.1)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=wgap / axes_w,
        hspace=hgap / axes_h,
    )


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


# --- privacy -------------------------------------------------------------------------------------


@_styled
def dcr_histograms(panels: Sequence[tuple[str, Mapping[str, Any], float | None]]) -> str:
    """Per generator: the distance from each synthetic row to its nearest training row, against
    the same distance for unseen real (holdout) rows. `panels`: (generator, dcr details, share)."""
    nrows, ncols = _grid(len(panels), 3)
    fig = _figure(3.6 * ncols, 2.5 * nrows)
    for i, (name, details, share) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        edges = np.asarray(details["histogram_edges"], dtype=float)
        for key, color, text in (
            ("histogram_holdout_to_train", HOLDOUT, "holdout → train"),
            ("histogram_synthetic_to_train", SYNTHETIC, "synthetic → train"),
        ):
            counts = np.asarray(details[key], dtype=float)
            total = counts.sum()
            shares = counts / total if total > 0 else counts
            ax.stairs(shares, edges, color=color, fill=key.startswith("histogram_holdout"), alpha=0.55, label=text)
            if not key.startswith("histogram_holdout"):
                ax.stairs(shares, edges, color=color, linewidth=1.8)
        title = label(name, 34) + ("" if share is None else f"  (share closer to train {share:.2f})")
        ax.set_title(title, loc="left")
        ax.set_xlabel("Gower distance to the nearest training row")
        ax.set_ylabel("share of rows")
        if i == 0:
            ax.legend(frameon=False, fontsize=7)
    _place(fig, nrows, ncols, wgap=0.55)
    return to_uri(fig)


@_styled
def roc_curves(
    attacker: str,
    curves: Sequence[tuple[str, Sequence[float], Sequence[float], float | None]],
    colors: Mapping[str, str] | None = None,
) -> str:
    """One membership attacker, every generator: ROC on linear and on log false-positive axes."""
    fig = _figure(9.0, 3.6)
    linear, logx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    grid = np.logspace(-3, 0, 50)
    linear.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="chance (AUC 0.5)")
    logx.plot(grid, grid, color="#999999", linestyle="--", linewidth=1)
    for i, (name, fpr, tpr, auc) in enumerate(curves):
        color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        text = label(name, 30) + ("" if auc is None else f" (AUC {auc:.2f})")
        f, t = _floats(fpr), _floats(tpr)
        linear.plot(f, t, color=color, linewidth=1.6, label=text)
        keep = f > 0
        logx.plot(f[keep], t[keep], color=color, linewidth=1.6)
    for ax in (linear, logx):
        ax.set_ylim(0, 1.01)
        ax.set_ylabel("true-positive rate (members found)")
        ax.grid(alpha=0.25)
    linear.set_xlim(0, 1)
    linear.set_xlabel("false-positive rate")
    logx.set_xscale("log")
    logx.set_xlim(1e-3, 1)
    logx.axvline(0.01, color="#c62828", linewidth=0.8, linestyle=":")
    logx.set_xlabel("false-positive rate (log scale; dotted: 1%)")
    linear.set_title(f"membership attacker: {label(attacker)}", loc="left")
    logx.set_title("the few most exposed people (low false positives)", loc="left")
    linear.legend(frameon=False, fontsize=7, loc="lower right")
    _place(fig, 1, 2, wgap=0.7, top=0.3)
    return to_uri(fig)


@dataclass(frozen=True)
class RiskPanel:
    measurement: str
    threshold: float | None
    bars: Sequence[tuple[str, float | None, tuple[float, float] | None]]  # generator, value, interval


@_styled
def risk_bars(panels: Sequence[RiskPanel], colors: Mapping[str, str] | None = None) -> str:
    """Attack risks, one panel per measurement, generators side by side with their intervals."""
    nrows, ncols = _grid(len(panels), 3)
    n_gen = max(len(p.bars) for p in panels)
    fig = _figure(max(3.2, 0.55 * n_gen + 1.4) * ncols, 3.0 * nrows)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        x = np.arange(len(panel.bars))
        values = _floats([b[1] for b in panel.bars])
        low = np.array([0.0 if b[2] is None or b[1] is None else max(b[1] - b[2][0], 0.0) for b in panel.bars])
        high = np.array([0.0 if b[2] is None or b[1] is None else max(b[2][1] - b[1], 0.0) for b in panel.bars])
        bar_colors = [(colors or {}).get(b[0], PALETTE[k % len(PALETTE)]) for k, b in enumerate(panel.bars)]
        ax.bar(x, np.nan_to_num(values), color=bar_colors, alpha=0.8, yerr=[low, high], capsize=3, ecolor="#333333")
        for k, v in enumerate(values):
            if np.isnan(v):
                ax.text(k, 0.01, "n/a", ha="center", va="bottom", fontsize=7)
        top = np.nanmax(np.concatenate([values + high, [0.05]]))
        if panel.threshold is not None:
            ax.axhline(panel.threshold, color="#c62828", linestyle="--", linewidth=1.2)
            ax.text(
                len(panel.bars) - 0.5,
                panel.threshold,
                f"max {panel.threshold:g}",
                color="#c62828",
                ha="right",
                va="bottom",
                fontsize=7,
            )
            top = max(top, panel.threshold)
        ax.set_ylim(min(0.0, np.nanmin(np.concatenate([values - low, [0.0]]))), top * 1.15)
        ax.set_xticks(x, [label(b[0], 18) for b in panel.bars], rotation=30, ha="right")
        ax.set_title(label(panel.measurement, 40), loc="left")
        ax.grid(axis="y", alpha=0.25)
    _place(fig, nrows, ncols, bottom=0.95, hgap=1.35, wgap=0.5, left=0.5)
    return to_uri(fig)


# --- utility -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suppressed:
    """What a drawing left out to keep small cells hidden."""

    levels: int = 0
    bins: int = 0
    cells: int = 0


def fold_levels(
    distribution: Mapping[str, Any], rows: int, min_count: int
) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """Levels with at least `min_count` real rows; the others folded into "other (rare)", for the
    real and the synthetic shares alike. Returns levels, real, synthetic and how many were folded."""
    levels = [str(v) for v in distribution["levels"]]
    real, synthetic = _floats(distribution["real"]), _floats(distribution["synthetic"])
    keep, folded = [], 0
    for i, level in enumerate(levels):
        pooled = level.startswith("other (rare")
        if not pooled and np.nan_to_num(real[i]) * rows >= min_count - 1e-9:
            keep.append(i)
        elif not pooled:
            folded += 1
    rest = [i for i in range(len(levels)) if i not in keep]
    out_levels = [levels[i] for i in keep]
    out_real, out_synth = list(np.nan_to_num(real[keep])), list(np.nan_to_num(synthetic[keep]))
    if rest:
        out_levels.append(RARE_LEVEL)
        out_real.append(float(np.nansum(real[rest])))
        out_synth.append(float(np.nansum(synthetic[rest])))
    return out_levels, np.array(out_real), np.array(out_synth), folded


def hidden_bins(real: np.ndarray, synthetic: np.ndarray, rows: int, min_count: int) -> np.ndarray:
    """Histogram bins holding between 1 and `min_count - 1` rows of either table: never drawn.

    The synthetic side counts too: a generator that copies (the `identity` canary) puts the same
    few rows in the same bins, and the real side is only a subsample of the training rows.
    """
    r, s = np.nan_to_num(real) * rows, np.nan_to_num(synthetic) * rows
    small = lambda c: (c > 1e-9) & (c < min_count - 1e-9)  # noqa: E731
    return small(r) | small(s)


_MAX_LEVELS = 10


def edge_labels(edges: np.ndarray, axis: str) -> list[str]:
    """Bin edges as a reader reads them: dates for "datetime" (nanoseconds since 1970), days for
    "duration" (nanoseconds), short numbers otherwise."""
    if axis == "datetime":
        stamps = pd.to_datetime(np.asarray(edges, dtype=float).astype("int64"), unit="ns")
        span = stamps.max() - stamps.min()
        return [t.strftime("%Y-%m-%d" if span < pd.Timedelta(days=3 * 365) else "%Y-%m") for t in stamps]
    if axis == "duration":
        return [f"{v / 86_400e9:.3g} d" for v in edges]
    return [f"{v:.3g}" for v in edges]


@_styled
def distribution_overlays(
    by_column: Mapping[str, Mapping[str, Any]], rows: int, min_count: int, *, max_columns: int = 30
) -> tuple[str, Suppressed, int]:
    """Small multiples: each column's real and synthetic distribution (shares), worst first.

    Returns the image, what was suppressed, and how many columns were left out (beyond `max_columns`).
    """
    drawable = {c: r for c, r in by_column.items() if isinstance(r.get("distribution"), Mapping)}
    order = sorted(drawable, key=lambda c: (bool(drawable[c].get("passed", True)), -float(drawable[c].get("tvd", 0))))
    shown, left_out = order[:max_columns], max(0, len(order) - max_columns)
    if not shown:
        raise ValueError("no column carries a distribution")
    nrows, ncols = _grid(len(shown), 4)
    fig = _figure(3.1 * ncols, 2.45 * nrows)
    folded_total = bins_total = 0
    for i, column in enumerate(shown):
        result = drawable[column]
        dist = result["distribution"]
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if dist.get("kind") == "histogram":
            edges = np.asarray(dist["edges"], dtype=float)
            real, synth = _floats(dist["real"]), _floats(dist["synthetic"])
            hide = hidden_bins(real, synth, rows, min_count)
            bins_total += int(hide.sum())
            real, synth = np.where(hide, 0.0, np.nan_to_num(real)), np.where(hide, 0.0, np.nan_to_num(synth))
            # Log-spaced bins and dates are drawn at equal widths with their edges as tick labels.
            plain = dist.get("scale", "linear") == "linear" and dist.get("axis", "number") == "number"
            x = edges if plain else np.arange(edges.size, dtype=float)
            for k in np.flatnonzero(hide):
                ax.axvspan(x[k], x[k + 1], color=HIDDEN, alpha=0.6, linewidth=0)
            ax.stairs(real, x, fill=True, color=REAL, alpha=0.45, label="real")
            ax.stairs(synth, x, color=SYNTHETIC, linewidth=1.6, label="synthetic")
            visible = np.flatnonzero(~hide & ((real > 0) | (synth > 0)))
            if visible.size:
                ax.set_xlim(x[visible[0]], x[visible[-1] + 1])
            if not plain:
                ticks = np.unique(np.linspace(0, edges.size - 1, 4).round().astype(int))
                ax.set_xticks(ticks, edge_labels(edges[ticks], str(dist.get("axis", "number"))), fontsize=6.5)
                if dist.get("scale") == "log":
                    ax.set_xlabel("log-spaced bins", fontsize=6.5)
            ax.set_yticks([])
        else:
            levels, real, synth, folded = fold_levels(dist, rows, min_count)
            folded_total += folded
            order_l = [k for k in np.argsort(-real, kind="stable") if levels[k] != RARE_LEVEL]
            rare = [k for k in range(len(levels)) if levels[k] == RARE_LEVEL]
            top, tail = order_l[:_MAX_LEVELS], order_l[_MAX_LEVELS:]
            names = [label(levels[k], 20) for k in top]
            r_vals, s_vals = [real[k] for k in top], [synth[k] for k in top]
            if tail:
                names.append(f"({len(tail)} more levels)")
                r_vals.append(float(real[tail].sum()))
                s_vals.append(float(synth[tail].sum()))
            if rare and (real[rare].sum() > 0 or synth[rare].sum() > 0 or folded):
                names.append(RARE_LEVEL)
                r_vals.append(float(real[rare].sum()))
                s_vals.append(float(synth[rare].sum()))
            y = np.arange(len(names))
            ax.barh(y - 0.2, r_vals, height=0.4, color=REAL, alpha=0.75, label="real")
            ax.barh(y + 0.2, s_vals, height=0.4, color=SYNTHETIC, alpha=0.9, label="synthetic")
            ax.set_yticks(y, names, fontsize=6.5 if len(names) > 6 else 7)
            ax.invert_yaxis()
            ax.set_xlabel("share of rows")
        passed = result.get("passed")
        verdict = "" if passed is None else ("  same" if passed else "  differs")
        ax.set_title(
            f"{label(column, 24)}  TVD {float(result.get('tvd', 0)):.2f}{verdict}",
            loc="left",
            color="#c62828" if passed is False else "#222222",
        )
        if i == 0:
            ax.legend(frameon=False, fontsize=7)
    _place(fig, nrows, ncols, left=1.1, wgap=1.15, top=0.3, bottom=0.45, hgap=0.75, right=0.15)
    return to_uri(fig), Suppressed(levels=folded_total, bins=bins_total), left_out


def changed_rc() -> dict[str, Any]:
    """The matplotlib settings this process changed from those it started with: what a worker process applies to
    draw one of its figures with the same pixels (`overlays_under`)."""
    import matplotlib

    return {k: v for k, v in matplotlib.rcParams.items() if k != "backend" and matplotlib.rcParamsOrig.get(k) != v}


def overlays_under(
    rc: Mapping[str, Any], by_column: Mapping[str, Mapping[str, Any]], rows: int, min_count: int
) -> tuple[str, Suppressed, int]:
    """`distribution_overlays` under the settings `rc` (`changed_rc` of the process the report is built in)."""
    import matplotlib

    with matplotlib.rc_context(dict(rc)):
        return distribution_overlays(by_column, rows, min_count)


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """A figure worker of report.html (reports/html.py, `_Ahead`): reads the settings (`changed_rc`), then jobs
    (by_column, rows, min_count), each answered by ("ok", `overlays_under`'s figure) or ("error", its text), until
    the input ends. Every object in and out is pickled, by the report's own process."""
    import pickle

    rc = pickle.load(source)  # noqa: S301 - written by the parent process that started this one
    while True:
        try:
            job = pickle.load(source)  # noqa: S301 - idem
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", overlays_under(rc, *job))
        except Exception as exc:  # noqa: BLE001 - the parent draws it again, and meets the error itself
            answer = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(answer, sink, protocol=pickle.HIGHEST_PROTOCOL)
        sink.flush()


def _matrix(values: Sequence[Sequence[Any]]) -> np.ndarray:
    return np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)


@_styled
def correlation_heatmaps(
    columns: Sequence[str], real: Sequence[Sequence[Any]], synthetic: Sequence[Sequence[Any]]
) -> str:
    """Real, synthetic and their difference: pairwise association matrices (grey = undefined)."""
    return _heatmaps(columns, _matrix(real), _matrix(synthetic), ("RdBu_r", -1.0))


@_styled
def mutual_information_heatmaps(
    columns: Sequence[str], real: Sequence[Sequence[Any]], synthetic: Sequence[Sequence[Any]]
) -> str:
    """Real, synthetic and their difference: pairwise normalised mutual information (0 to 1)."""
    return _heatmaps(columns, _matrix(real), _matrix(synthetic), ("Blues", 0.0))


def _heatmaps(columns: Sequence[str], r: np.ndarray, s: np.ndarray, scale: tuple[str, float]) -> str:
    """Three panels: real and synthetic on `scale` (colour map, lower end; the upper end is 1) and
    synthetic minus real on -1 to 1."""
    cmap_rs, low = scale
    n = len(columns)
    side = min(max(3.2, 0.2 * n + 1.2), 7.0)
    fig = _figure(3 * side + 0.8, side + 0.4)
    import matplotlib

    names = [label(c, 18) for c in columns]
    for k, (matrix, title, cmap, vmin) in enumerate(
        ((r, "real", cmap_rs, low), (s, "synthetic", cmap_rs, low), (s - r, "synthetic − real", "PuOr_r", -1.0))
    ):
        ax = fig.add_subplot(1, 3, k + 1)
        colormap = matplotlib.colormaps[cmap].with_extremes(bad=HIDDEN)
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap=colormap, vmin=vmin, vmax=1, interpolation="nearest")
        ax.set_title(title, loc="left")
        if n <= 40:
            fontsize = 7 if n <= 16 else 5.5
            ax.set_xticks(range(n), names, rotation=90, fontsize=fontsize)
            ax.set_yticks(range(n), names if k == 0 else [""] * n, fontsize=fontsize)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    _place(fig, 1, 3, left=1.15, bottom=1.15, wgap=0.45, top=0.3, right=0.5)
    return to_uri(fig)


def mask_cells(shares: np.ndarray, rows: int, min_count: int) -> np.ndarray:
    """Cells of a 2-D histogram holding between 1 and `min_count - 1` rows."""
    counts = np.nan_to_num(shares) * rows
    return (counts > 1e-9) & (counts < min_count - 1e-9)


@_styled
def pca_heatmaps(details: Mapping[str, Any], min_count: int) -> tuple[str, Suppressed]:
    """Real and synthetic rows on the real data's first two principal components (2-D histograms of
    shares). Cells with fewer than `min_count` rows in either table are hidden in both panels."""
    import matplotlib

    real, synth = _matrix(details["histogram_real"]), _matrix(details["histogram_synthetic"])
    hide = mask_cells(real, int(details.get("train_rows", 0)), min_count) | mask_cells(
        synth, int(details.get("synthetic_rows", 0)), min_count
    )
    real, synth = np.where(hide, np.nan, real), np.where(hide, np.nan, synth)
    e1, e2 = np.asarray(details["grid_edges_pc1"], dtype=float), np.asarray(details["grid_edges_pc2"], dtype=float)
    ratios = list(details.get("explained_variance_ratio") or []) + [None, None]
    vmax = float(np.nanmax(np.concatenate([real.ravel(), synth.ravel(), [1e-6]])))
    colormap = matplotlib.colormaps["Blues"].with_extremes(bad=HIDDEN_CELL)
    fig = _figure(8.6, 3.6)
    for k, (matrix, title) in enumerate(((real, "real (training rows)"), (synth, "synthetic"))):
        ax = fig.add_subplot(1, 2, k + 1)
        # The histograms are indexed [pc1 bin, pc2 bin]: transpose so PC1 runs along x.
        image = ax.imshow(
            np.ma.masked_invalid(matrix.T),
            origin="lower",
            aspect="auto",
            cmap=colormap,
            vmin=0,
            vmax=vmax,
            extent=(e1[0], e1[-1], e2[0], e2[-1]),
            interpolation="nearest",
        )
        ax.set_title(title, loc="left")
        ax.set_xlabel("PC1" + ("" if ratios[0] is None else f" ({ratios[0]:.0%} of variance)"))
        ax.set_ylabel("PC2" + ("" if ratios[1] is None else f" ({ratios[1]:.0%} of variance)"))
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    _place(fig, 1, 2, wgap=1.0, right=0.5)
    return to_uri(fig), Suppressed(cells=int(hide.sum()))


@_styled
def shap_bar(top_features: Sequence[Mapping[str, Any]], *, limit: int = 10) -> str:
    """The columns that give synthetic rows away: mean |SHAP| of the real-vs-synthetic classifier."""
    items = sorted(top_features, key=lambda f: -float(f.get("mean_abs_shap", 0)))[:limit]
    if not items:
        raise ValueError("no feature importances")
    fig = _figure(4.6, 0.28 * len(items) + 1.0)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(items))
    ax.barh(y, [float(f["mean_abs_shap"]) for f in items], color=SYNTHETIC, alpha=0.85)
    ax.set_yticks(y, [label(f.get("column", "?"), 26) for f in items])
    ax.invert_yaxis()
    ax.set_xlabel("mean |SHAP| (log-odds of 'synthetic')")
    ax.grid(axis="x", alpha=0.25)
    _place(fig, 1, 1, left=1.7, top=0.15, bottom=0.5)
    return to_uri(fig)


@dataclass(frozen=True)
class ModelScores:
    generator: str
    tstr: float | None
    tstr_ci: tuple[float, float] | None
    trtr: float | None
    trtr_ci: tuple[float, float] | None


@_styled
def tstr_bars(rows: Sequence[ModelScores], chance: float | None, metric: str) -> str:
    """Train on synthetic, test on real (TSTR) beside train on real, test on real (TRTR)."""
    fig = _figure(max(4.5, 0.9 * len(rows) + 2.0), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))

    def bars(values, cis, offset, color, text):  # noqa: ANN001, ANN202
        v = _floats(values)
        low = [0.0 if c is None or np.isnan(val) else max(val - c[0], 0.0) for val, c in zip(v, cis)]
        high = [0.0 if c is None or np.isnan(val) else max(c[1] - val, 0.0) for val, c in zip(v, cis)]
        ax.bar(
            x + offset,
            np.nan_to_num(v),
            width=0.38,
            color=color,
            alpha=0.85,
            yerr=[low, high],
            capsize=3,
            ecolor="#333333",
            label=text,
        )

    bars([r.trtr for r in rows], [r.trtr_ci for r in rows], -0.2, REAL, "TRTR: trained on real")
    bars([r.tstr for r in rows], [r.tstr_ci for r in rows], 0.2, SYNTHETIC, "TSTR: trained on synthetic")
    if chance is not None:
        ax.axhline(chance, color="#777777", linestyle="--", linewidth=1)
        ax.text(len(rows) - 0.45, chance, f" chance {chance:g}", ha="left", va="center", fontsize=7, color="#555555")
    ax.set_xticks(x, [label(r.generator, 18) for r in rows], rotation=25, ha="right")
    ax.set_ylabel(label(metric, 30) + " on real holdout")
    ax.legend(frameon=False, fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2)
    ax.grid(axis="y", alpha=0.25)
    _place(fig, 1, 1, bottom=0.95, top=0.35, right=0.75)
    return to_uri(fig)


# --- trade-off -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeoffPoint:
    generator: str
    risk: float
    utility: float
    verdict: str


@_styled
def tradeoff(points: Sequence[TradeoffPoint], *, cap: float = 3.0) -> str:
    """Privacy risk (worst ratio to its threshold) against utility; one point per generator."""
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.axvspan(1.0, cap * 1.08, color="#c62828", alpha=0.06, linewidth=0)
    ax.axvline(1.0, color="#c62828", linestyle="--", linewidth=1)
    ax.text(1.0, 1.0, " privacy thresholds", color="#c62828", fontsize=7, va="top", transform=ax.get_xaxis_transform())
    for verdict, color in VERDICT.items():
        pts = [p for p in points if p.verdict == verdict]
        if pts:
            xs = [min(p.risk, cap) for p in pts]
            ax.scatter(xs, [p.utility for p in pts], s=55, color=color, label=verdict, zorder=3, edgecolor="white")
    for k, p in enumerate(points):
        text = label(p.generator, 24) + (f" (risk {p.risk:.3g}, off scale)" if p.risk > cap else "")
        right = min(p.risk, cap) > 0.6 * cap
        ax.annotate(
            text,
            (min(p.risk, cap), p.utility),
            xytext=(-6 if right else 6, 4 - 11 * (k % 2)),
            textcoords="offset points",
            fontsize=7,
            ha="right" if right else "left",
        )
    ax.set_xlim(0, cap * 1.08)
    lo = min([p.utility for p in points] + [0.0])
    ax.set_ylim(lo - 0.05, max([p.utility for p in points] + [1.0]) + 0.08)
    ax.set_xlabel("privacy risk: worst measurement / its max threshold (1 = at the threshold)")
    ax.set_ylabel("utility (higher is better)")
    ax.legend(frameon=False, fontsize=7, loc="lower right", title="verdict", title_fontsize=7)
    ax.grid(alpha=0.25)
    _place(fig, 1, 1, top=0.2)
    return to_uri(fig)
