"""Writers: each is a pure function of the scorecard (never of the real data)."""

from pathlib import Path

from suite.reports.json_report import read_json, write_json
from suite.reports.junit import render_junit, write_junit
from suite.reports.markdown import render_markdown, write_markdown
from suite.reports.text import canary_table, gate_table, verdict_table

__all__ = [
    "read_json",
    "write_json",
    "render_markdown",
    "write_markdown",
    "render_junit",
    "write_junit",
    "verdict_table",
    "gate_table",
    "canary_table",
    "write_reports",
]


def write_reports(scorecard, run_dir: Path) -> list[Path]:  # noqa: ANN001
    """Every report of a run: scorecard.json first (the canonical result), then report.md,
    junit.xml and report.html. Each file is written atomically."""
    from suite.reports.html import write_html

    run_dir = Path(run_dir)
    paths = [write_json(scorecard, run_dir), write_markdown(scorecard, run_dir), write_junit(scorecard, run_dir)]
    disclosure = scorecard.disclosure
    html = run_dir / "report.html"
    write_html(
        scorecard,
        html,
        min_count=int(disclosure.get("min_count", 10)),
        allow_records=bool(disclosure.get("allow_records")),
    )
    return [*paths, html]
