"""What the CLI prints: the verdict table, and each generator's gated measurements."""

from __future__ import annotations

from suite.scorecard import MeasurementRecord, Scorecard

UNINFORMATIVE = "uninformative"  # a gate that fails no leak canary of its run: its pass is not evidence


def status_of(m: MeasurementRecord) -> str:
    """A measurement's status, marked when the gate caught no leak canary (`pass (uninformative)`)."""
    return f"{m.status.value} ({UNINFORMATIVE})" if m.informative is False else m.status.value


def matrix(scorecard: Scorecard) -> tuple[list[str], list[list[str]]]:
    """Which gate caught which leak canary: the header and one row per gated privacy measurement (the
    gate, its attack kind, one cell per canary, then `informative` or `uninformative`)."""
    header = ["gate", "attack", *scorecard.canaries, "informative"]
    rows = []
    for g in scorecard.gates:
        attack = (g.attack or "distance") + (", worst case" if g.worst_case else "")
        cells = [g.canaries.get(c, "error") for c in scorecard.canaries]
        rows.append([g.measurement, attack, *cells, "yes" if g.informative else UNINFORMATIVE])
    return header, rows


def canary_table(scorecard: Scorecard) -> str:
    """The matrix as aligned text, with the canaries' leak class; empty when nothing is gated on privacy."""
    if not scorecard.gates:
        return ""
    header, rows = matrix(scorecard)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    leaks = (
        ", ".join(f"{c} (leaks {leak})" for c, leak in scorecard.canaries.items()) or "none: no gate can show it fires"
    )
    return f"which gate caught which leak canary ({leaks}):\n" + "\n".join("  " + line for line in lines)


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
    line = f"  {status_of(m):<20} {m.name:<{width}} {value:>8} {ci:<17} {m.threshold or ''}{repeat}"
    return line + (f"\n  {'':<20} advice: {m.advice}" if m.advice else "")


def gate_table(scorecard: Scorecard) -> str:
    """Per generator, every gated measurement: status, value, interval, threshold."""
    out = []
    for g in scorecard.generators:
        gated = [m for m in g.measurements if m.status.value != "ungated"]
        width = max((len(m.name) for m in gated), default=10)
        out.append(f"{g.name}: {g.verdict}")
        out += [_line(m, width) for m in sorted(gated, key=lambda m: (not m.status.blocks, m.name, m.repeat))]
    return "\n".join(out)
