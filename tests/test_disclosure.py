"""No output file of a run names a rare level, shows an extreme real value or carries raw HTML.

One real run (1,500 rows of the shipped quickstart table) with a planted outlier (age 117.25), a
clinic held by one person, a column name and a generator label holding HTML, the `strict` preset
(min_count 20) and a fidelity check asking for `min_count: 1`; then every file of the run folder
is searched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from suite.disclosure import RARE, Rare, coded_range
from tests.conftest import METADATA, ROLES, write_scenario

OUTLIER = 117.25
ONE_PERSON = "QQONEPERSONCLINIC"
HOSTILE_COLUMN = "</details><script>alert(3)</script>"
HOSTILE_LABEL = "<img src=x onerror=alert(4)>"
RAW_TAGS = ("<img src=x", "<script>alert", "</details><script>")
OUTPUTS = ("scorecard.json", "report.md", "report.html", "junit.xml", "metadata.json", "run.json")
STRICT = 20  # MIN_COUNT["strict"]
PLANTED_ROLES = {**ROLES, "identifiers": [*ROLES["identifiers"], HOSTILE_COLUMN]}  # so report.md names it


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, small_csv: Path) -> tuple[pd.DataFrame, Path]:
    """The real rows as written (outlier and rare clinic planted), and the finished run folder."""
    from suite.cli import main

    folder = tmp_path_factory.mktemp("disclosure")
    frame = pd.read_csv(small_csv).head(1500)
    frame.loc[frame.index[:3], "age"] = OUTLIER  # three people: at least one lands in train
    frame.loc[frame.index[5], "clinic_name"] = ONE_PERSON
    frame[HOSTILE_COLUMN] = np.where(np.arange(len(frame)) % 2, "a", "b")
    data = folder / "planted.csv"
    frame.to_csv(data, index=False)
    metadata = json.loads(METADATA.read_text())
    metadata["columns"][HOSTILE_COLUMN] = {"sdtype": "categorical"}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    scenario = write_scenario(
        folder,
        data,
        name="disclosure",
        preset="strict",
        dataset={"path": str(data), "metadata": str(folder / "metadata.json"), "roles": PLANTED_ROLES},
        generators=[{"name": "identity", "label": HOSTILE_LABEL, "expect": "block"}, {"name": "marginals"}],
        checks=[
            {"name": "fidelity", "params": {"min_count": 1, "test_rows": 1000}},
            "missingness",
            "dependence",
            "structure",
            "utility",
            "collisions",
            "rules",
        ],
    )
    code = main(["run", str(scenario), "--out", str(folder / "out"), "--quiet"])
    assert code in (0, 1), code
    (run_dir,) = (folder / "out").iterdir()
    return frame, run_dir


def _strings(value: object) -> list[str]:
    """Every string of a JSON value, dictionary keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


def test_no_output_holds_the_outlier_or_the_rare_level(planted):
    frame, run_dir = planted
    from suite.dataset import prepare
    from suite.metadata import Roles

    data = prepare(
        run_dir.parent.parent / "planted.csv",
        metadata_path=run_dir.parent.parent / "metadata.json",
        roles=Roles.from_dict(PLANTED_ROLES),
        holdout=0.3,
        seed=0,
    )
    assert (data.train["age"] == OUTLIER).any()  # the identity canary copies it: not vacuous
    scorecard = json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))
    assert scorecard["disclosure"]["min_count"] == STRICT
    for name in OUTPUTS:
        text = (run_dir / name).read_text(encoding="utf-8")
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # pictures hold no text to search
        assert not re.search(r"(?<![\d.])117\.2", text), name
        assert ONE_PERSON not in text, name
    # The checks did report distributions, folded and top-coded: the age histogram ends at or
    # below the 20th largest real age, and no clinic of fewer than 20 real rows is named.
    fidelity = next(
        m for g in scorecard["generators"] for m in g["measurements"] if m["name"] == "fidelity.columns_passed"
    )
    age = fidelity["details"]["by_column"]["age"]["distribution"]
    real_ages = pd.concat([data.train, data.control, data.reference])["age"].to_numpy(dtype=float)
    low, high = coded_range(real_ages, STRICT)
    assert low - 1e-6 <= age["edges"][0] and age["edges"][-1] <= high + 1e-6
    clinics = fidelity["details"]["by_column"]["clinic_name"]["distribution"]["levels"]
    counts = frame["clinic_name"].value_counts()
    rare = set(counts.index[counts < STRICT])
    assert len(clinics) > 2 and not rare & set(clinics)
    # Nowhere in the scorecard: a rare clinic as a string, or an age beyond the coded range.
    strings = set(_strings(scorecard))
    assert not (rare - set(counts.index[counts >= STRICT])) & strings
    extreme = {float(a) for a in real_ages if a > high and a != int(a)}
    assert extreme and not extreme & set(_numbers(scorecard))


def test_reports_carry_no_raw_html_from_labels_or_column_names(planted):
    _, run_dir = planted
    for name in OUTPUTS:
        text = (run_dir / name).read_text(encoding="utf-8")
        for tag in RAW_TAGS:
            assert tag not in text, (name, tag)
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(4)&gt;" in md  # the label is shown, inert
    assert "&lt;/details&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in md  # the column name too
    assert md.count("<details>") == md.count("</details>")  # only the report's own blocks
    for name in ("scorecard.json", "metadata.json"):  # escaped as JSON: read back, the names are exact
        text = (run_dir / name).read_text(encoding="utf-8")
        assert HOSTILE_COLUMN in _strings(json.loads(text)), name


def test_rare_levels_are_scrubbed_from_any_details(small_data):
    rare = Rare.of([small_data.train, small_data.control, small_data.reference], small_data.metadata.discrete, 20)
    counts = pd.concat([small_data.train, small_data.control, small_data.reference])["clinic_name"].value_counts()
    one, common = str(counts.index[-1]), str(counts.index[0])
    assert counts.iloc[-1] < 20 <= counts.iloc[0]
    details = {"levels": [common, one], one: 0.1, "feature": f"clinic_name={one}", "n": 3}
    assert rare.scrub(details) == {
        "levels": [common, RARE],
        RARE: 0.1,
        "feature": f"clinic_name={RARE}",
        "n": 3,
    }
    assert rare.redact(f"ValueError: unexpected value {one!r} in 'clinic_name'") == (
        f"ValueError: unexpected value '{RARE}' in 'clinic_name'"
    )


def test_coded_range_is_the_min_count_th_order_statistic():
    values = np.array([np.nan, *range(100)], dtype=float)
    assert coded_range(values, 10) == (9.0, 90.0)
    assert coded_range(np.arange(5.0), 10) == (2.0, 2.0)  # too few values: the mean, nobody's extreme


def test_metadata_file_drops_entries_that_hold_real_values(tmp_path):
    from suite.metadata import Metadata, write_metadata

    metadata = Metadata(
        columns={
            "age": {"sdtype": "numerical", "range_min": 0.0, "range_max": OUTLIER},
            "clinic": {"sdtype": "categorical", "order": ["a", ONE_PERSON]},
            HOSTILE_COLUMN: {"sdtype": "categorical"},
        }
    )
    write_metadata(metadata, tmp_path / "metadata.json")
    text = (tmp_path / "metadata.json").read_text(encoding="utf-8")
    assert "117.25" not in text and ONE_PERSON not in text and "<script>" not in text
    assert json.loads(text)["columns"] == {
        "age": {"sdtype": "numerical"},
        "clinic": {"sdtype": "categorical"},
        HOSTILE_COLUMN: {"sdtype": "categorical"},
    }
