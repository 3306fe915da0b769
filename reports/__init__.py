"""Writers: each is a pure function of the scorecard (never of the real data)."""

from reports.json_report import read_json, write_json
from reports.markdown import render_markdown, write_markdown
from reports.text import gate_table, verdict_table

__all__ = ["read_json", "write_json", "render_markdown", "write_markdown", "verdict_table", "gate_table"]
