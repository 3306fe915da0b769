"""The release folder: the exact tables the gate judged and released, bound to the scorecard by their hashes.

A run writes `RUN/release/<generator>.parquet` (or `.csv`) for each released generator that is not a
calibration yardstick, and records the file's sha256 in the scorecard. `suite verify SCORECARD FILE`
later tells whether a file is one of them (docs/releasing.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from suite.errors import ConfigError
from suite.io import parquet_bytes, write_bytes_atomic
from suite.scorecard import ReleasedTable

RELEASE = "release"
#: A text cell starting with one of these is read as a formula by spreadsheet programs (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe; numbers stay as they are."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype):
            text = values.astype(object)
            risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
            if risky.any():
                out[column] = text.where(~risky, "'" + text.astype(str))
    return out


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """The table as the bytes of a Parquet or CSV file."""
    if fmt == "csv":
        return spreadsheet_safe(frame).to_csv(index=False, lineterminator="\n").encode("utf-8")
    return parquet_bytes(frame)


def write_table(
    frame: pd.DataFrame,
    run_dir: Path,
    *,
    generator: str,
    fmt: Literal["parquet", "csv"],
    params: dict[str, Any],
    seed: int,
    repeat: int,
    data_sha256: str,
) -> ReleasedTable:
    """Write one released table atomically into the run's release folder and describe it."""
    blob = table_bytes(frame, fmt)
    name = _SAFE_NAME.sub("_", generator).strip("._") or "generator"
    path = run_dir / RELEASE / f"{name}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, blob)
    return ReleasedTable(
        generator=generator,
        file=path.relative_to(run_dir).as_posix(),
        format=fmt,
        sha256=hashlib.sha256(blob).hexdigest(),
        rows=len(frame),
        columns=[str(c) for c in frame.columns],
        params=json.loads(json.dumps(params, default=str)),
        seed=seed,
        repeat=repeat,
        data_sha256=data_sha256,
    )


def verify(scorecard_file: Path, table_file: Path) -> tuple[ReleasedTable | None, str]:
    """The released table whose hash equals the file's bytes, or None; with the sentence to print.

    Raises ConfigError for bad input (a file that is missing or is not a scorecard).
    """
    scorecard_file, table_file = Path(scorecard_file), Path(table_file)
    if scorecard_file.is_dir():
        scorecard_file = scorecard_file / "scorecard.json"
    try:
        raw = json.loads(scorecard_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "scorecard not found; give a run folder or its scorecard.json", source=str(scorecard_file)
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"not a scorecard (not JSON: {type(exc).__name__})", source=str(scorecard_file)) from None
    if not isinstance(raw, dict) or "generators" not in raw:
        raise ConfigError("not a scorecard (no `generators`)", source=str(scorecard_file))
    released = raw.get("release")
    if not isinstance(released, list):
        raise ConfigError(
            "this scorecard records no released tables (written before release folders, or nothing was released)",
            source=str(scorecard_file),
        )
    try:
        digest = hashlib.sha256(table_file.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(table_file)) from None
    except IsADirectoryError:
        raise ConfigError("a folder, not a file", source=str(table_file)) from None
    verdicts = {g.get("name"): g.get("verdict") for g in raw["generators"] if isinstance(g, dict)}
    for entry in released:
        table = ReleasedTable.model_validate(entry)
        if table.sha256 == digest:
            verdict = verdicts.get(table.generator)
            if verdict != "release":  # a scorecard edited by hand, or a bug: never vouch for a blocked table
                return None, f"{table_file}: listed for {table.generator}, whose verdict is {verdict}: not released"
            return table, (
                f"{table_file}: released by {scorecard_file} as {table.generator} (verdict release; "
                f"{table.rows} rows, seed {table.seed}, sha256 {digest[:16]}...)"
            )
    return None, f"{table_file}: not a table this scorecard released (sha256 {digest[:16]}... matches none)"


def write_released(
    scenario: Any,
    generators: list[Any],
    records: list[Any],
    run_dir: Path,
    data_sha256: str,
    load_sample: Any,
    *,
    chosen: str | None = None,
) -> tuple[list[ReleasedTable], dict[str, str]]:
    """Write the judged sample of every released generator that is not a calibration yardstick; of the
    candidates (`expect: candidate`), only the one `select` chose (`chosen`).

    `generators` are the plan's components and `records` their scorecard entries, in the same order;
    `load_sample(index, repeat)` returns the sample that task was judged on (None if it was not kept).
    Returns the tables written and, per generator whose table could not be written, why (it then blocks:
    a release that cannot hand over what was judged is not one).
    """
    spec = getattr(scenario, "release", None)
    fmt = getattr(spec, "format", "parquet")
    repeat = getattr(spec, "repeat", 0)
    written: list[ReleasedTable] = []
    failed: dict[str, str] = {}
    for index, (component, record) in enumerate(zip(generators, records, strict=True)):
        if record.verdict != "release" or getattr(component.cls, "calibration", False):
            continue
        if getattr(component.spec, "expect", None) == "candidate" and record.name != chosen:
            continue
        frame = load_sample(index, repeat)
        if frame is None:
            failed[record.name] = (
                f"the judged table of repeat {repeat + 1} could not be kept for the release folder "
                "(it does not fit a Parquet file); nothing was released"
            )
            continue
        written.append(
            write_table(
                frame,
                run_dir,
                generator=record.name,
                fmt=fmt,
                params=component.params,
                seed=scenario.seed + repeat,
                repeat=repeat,
                data_sha256=data_sha256,
            )
        )
    return written, failed
