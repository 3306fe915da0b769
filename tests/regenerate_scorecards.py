"""The stored scorecards the report tests render (tests/data/scorecards/), and the scenarios that make them.

Rendering tests read these files instead of re-running scenarios, so the default test run stays fast.
Regenerate them after a change to the checks, the generators or the scorecard's schema:

    python -m tests.regenerate_scorecards            # all three, about 3 minutes on 2 cores
    python -m tests.regenerate_scorecards privacy    # one of them

`tests/test_stored_scorecards.py` fails when a stored scorecard no longer validates, carries an older
schema_version, or no longer matches the structure (generators, measurements, verdicts) of a fresh run.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from suite.scorecard import Scorecard
from tests.conftest import METADATA, ROLES, quickstart_utility, write_scenario, write_small_csv

STORED = Path(__file__).resolve().parent / "data" / "scorecards"

HOSTILE_COLUMN = "<script>alert(1)</script>"
HOSTILE_VALUE = "<img src=x onerror=alert(1)>"
HOSTILE_LABEL = "<img src=x onerror=alert(2)>$\\frac{$"  # HTML injection, and mathtext that cannot parse
SOMEWHAT_RARE = "QQSOMEWHATRARE"  # about 28 training rows: shown at min_count 10, folded at 50
VERY_RARE = "ZZRAREWARD"  # 3 rows: the check itself never lets it into the scorecard


def quickstart_scenario(folder: Path, small_csv: Path) -> Path:  # noqa: ARG001 (same signature as the others)
    """The quickstart's utility side (tests/conftest.py `quickstart_utility`) on the whole shipped table."""
    return quickstart_utility(folder)


def privacy_scenario(folder: Path, small_csv: Path) -> Path:
    """Every privacy check on 3,000 rows, a private generator and a copying canary."""
    checks = [
        "collisions",
        "dcr",
        "membership",
        {"name": "singling_out", "params": {"n_attacks": 100}},
        {"name": "inference", "params": {"n_attacks": 200}},
        {"name": "linkability", "params": {"n_attacks": 200}},
    ]
    generators = [{"name": "marginals"}, {"name": "identity", "expect": "block"}]
    return write_scenario(folder, small_csv, checks=checks, generators=generators)


def hostile_scenario(folder: Path, small_csv: Path) -> Path:
    """A column named like a script, category values like an image tag, a generator label with both
    HTML and mathtext in it, and two rare levels of a real column."""
    frame = pd.read_csv(small_csv)
    rng = np.random.default_rng(0)
    frame[HOSTILE_COLUMN] = np.where(rng.random(len(frame)) < 0.5, HOSTILE_VALUE, "plain")
    ward = np.where(rng.random(len(frame)) < 0.5, "ward a", "ward b").astype(object)
    ward[:40] = SOMEWHAT_RARE
    ward[40:43] = VERY_RARE
    frame["ward"] = ward
    data = folder / "hostile.csv"
    frame.to_csv(data, index=False)
    metadata = json.loads(METADATA.read_text())
    metadata["columns"][HOSTILE_COLUMN] = {"sdtype": "categorical"}
    metadata["columns"]["ward"] = {"sdtype": "categorical"}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return write_scenario(
        folder,
        data,
        name="hostile",
        dataset={"path": str(data), "metadata": str(folder / "metadata.json"), "roles": ROLES},
        generators=[{"name": "identity", "label": HOSTILE_LABEL, "expect": "block"}, {"name": "marginals"}],
        checks=["collisions", "fidelity", "dependence", "missingness"],
    )


SCENARIOS: dict[str, Callable[[Path, Path], Path]] = {
    "quickstart": quickstart_scenario,
    "privacy": privacy_scenario,
    "hostile": hostile_scenario,
}


def run(name: str, folder: Path, small_csv: Path) -> tuple[int, Path]:
    """Run scenario `name` through the CLI in `folder`: the exit code and the run folder."""
    from suite.cli import main

    out = folder / "out"
    code = main(["run", str(SCENARIOS[name](folder, small_csv)), "--out", str(out), "--quiet"])
    (run_dir,) = out.iterdir()
    return code, run_dir


def load(name: str) -> Scorecard:
    """A stored scorecard, read with the suite's own reader."""
    from suite.reports import read_json

    return read_json(STORED / f"{name}.json")


def structure(scorecard: Scorecard) -> dict[str, object]:
    """What a change in the checks or generators changes: generators, their verdicts and measurement names."""
    return {
        "schema_version": scorecard.schema_version,
        "generators": [
            (g.name, g.expected, g.verdict, sorted({(m.name, m.repeat) for m in g.measurements}))
            for g in scorecard.generators
        ],
    }


def main(names: list[str]) -> int:
    STORED.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        small_csv = write_small_csv(Path(tmp))
        for name in names or list(SCENARIOS):
            folder = Path(tmp) / name
            folder.mkdir()
            code, run_dir = run(name, folder, small_csv)
            if code not in (0, 1):
                print(f"{name}: the run failed (exit {code})", file=sys.stderr)
                return code
            shutil.copyfile(run_dir / "scorecard.json", STORED / f"{name}.json")
            print(f"{name}: exit {code}, {STORED / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
