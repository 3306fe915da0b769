"""Tables made elsewhere: hand a vendor the training rows only, then gate the table that comes back.

The gate can judge a vendor's table only if the vendor never saw the holdout: a table trained on every
row makes each train-against-control comparison meaningless, and a copy would be released. So
`suite split SCENARIO --out DIR` writes the training rows and a record of the split (`split.json`), the
scenario names that record (`split.record`), and the `file` generator reads the vendor's table. A run
with a `file` generator and no record, or a record of another table or split, is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from suite.dataset import PreparedData
from suite.errors import ConfigError
from suite.io import write_bytes_atomic, write_text_atomic
from suite.release import table_bytes

RECORD = "split.json"


def handover_table(data: PreparedData) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows a table's maker gets and their columns' sdtypes: the training rows (generator-facing columns, no
    identifiers); for a longitudinal table every visit of the training entities, with the entity column holding
    pseudonyms (1, 2, ... in order of first appearance: the maker needs who is who, not the real ids)."""
    if data.long is None:
        return data.train, {c: s["sdtype"] for c, s in data.metadata.columns.items()}
    long = data.long
    pseudonyms = pd.Series(pd.factorize(long.train_entities, use_na_sentinel=False)[0] + 1, name=long.entity)
    table = pd.concat([pseudonyms, long.train.reset_index(drop=True)], axis=1)
    return table, {long.entity: "id", **{c: s["sdtype"] for c, s in long.metadata.columns.items()}}


def write_split(data: PreparedData, split: dict[str, Any], out: Path, *, fmt: str = "csv") -> Path:
    """The training rows (`handover_table`) and the record of the split."""
    table, columns = handover_table(data)
    out.mkdir(parents=True, exist_ok=True)
    train_file = out / f"train.{fmt}"
    if fmt == "csv":  # the real rows exactly as they are: not made spreadsheet-safe like a released table
        blob = table.to_csv(index=False, lineterminator="\n").encode("utf-8")
    else:
        blob = table_bytes(table, "parquet")
    write_bytes_atomic(train_file, blob)
    record = {
        "data_sha256": data.fingerprint["sha256"],
        "holdout": split["holdout"],
        "seed": split["seed"],
        "train_file": train_file.name,
        "train_sha256": hashlib.sha256(blob).hexdigest(),
        "train_rows": len(table),
        "columns": columns,
    }
    if data.long is not None:  # split by entity: every visit of a training entity, none of another
        record |= {"entity": data.long.entity, "train_entities": len(data.train), "record": "visits"}
    path = out / RECORD
    write_text_atomic(path, json.dumps(record, indent=2))
    return path


def check_recorded(record_path: Path | None, data: PreparedData, split: dict[str, Any], where: str) -> None:
    """A scenario gating a table made elsewhere must name the split its maker was given, and it must be this one."""
    if record_path is None:
        raise ConfigError(
            f"{where}: a `file` generator gates a table made outside the suite, which is only fair if its maker never "
            "saw the holdout: run `suite split SCENARIO --out DIR`, hand over DIR's training table, and set "
            "split.record to DIR/split.json"
        )
    try:
        record = json.loads(Path(record_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"split.record: {record_path} not found; run `suite split` first") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ConfigError(f"split.record: {record_path} is not a split record written by `suite split`") from None
    if not isinstance(record, dict):
        raise ConfigError(f"split.record: {record_path} is not a split record written by `suite split`")
    if record.get("data_sha256") != data.fingerprint["sha256"]:
        raise ConfigError(
            f"split.record: {record_path} was written for another version of the dataset; the training rows handed "
            "over may include people of this holdout. Run `suite split` again and have the table remade"
        )
    if record.get("holdout") != split["holdout"] or record.get("seed") != split["seed"]:
        raise ConfigError(
            f"split.record: {record_path} records split holdout {record.get('holdout')} seed {record.get('seed')}, "
            f"but the scenario splits holdout {split['holdout']} seed {split['seed']}; use the recorded split"
        )
