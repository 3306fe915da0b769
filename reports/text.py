"""What the CLI prints: the verdict table, and each generator's gated measurements."""

from __future__ import annotations

from suite.scorecard import MeasurementRecord, Scorecard


def verdict_table(scorecard: Scorecard) -> str:
    """One line per generator: verdict, expectation, and the first reasons it was blocked."""
    rows = [("generator", "verdict", "expected", "ok", "why")]
    for g in scorecard.generators:
        why = "; ".join(g.reasons[:2]) + (f" (+{len(g.reasons) - 2} more)" if len(g.reasons) > 2 else "")
        why = f"[{', '.join(g.why)}] {why}" if g.why else why
        rows.append((g.name, g.verdict, g.expected, "yes" if g.as_expected else "NO", why or "all gated checks passed"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    summary = scorecard.summary
    status = "every verdict as expected" if summary.all_as_expected else f"UNEXPECTED: {', '.join(summary.unexpected)}"
    text = f"scenario {scorecard.scenario['name']}: {status}\n" + "\n".join(lines)
    if scorecard.selection is not None:
        chosen = scorecard.selection.chosen or "none"
        text += f"\nselected by {scorecard.selection.by}: {chosen} ({scorecard.selection.reason})"
    return text


def _line(m: MeasurementRecord, width: int) -> str:
    value = "n/a" if m.value is None else f"{m.value:.3f}"
    ci = "" if m.ci is None else f"[{m.ci[0]:.3f}, {m.ci[1]:.3f}]"
    repeat = f" (repeat {m.repeat + 1})" if m.repeat else ""
    line = f"  {m.status.value:<14} {m.name:<{width}} {value:>8} {ci:<17} {m.threshold or ''}{repeat}"
    return line + (f"\n  {'':<14} advice: {m.advice}" if m.advice else "")


def gate_table(scorecard: Scorecard) -> str:
    """Per generator, every gated measurement: status, value, interval, threshold."""
    out = []
    for g in scorecard.generators:
        gated = [m for m in g.measurements if m.status.value != "ungated"]
        width = max((len(m.name) for m in gated), default=10)
        out.append(f"{g.name}: {g.verdict}")
        out += [_line(m, width) for m in sorted(gated, key=lambda m: (not m.status.blocks, m.name, m.repeat))]
    return "\n".join(out)
