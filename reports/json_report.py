"""scorecard.json: the canonical artefact of a run."""

from __future__ import annotations

from pathlib import Path

from suite.disclosure import inert_json
from suite.io import write_text_atomic
from suite.scorecard import Scorecard


def write_json(scorecard: Scorecard, run_dir: Path) -> Path:
    path = Path(run_dir) / "scorecard.json"
    write_text_atomic(path, inert_json(scorecard.model_dump_json(indent=2)) + "\n")
    return path


def read_json(path: Path) -> Scorecard:
    return Scorecard.model_validate_json(Path(path).read_text(encoding="utf-8"))
