"""report.md: verdicts and the gate table, short enough for a pull-request comment.

Every text that comes from the scenario, the data or a plugin (generator labels, column names in
measurement names, reasons, meanings) goes through `_cell`: HTML is escaped to entities and the
Markdown characters that make links, code or emphasis are backslash-escaped, so the only markup in
the file is the report's own.
"""

from __future__ import annotations

import fnmatch
import html
import math
from pathlib import Path

from suite.declarations import spec_of
from suite.io import write_text_atomic
from suite.reports.text import UNINFORMATIVE, matrix
from suite.scorecard import GeneratorRecord, MeasurementRecord, Scorecard

_MARK = {
    "pass": "pass",
    "risk shown": "**RISK SHOWN**",
    "not shown safe": "**NOT SHOWN SAFE**",
    "error": "**ERROR**",
    "missing": "**MISSING**",
    "ungated": "-",
    "not applicable": "n/a",
}


#: Markdown punctuation that could open a link, an image, a code span, emphasis or a table cell.
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*[]|"})


def _cell(text: object) -> str:
    """Text from outside the report, inert in Markdown and HTML, on one line."""
    return html.escape(" ".join(str(text).split()), quote=False).translate(_MARKDOWN)


def _code(text: object) -> str:
    """Text from outside the report as a code span (where nothing is markup)."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _kind(name: str) -> str:
    """The measurement's kind as its check declares it: `privacy (membership)` or `utility`."""
    spec = spec_of(name)
    return f"privacy ({_cell(spec.family or 'other')})" if spec.kind == "privacy" else spec.kind


def _row(m: MeasurementRecord, with_repeat: bool) -> str:
    ci = "" if m.ci is None else f"[{m.ci[0]:.4g}, {m.ci[1]:.4g}]"
    threshold = "" if m.threshold is None else str(m.threshold)
    cells = [
        _cell(m.name),
        _kind(m.name),
        *([str(m.repeat + 1)] if with_repeat else []),
        _number(m.value),
        ci,
        _number(m.baseline),
        _cell(threshold),
        _MARK[m.status.value] + (f" ({UNINFORMATIVE})" if m.informative is False else ""),
        _cell(m.meaning or m.reason),
    ]
    return "| " + " | ".join(cells) + " |"


def membership_exposure(g: GeneratorRecord) -> str | None:
    """One sentence on the membership attack's worst case for a generator, from its measurements'
    details: the people the `local` attacker exposes beyond chance (and the `isolated` one among the most
    isolated people) and the largest empirical epsilon lower bound over attackers (the worst repeat of each);
    None without either."""
    exposed = {
        who: [
            (m.details["exposed"], m.details.get("level"))
            for m in g.measurements
            if m.name == f"membership.{who}.excess_at_fpr" and isinstance(m.details.get("exposed"), dict)
        ]
        for who in ("local", "isolated")
    }
    eps = [
        (m.value, m.name.split(".")[1])
        for m in g.measurements
        if fnmatch.fnmatchcase(m.name, "membership.*.epsilon_lower") and m.value is not None and math.isfinite(m.value)
    ]
    if not any(exposed.values()) and not eps:
        return None
    parts = []
    for who, among, most in (("local", "", ""), ("isolated", "of the most isolated ", "the most isolated ")):
        if exposed[who]:
            worst, level = max(exposed[who], key=lambda e: e[0].get("exposed_beyond_chance", 0))
            unit = "people" if level == "entity" else "records"
            parts.append(
                f"{worst.get('exposed_beyond_chance', 0)} {among}training {unit} exposed beyond chance by the {who} "
                f"attacker (at a threshold that flags {100 * worst.get('fpr', 0):.2g}% of {most}unseen {unit})"
            )
    if eps:
        value, attacker = max(eps)
        who = f"{attacker} attacker" if value > 0 else "no attacker shows any"
        parts.append(f"largest empirical epsilon lower bound {value:.3g} ({who})")
    return "Membership: " + "; ".join(parts) + "."


def canary_section(scorecard: Scorecard) -> list[str]:
    """Which gate caught which leak canary (`suite.informative`), as Markdown lines; none without a privacy gate."""
    if not scorecard.gates:
        return []
    header, rows = matrix(scorecard)
    mark = {"caught": "caught", "passed": "passed", "error": "error", UNINFORMATIVE: f"**{UNINFORMATIVE}**"}
    lines = [
        "",
        "## Which gate caught which leak canary",
        "",
        "A gate that catches no leak canary of this run is **uninformative**: its pass is not evidence. A worst-case "
        "gate counts only a canary that leaks a few people. A release needs one informative gate per attack kind.",
        "",
    ]
    if not scorecard.canaries:
        lines += ["This scenario runs no leak canary (`expect: block`), so no gate can show it fires.", ""]
    lines += ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join([_cell(r[0]), _cell(r[1]), *(mark.get(c, _cell(c)) for c in r[2:])]) + " |" for r in rows
    ]
    return lines


def render_markdown(scorecard: Scorecard) -> str:
    sc = scorecard
    repeats = sc.scenario["spec"].get("repeats", 1) > 1
    lines = [
        f"# Release gate: {_cell(sc.scenario['name'])}",
        "",
        "Every verdict is as expected."
        if sc.summary.all_as_expected
        else "Some verdicts are NOT as expected: " + ", ".join(_cell(u) for u in sc.summary.unexpected),
        "",
        f"Data: {sc.dataset['rows']} rows ({sc.dataset['train_rows']} train, "
        f"{sc.dataset['control_rows']} holdout control, "
        f"{sc.dataset['reference_rows']} holdout reference); sha256 {_code(sc.dataset['sha256'][:16] + '…')}. "
        f"Columns never shown to a generator: {', '.join(_cell(c) for c in sc.metadata['dropped_columns']) or 'none'}.",
        "",
        "| generator | verdict | expected | as expected |",
        "|---|---|---|---|",
    ]
    for g in sc.generators:
        lines.append(f"| {_cell(g.name)} | **{g.verdict}** | {g.expected} | {'yes' if g.as_expected else '**NO**'} |")
    if sc.selection is not None:
        chosen = f"**{_cell(sc.selection.chosen)}**" if sc.selection.chosen else "none"
        lines += ["", f"Selected by {_code(sc.selection.by)}: {chosen} ({_cell(sc.selection.reason)})."]
    lines += canary_section(sc)
    for g in sc.generators:
        lines += ["", f"## {_cell(g.name)}: {g.verdict}", ""]
        if g.reasons:
            lines += [f"Blocked ({', '.join(g.why)}) because:", ""] + [f"- {_cell(r)}" for r in g.reasons]
            advice = [f"- {_cell(m.name)}: {_cell(m.advice)}" for m in g.measurements if m.advice]
            lines += ["", "Only the data's power blocked it; to certify the thresholds:", "", *advice] if advice else []
            lines += [""]
        filled = [f["imputation"]["note"] for f in g.fit_info if "note" in f.get("imputation", {})]
        lines += [x for note in dict.fromkeys(map(str, filled)) for x in (f"Note: {_cell(note)}", "")]
        if exposure := membership_exposure(g):
            lines += [_cell(exposure), ""]
        level = f"interval (ends: one-sided {sc.scenario['spec'].get('confidence', 0.95):.0%} bounds)"
        header = [
            "measurement",
            "kind",
            *(["repeat"] if repeats else []),
            "value",
            level,
            "baseline",
            "threshold",
            "status",
            "meaning",
        ]
        table_head = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        ordered = sorted(  # blocking first, then privacy before utility
            g.measurements, key=lambda m: (not m.status.blocks, spec_of(m.name).kind != "privacy", m.name, m.repeat)
        )
        gated = [m for m in ordered if m.status.value != "ungated"]
        ungated = [m for m in ordered if m.status.value == "ungated"]
        lines += [*table_head, *(_row(m, repeats) for m in gated)] if gated else ["No gated measurement."]
        if ungated:  # collapsed, so the report stays short enough for a pull-request comment
            lines += [
                "",
                f"<details><summary>{len(ungated)} more measurement(s), reported without a gate</summary>",
                "",
            ]
            lines += [*table_head, *(_row(m, repeats) for m in ungated), "", "</details>"]
    lines += [
        "",
        f"Scorecard schema {sc.schema_version}; created {sc.created}; "
        f"split seed {sc.provenance['split_seed']}, seeds {sc.provenance['seeds']}.",
        "",
    ]
    return "\n".join(lines)


def write_markdown(scorecard: Scorecard, run_dir: Path) -> Path:
    path = Path(run_dir) / "report.md"
    write_text_atomic(path, render_markdown(scorecard))
    return path
