"""junit.xml: one test case per gate check per generator, so any CI system shows a blocked release
as failed tests.

A generator expected to be released gets one test case per gated measurement (failed: `risk shown`
or `not shown safe`, the class as the failure's type; error: `error` or `missing`; its declared
kind and attack family as properties) and a `verdict` case. A canary (`expect: block`) is supposed
to fail its gates: it gets only the `verdict` case, which fails if the canary was released, with its
gate results listed in that case's output.
Ungated measurements are not test cases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from suite.declarations import spec_of
from suite.io import write_text_atomic
from suite.reports.text import UNINFORMATIVE, status_of
from suite.scorecard import GeneratorRecord, MeasurementRecord, Scorecard

#: Characters XML 1.0 cannot hold at all; replaced so a stray control character cannot break the file.
_ILLEGAL = {c: "?" for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]}


def _text(value: object) -> str:
    return str(value).translate(_ILLEGAL)


def _value(m: MeasurementRecord) -> str:
    value = "n/a" if m.value is None else f"{m.value:.6g}"
    return value + ("" if m.ci is None else f" [{m.ci[0]:.6g}, {m.ci[1]:.6g}]")


def _case_name(m: MeasurementRecord, repeats: int) -> str:
    return m.name + (f" (repeat {m.repeat + 1})" if repeats > 1 else "")


def _gate_case(suite: ET.Element, classname: str, m: MeasurementRecord, repeats: int, seconds: float) -> str:
    case = ET.SubElement(suite, "testcase", classname=classname, name=_text(_case_name(m, repeats)))
    case.set("time", f"{seconds:.3f}")
    spec = spec_of(m.name)  # the kind (and attack family) its check declares, for CI systems that group by them
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="kind", value=spec.kind)
    if spec.kind == "privacy":
        ET.SubElement(properties, "property", name="attack", value=_text(spec.family or "other"))
    if m.informative is not None:  # did the gate catch a leak canary of this run (suite.informative)?
        ET.SubElement(properties, "property", name="informative", value=str(m.informative).lower())
    detail = f"value {_value(m)}; threshold {m.threshold}; {m.meaning}"
    if m.informative is False:
        detail += f"; {UNINFORMATIVE}: the gate caught no leak canary of this run, so its pass is not evidence"
    if m.status.value in ("risk shown", "not shown safe"):
        detail += f"; {m.advice}" if m.advice else ""
        ET.SubElement(case, "failure", message=_text(m.reason), type=m.status.value).text = _text(detail)
        return "fail"
    if m.status.value in ("error", "missing"):
        ET.SubElement(case, "error", message=_text(m.reason), type=m.status.value).text = _text(m.error or detail)
    elif m.status.value == "not applicable":  # neither pass nor fail: CI shows it skipped
        ET.SubElement(case, "skipped", message=_text(m.reason))
    else:
        ET.SubElement(case, "system-out").text = _text(f"{m.reason}\n{detail}")
    return m.status.value


def _generator_suite(root: ET.Element, scenario: str, g: GeneratorRecord, repeats: int) -> None:
    classname = _text(f"{scenario}.{g.name}")
    suite = ET.SubElement(root, "testsuite", name=classname)
    gated = [m for m in g.measurements if m.status.value != "ungated"]
    check_seconds = {k.removeprefix("check."): v for k, v in g.seconds.items() if k.startswith("check.")}
    statuses = []
    if g.expected == "release":
        check_of = lambda m: m.name.split(".", 1)[0]  # noqa: E731
        cases_per_check = Counter(check_of(m) for m in gated)
        for m in gated:  # a check's time is shared among its gated measurements
            per_case = check_seconds.get(check_of(m), 0.0) / cases_per_check[check_of(m)]
            statuses.append(_gate_case(suite, classname, m, repeats, per_case))
    verdict = ET.SubElement(suite, "testcase", classname=classname, name="verdict")
    verdict.set("time", f"{sum(g.seconds.values()):.3f}")
    summary = f"verdict {g.verdict}, expected {g.expected}"
    gates = "\n".join(f"{status_of(m):14} {_case_name(m, repeats)}: {_value(m)} ({m.threshold})" for m in gated)
    if not g.as_expected:
        message = f"{g.name}: {summary}" + ("; " + "; ".join(g.reasons) if g.reasons else "")
        ET.SubElement(verdict, "failure", message=_text(message), type="verdict").text = _text(gates)
    else:
        ET.SubElement(verdict, "system-out").text = _text(f"{summary}\n{gates}")
    statuses.append("pass" if g.as_expected else "fail")
    suite.set("tests", str(len(statuses)))
    suite.set("failures", str(statuses.count("fail")))
    suite.set("errors", str(sum(s in ("error", "missing") for s in statuses)))
    suite.set("skipped", str(statuses.count("not applicable")))
    suite.set("time", f"{sum(g.seconds.values()):.3f}")


def render_junit(scorecard: Scorecard) -> str:
    """The JUnit XML text of a scorecard (pure function of it)."""
    name = scorecard.scenario["name"]
    repeats = int(scorecard.scenario["spec"].get("repeats", 1))
    root = ET.Element("testsuites", name=_text(f"release gate: {name}"))
    for g in scorecard.generators:
        _generator_suite(root, name, g, repeats)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(scorecard: Scorecard, run_dir: Path) -> Path:
    path = Path(run_dir) / "junit.xml"
    write_text_atomic(path, render_junit(scorecard))
    return path
