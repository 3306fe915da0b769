"""The verdict table the CLI prints."""

from __future__ import annotations

from suite.scorecard import Scorecard


def verdict_table(scorecard: Scorecard) -> str:
    """One line per generator: verdict, expectation, and the first reasons it was blocked."""
    rows = [("generator", "verdict", "expected", "ok", "why")]
    for g in scorecard.generators:
        why = "; ".join(g.reasons[:2]) + (f" (+{len(g.reasons) - 2} more)" if len(g.reasons) > 2 else "")
        rows.append((g.name, g.verdict, g.expected, "yes" if g.as_expected else "NO", why or "all gated checks passed"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    status = (
        "every verdict as expected"
        if scorecard.summary.all_as_expected
        else f"UNEXPECTED: {', '.join(scorecard.summary.unexpected)}"
    )
    return f"scenario {scorecard.scenario['name']}: {status}\n" + "\n".join(lines)
