"""Loading, typing and splitting real data; the input file is never touched."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from suite.dataset import DataWarning, load_dataset, prepare, split_indices
from suite.errors import ConfigError
from suite.io import read_table, sha256_file
from suite.metadata import Roles, read_metadata
from tests.conftest import DATA, IDENTIFIERS, METADATA, ROLES


@pytest.fixture(scope="module")
def prepared():
    return prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


def test_split_is_by_patient_and_the_holdout_halves_are_disjoint(prepared, covid):
    train, control = set(prepared.train_entities), set(prepared.control_entities)
    assert not train & control
    n = len(prepared.train) + len(prepared.control) + len(prepared.reference)
    assert n == len(covid)
    assert abs(len(prepared.control) - len(prepared.reference)) < 0.05 * len(covid)
    assert 0.25 < (len(prepared.control) + len(prepared.reference)) / n < 0.35


def test_split_indices_partition_rows_and_keep_entities_whole():
    groups = pd.Series(np.repeat(np.arange(100), 3))
    parts = split_indices(300, holdout=0.3, seed=4, groups=groups)
    assert sorted(np.concatenate(parts).tolist()) == list(range(300))
    owners = [set(groups.iloc[p]) for p in parts]
    assert not (owners[0] & owners[1]) and not (owners[0] & owners[2]) and not (owners[1] & owners[2])
    again = split_indices(300, holdout=0.3, seed=4, groups=groups)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = split_indices(300, holdout=0.3, seed=5, groups=groups)
    assert not np.array_equal(parts[0], other[0])


def test_identifiers_and_the_entity_never_reach_generators(prepared):
    for frame in (prepared.train, prepared.control, prepared.reference):
        assert not set(IDENTIFIERS) & set(frame.columns)
    assert set(prepared.metadata.columns) == set(prepared.train.columns)
    assert prepared.metadata.roles.secrets == ("result", "ct_result", "payor_group")


def test_input_file_is_unchanged_and_formats_agree(tmp_path, covid):
    before = sha256_file(DATA)
    frame, _, _ = load_dataset(DATA, metadata_path=METADATA, roles=Roles())
    assert sha256_file(DATA) == before
    head = covid.head(300)
    head.to_csv(tmp_path / "t.csv", index=False)
    head.to_excel(tmp_path / "t.xlsx", index=False)
    for name in ("t.csv", "t.xlsx"):
        loaded, _, _ = load_dataset(tmp_path / name, metadata_path=METADATA, roles=Roles())
        pd.testing.assert_frame_equal(
            loaded[["age", "ct_result", "clinic_name"]],
            frame.head(300)[["age", "ct_result", "clinic_name"]],
            check_dtype=False,
        )


def test_inferred_metadata_carries_no_data_values(covid):
    _, metadata, inferred = load_dataset(DATA, metadata_path=None, roles=Roles.from_dict(ROLES))
    assert inferred
    text = json.dumps(metadata.to_json_dict())
    assert "clinical lab" not in text and "range_values" not in text
    assert metadata.sdtype("test_id") == "categorical"  # SDV guesses `id` from the name; it repeats
    assert metadata.sdtype("age") == "numerical"


def test_numbers_stored_as_text_are_read_and_junk_is_named(tmp_path, covid):
    frame = covid.head(200).copy()
    frame["age"] = frame["age"].astype(str)
    frame.to_csv(tmp_path / "ok.csv", index=False)
    loaded, _, _ = load_dataset(tmp_path / "ok.csv", metadata_path=METADATA, roles=Roles())
    assert pd.api.types.is_float_dtype(loaded["age"])
    frame.loc[frame.index[3], "age"] = "three"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ConfigError, match="'age' is declared numerical"):
        load_dataset(tmp_path / "bad.csv", metadata_path=METADATA, roles=Roles())


def test_small_holdout_and_empty_tables_are_refused(tmp_path, covid):
    covid.head(60).to_csv(tmp_path / "tiny.csv", index=False)
    with pytest.warns(DataWarning, match="look like personal data"), pytest.raises(ConfigError, match="holdout"):
        prepare(tmp_path / "tiny.csv", metadata_path=METADATA, roles=Roles(), holdout=0.3, seed=0)
    covid.head(0).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ConfigError, match="empty"):
        load_dataset(tmp_path / "empty.csv", metadata_path=METADATA, roles=Roles())


def test_metadata_formats(tmp_path):
    single = read_metadata(METADATA)
    multi = tmp_path / "multi.json"
    multi.write_text(json.dumps({"tables": {"covid": single.to_sdv_dict()}, "METADATA_SPEC_VERSION": "V1"}))
    assert read_metadata(multi).columns == single.columns
    broken = tmp_path / "broken.json"
    broken.write_text('{"columns": {"age": {}}}')
    with pytest.raises(ConfigError, match="columns.age"):
        read_metadata(broken)


@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_csv_separator_is_sniffed_and_values_holding_other_separators_stay_whole(tmp_path, covid, sep):
    head = covid.head(200)[["age", "gender", "clinic_name", "result"]].copy()
    head["clinic_name"] = head["clinic_name"] + "; ward|2"  # text holding the other separators
    head.to_csv(tmp_path / "t.csv", index=False, sep=sep)
    frame = read_table(tmp_path / "t.csv")
    assert frame.attrs["delimiter"] == sep
    pd.testing.assert_frame_equal(frame, head.reset_index(drop=True), check_dtype=False)


def test_metadata_names_are_read_in_nfc_and_personal_sdtypes_are_known(tmp_path):
    import unicodedata

    path = tmp_path / "m.json"
    decomposed = unicodedata.normalize("NFD", "âge")
    path.write_text(
        json.dumps(
            {
                "columns": {decomposed: {"sdtype": "numerical"}, "mail": {"sdtype": "email"}},
                "roles": {"quasi_identifiers": [decomposed]},
            }
        ),
        encoding="utf-8",
    )
    metadata = read_metadata(path)
    assert list(metadata.columns) == ["âge", "mail"]
    assert metadata.roles.quasi_identifiers == ("âge",)
    assert metadata.sdtype("mail") == "email"


def test_parquet_bytes_are_pandas_own_and_the_cached_sample_reads_back(tmp_path):
    """`parquet_bytes` (the task cache's and the released tables' writer, which hands pyarrow's freed pages back)
    writes the bytes `to_parquet` wrote before, on census rows (text, integers, floats, missing values); the
    task cache reads its sample back with the same hash."""
    import io

    import pyarrow as pa

    from suite.cache import TaskCache
    from suite.io import parquet_bytes, read_parquet, sha256_frame
    from suite.release import table_bytes

    census = read_parquet(DATA.parent / "census_kdd.parquet").iloc[:20_000].reset_index(drop=True)
    census.loc[::97, "age"] = np.nan  # a column with missing values too
    pool = pa.default_memory_pool()
    for frame in (census, census.sample(frac=1.0, random_state=0).reset_index(drop=True)):
        old = io.BytesIO()
        frame.to_parquet(old, index=False)
        assert parquet_bytes(frame) == old.getvalue() == table_bytes(frame, "parquet")
        assert pa.default_memory_pool().backend_name == pool.backend_name  # the pool is the one before
    cache = TaskCache(tmp_path, "k")
    cache.save_sample(census, {"rows": len(census)})
    frame, info = cache.load_sample()
    assert info["synthetic_sha256"] == sha256_frame(census) == sha256_frame(frame)
    pd.testing.assert_frame_equal(frame, census)
