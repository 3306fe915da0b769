"""One search split into (query block x reference block) tasks on a Dask cluster: the one-process answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from suite.errors import ConfigError
from suite.neighbors import Encoded, GowerEncoder, nearest
from tests.conftest import ROOT

distributed = pytest.importorskip("distributed")

from suite.neighbors_dask import blocked_nearest, on_cluster, settings  # noqa: E402

NUMERICAL = ["age", "pan_day", "ct_result"]  # ct_result has missing values; few distinct values: many ties
CATEGORICAL = ["gender", "clinic_name", "result", "demo_group", "payor_group", "patient_class", "drive_thru_ind"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def tables(covid: pd.DataFrame) -> tuple[Encoded, Encoded]:
    """500 query and 700 reference rows of the quickstart table (missing numbers and categories, many ties)."""
    rows = covid.sample(1200, random_state=0)
    enc = GowerEncoder(numerical=NUMERICAL, categorical=CATEGORICAL).fit(covid)
    query, reference = enc.transform(rows.iloc[:500]), enc.transform(rows.iloc[500:])
    assert np.isnan(query.numerical).any() and (reference.categorical == -1).any()
    return query, reference


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    assert a[0].dtype == b[0].dtype == np.float64 and a[1].dtype == b[1].dtype == np.int64
    assert a[0].tobytes() == b[0].tobytes()  # the same distances, bit for bit
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("k", [1, 10])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_blocks_give_the_one_process_answer(client, tables, k: int, exclude_self: bool) -> None:
    query, reference = tables
    if exclude_self:
        reference = query
    one = nearest(query, reference, k=k, exclude_self=exclude_self)
    # blocks of 97 rows: 6 x 8 tasks, shorter blocks at the ends
    _same(blocked_nearest(client, query, reference, k=k, exclude_self=exclude_self, block_rows=97), one)
    assert (np.diff(one[0], axis=1) == 0).any() or k == 1  # ties occur: their order is checked too
    if k == 10:  # blocks of 7 rows, fewer than k: padded partials (on 70 rows, 10 x 10 tasks)
        small_q = _rows(query, 70)
        small_r = small_q if exclude_self else _rows(reference, 70)
        small = nearest(small_q, small_r, k=k, exclude_self=exclude_self)
        _same(blocked_nearest(client, small_q, small_r, k=k, exclude_self=exclude_self, block_rows=7), small)


def _rows(enc: Encoded, n: int) -> Encoded:
    return Encoded(enc.numerical[:n], enc.categorical[:n], medians=enc.medians)


def test_euclidean_and_the_numpy_path_too(client, tables) -> None:
    """Euclidean: one process orders by the squared distance (two squares may share a root); so must the merge."""
    query, reference = tables
    for options in ({"metric": "euclidean"}, {"backend": "numpy"}, {"metric": "euclidean", "exclude_self": True}):
        ref = query if options.get("exclude_self") else reference
        one = nearest(query, ref, k=3, **options)
        _same(blocked_nearest(client, query, ref, k=3, block_rows=150, **options), one)


def _search(payload: tuple[Encoded, Encoded, int]) -> tuple[np.ndarray, np.ndarray]:
    query, reference, k = payload
    return nearest(query, reference, k=k)


def test_a_task_on_the_cluster_hands_large_searches_over(client, tables) -> None:
    query, reference = tables
    one = nearest(query, reference, k=2)
    task = on_cluster(_search, pairs=len(query) * len(reference) - 1, block_rows=200)
    with distributed.get_task_stream(client) as stream:
        _same(client.submit(task, (query, reference, 2), pure=False).result(), one)
    blocks = [t for t in stream.data if str(t["key"]).startswith("suite-nearest-")]
    assert len(blocks) == 3 * 4  # 500 query rows x 700 reference rows in blocks of 200
    small = on_cluster(_search, pairs=len(query) * len(reference), block_rows=200)  # not above: one process
    with distributed.get_task_stream(client) as stream:
        _same(client.submit(small, (query, reference, 2), pure=False).result(), one)
    assert not [t for t in stream.data if str(t["key"]).startswith("suite-nearest-")]


def test_bad_settings_name_the_variable() -> None:
    assert settings({}) == (2e9, 25_000)
    assert settings({"SUITE_BLOCKED_PAIRS": "1e6", "SUITE_BLOCK_ROWS": "5000"}) == (1e6, 5000)
    assert settings({"SUITE_BLOCKED_PAIRS": "inf"})[0] == float("inf")  # never split
    for env, name in (
        ({"SUITE_BLOCKED_PAIRS": "lots"}, "SUITE_BLOCKED_PAIRS"),
        ({"SUITE_BLOCK_ROWS": "0"}, "SUITE_BLOCK_ROWS"),
        ({"SUITE_BLOCK_ROWS": "inf"}, "SUITE_BLOCK_ROWS"),
        ({"SUITE_BLOCKED_PAIRS": "nan"}, "SUITE_BLOCKED_PAIRS"),
    ):
        with pytest.raises(ConfigError, match=f"environment variable {name}: expected a number"):
            settings(env)


def test_a_local_run_does_not_import_distributed() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from suite.executors import execute\n"
        "from suite.neighbors import Encoded, nearest\n"
        "import suite.runner\n"
        "q = Encoded(np.random.default_rng(0).random((300, 3)), np.zeros((300, 1), np.int32))\n"
        "[(_, (d, i))] = list(execute(lambda e: nearest(e, e, k=2), [q]))\n"
        "assert d.shape == (300, 2)\n"
        "assert 'distributed' not in sys.modules, 'distributed imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


@pytest.mark.slow
def test_200k_rows_on_two_worker_processes() -> None:
    """200,000 census rows against themselves (20 columns, missing categories), top-1 without the row itself, in
    blocks of 50,000 on a LocalCluster of 2 worker processes: the one-process answer (2.5-3 minutes on 2 cores)."""
    census = pd.read_parquet(ROOT / "data" / "census_kdd.parquet")
    rows = census.sample(200_000, replace=len(census) < 200_000, random_state=0).reset_index(drop=True)
    enc = GowerEncoder(numerical=CENSUS_NUMERICAL, categorical=CENSUS_CATEGORICAL).fit(rows)
    table = enc.transform(rows)
    assert (table.categorical == -1).any()
    one = nearest(table, table, k=1, exclude_self=True)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:  # fmt: skip
        _same(blocked_nearest(c, table, table, k=1, exclude_self=True, block_rows=50_000), one)


CENSUS_NUMERICAL = [
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "weeks_worked_in_year",
]
CENSUS_CATEGORICAL = [
    "class_of_worker", "education", "marital_stat", "major_industry_code", "major_occupation_code", "race",
    "hispanic_origin", "sex", "tax_filer_stat", "citizenship", "country_of_birth_self", "migration_code_change_in_msa",
    "detailed_household_summary_in_household", "income_gt_50k",
]  # fmt: skip


def test_a_run_on_the_cluster_splits_its_searches_and_measures_the_same(client, small_csv, tmp_path, monkeypatch):
    """`suite run --executor dask --address ...` with a low SUITE_BLOCKED_PAIRS: block tasks ran, same scorecard."""
    from suite.cli import main
    from tests.conftest import write_scenario

    path = write_scenario(tmp_path, small_csv, generators=[{"name": "marginals"}], checks=["dcr"])

    def measurements(out: Path) -> list[tuple]:
        (card,) = out.glob("*/scorecard.json")
        return [
            (m["name"], m["value"], m["ci"])
            for g in json.loads(card.read_text())["generators"]
            for m in g["measurements"]
        ]

    code = main(["run", str(path), "--out", str(tmp_path / "one"), "--quiet", "--no-plan"])
    monkeypatch.setenv("SUITE_BLOCKED_PAIRS", "1e5")  # the dcr searches are about 2,100 x 2,100 rows
    monkeypatch.setenv("SUITE_BLOCK_ROWS", "800")
    args = ["run", str(path), "--out", str(tmp_path / "cluster"), "--quiet", "--no-plan", "--executor", "dask"]
    with distributed.get_task_stream(client) as stream:
        assert main([*args, "--address", client.scheduler.address]) == code
    assert [t for t in stream.data if str(t["key"]).startswith("suite-nearest-")]
    one = measurements(tmp_path / "one")
    assert measurements(tmp_path / "cluster") == one
    assert 0.2 < dict((name, value) for name, value, _ in one)["dcr.share_closer_to_train"] < 0.8  # not a copy's 1.0
