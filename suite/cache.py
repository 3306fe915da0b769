"""The run folder's cache: fitted generators, synthetic samples and check results under content hashes.

`run --resume DIR` finds here what an interrupted run finished and does only the rest. A task
(one generator, one repeat) is keyed by the hash of everything its output depends on: the data
file's hash, the split, the metadata and roles, the generator's name, parameters and processing,
the seed and the sample size. A check's result is keyed by its task, its name, its parameters
and the confidence level. Every file is written to a temporary name and renamed, so a killed run
leaves only whole files; temporary leftovers are removed when the run resumes. Once a run has
written its reports the cache is removed (`run --keep-cache` keeps it): a fitted `identity` or a
`holdout` sample is real rows. The files are created readable by their owner only.

Layout::

    DIR/cache/<task key>/generator.pkl      the fitted generator (pickle), if it pickles
    DIR/cache/<task key>/generator.sha256   its hash: a pickle is loaded only if it matches
    DIR/cache/<task key>/synthetic.parquet  the sample
    DIR/cache/<task key>/task.json          fit_info, seconds, the sample's hash (written last)
    DIR/cache/<task key>/checks/<key>.json  one check's measurements
    DIR/cache/<task key>/checks/<key>.sha256  their hash: a result is reused only if it matches
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suite.io import parquet_bytes, read_parquet, sha256_frame, write_bytes_atomic, write_text_atomic
from suite.types import Goal, Measurement

CACHE = "cache"


def content_key(payload: Any) -> str:
    """A short, stable hash of a JSON-able description."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Series, pd.Index)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _float(value: float) -> Any:
    return value if math.isfinite(value) else repr(value)


class CachedCheckInvalid(Exception):
    """A cached check result that is unreadable or whose hash does not match the one the suite wrote."""


class TaskCache:
    """The cache folder of one task; every method is a no-op-safe read or an atomic write."""

    def __init__(self, root: Path, key: str) -> None:
        self.dir = Path(root) / CACHE / key
        self.key = key

    # ------------------------------------------------------------------ sample and generator
    def load_sample(self) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """The cached sample and task facts, if the task finished and the sample's hash matches."""
        info_file, sample_file = self.dir / "task.json", self.dir / "synthetic.parquet"
        if not info_file.is_file() or not sample_file.is_file():
            return None
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
            frame = read_parquet(sample_file)
        except (OSError, ValueError):
            return None
        if sha256_frame(frame) != info.get("synthetic_sha256"):
            return None
        return frame, info

    def save_generator(self, generator: Any) -> bool:
        """Pickle the fitted generator with its hash beside it; False if it does not pickle."""
        try:
            blob = pickle.dumps(generator, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an unpicklable generator is simply not cached
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.dir / "generator.pkl", blob)
        write_text_atomic(self.dir / "generator.sha256", hashlib.sha256(blob).hexdigest())
        return True

    def load_generator(self) -> Any | None:
        """The fitted generator this suite pickled here, only if the file's hash matches the one it wrote."""
        blob_file, hash_file = self.dir / "generator.pkl", self.dir / "generator.sha256"
        if not blob_file.is_file() or not hash_file.is_file():
            return None
        blob = blob_file.read_bytes()
        if hashlib.sha256(blob).hexdigest() != hash_file.read_text(encoding="utf-8").strip():
            return None
        return pickle.loads(blob)  # noqa: S301 - written by this suite in this run folder, hash verified

    def save_sample(self, frame: pd.DataFrame, info: dict[str, Any]) -> None:
        """The sample, then the task facts naming its hash (the task counts as done once both exist)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            data = parquet_bytes(frame)
            digest = sha256_frame(frame)
        except Exception:  # noqa: BLE001 - a sample parquet or the hash cannot hold is not cached; resume refits
            return
        write_bytes_atomic(self.dir / "synthetic.parquet", data)
        facts = {**info, "synthetic_sha256": digest}
        write_text_atomic(self.dir / "task.json", json.dumps(facts, default=_jsonable, sort_keys=True))

    # ------------------------------------------------------------------ checks
    def load_check(self, key: str) -> tuple[list[Measurement], float] | None:
        """A check's cached measurements and seconds; None if absent. Raises CachedCheckInvalid when the
        file was changed after the suite wrote it (its hash no longer matches) or cannot be read."""
        path, hash_file = self.dir / "checks" / f"{key}.json", self.dir / "checks" / f"{key}.sha256"
        if not path.is_file():
            return None
        try:
            blob = path.read_bytes()
            expected = hash_file.read_text(encoding="utf-8").strip() if hash_file.is_file() else None
        except OSError as exc:
            raise CachedCheckInvalid(f"its cached result cannot be read ({type(exc).__name__})") from None
        if hashlib.sha256(blob).hexdigest() != expected:
            raise CachedCheckInvalid("its cached result does not match the hash the suite wrote")
        try:
            raw = json.loads(blob)
            return [_measurement(m) for m in raw["measurements"]], float(raw["seconds"])
        except (ValueError, KeyError, TypeError):
            raise CachedCheckInvalid("its cached result cannot be read") from None

    def save_check(self, key: str, measurements: list[Measurement], seconds: float) -> None:
        folder = self.dir / "checks"
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for m in measurements:
            row = asdict(m)
            row["goal"] = m.goal.value
            row["value"] = _float(m.value)
            row["details"] = dict(m.details)
            rows.append(row)
        try:
            text = json.dumps({"measurements": rows, "seconds": seconds}, default=_jsonable)
        except (TypeError, ValueError):
            return  # details that JSON cannot hold: not cached, the check reruns on resume
        write_text_atomic(folder / f"{key}.json", text)
        write_text_atomic(folder / f"{key}.sha256", hashlib.sha256(text.encode("utf-8")).hexdigest())


def _measurement(row: dict[str, Any]) -> Measurement:
    value = row["value"]
    return Measurement(
        name=row["name"],
        value=float(value),
        goal=Goal(row["goal"]),
        ci=None if row["ci"] is None else (float(row["ci"][0]), float(row["ci"][1])),
        baseline=row["baseline"],
        meaning=row["meaning"],
        details=row["details"],
        error=row["error"],
        not_applicable=row.get("not_applicable"),
    )


def remove_leftovers(run_dir: Path) -> int:
    """Delete temporary files a killed run left in the run folder; how many there were."""
    count = 0
    for path in Path(run_dir).rglob(".*.tmp"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def clear(run_dir: Path) -> None:
    """Remove the cache of a finished run: fitted generators and samples can hold real rows (the
    calibration generators return them) and a run folder is often shared as a CI artefact."""
    import shutil

    shutil.rmtree(Path(run_dir) / CACHE, ignore_errors=True)
