"""``ml.run_local`` / ``airflow mlops run-local``: a whole DAG in this process, on a sample of its
``ml.sql`` sources, with artifacts in a scratch root (the SQLite warehouse of the SQL tests)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from airflow_runner import load_dag
from conftest import airflow, requires_provider_cli

from airflow_mlops_provider import ml
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.catalog import records
from airflow_mlops_provider.local.inputs import ReplayInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

DAG = "mlops_replay_sample"
ROWS = 50


def orders() -> pd.DataFrame:
    return pd.DataFrame({"id": range(ROWS), "amount": [float(i) * 1.5 for i in range(ROWS)]})


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A SQLite database with an ``orders`` table, as the Airflow connection ``warehouse``."""
    path = tmp_path / "warehouse.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        orders().to_sql("orders", conn, index=False)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"sqlite:///{str(path).lstrip('/')}")
    yield path


def store_objects() -> set[str]:
    return {info.relative for info in ArtifactManager.configured().store.walk("")}


def extracted(run_id: str, root: str) -> pd.DataFrame:
    """The extract's output, read from the scratch root its XCom row points into."""
    (row,) = records.xcoms(DAG, run_id, "orders", key="return_value")
    assert all(ref.uri.startswith(root + "/") for ref in row.references), row.value
    settings = dataclasses.replace(ArtifactManager.configured().settings, artifact_root=root)
    return ArtifactManager(settings).load(row.value)


def test_sql_sources_are_limited_and_only_the_scratch_root_is_written(
    store: str, warehouse: Path, tmp_path: Path
) -> None:
    before = store_objects()
    scratch = tmp_path / "scratch"

    run = ml.run_local(load_dag(DAG), sample=7, artifact_root=scratch)

    assert run.state == "success", run.task_states
    assert run.task_states == {"orders": "success", "summarize": "success"}
    assert run.artifact_root == scratch.as_uri() and run.sample == 7
    frame = extracted(run.run_id, run.artifact_root)
    assert list(frame["id"]) == list(range(7))
    (summary,) = records.xcoms(DAG, run.run_id, "summarize", key="return_value")
    assert summary.value == {"rows": 7, "total": float(orders()["amount"].head(7).sum())}
    assert any(scratch.rglob("*.arrow")), "the extract's table is in the scratch root"
    assert store_objects() == before, "nothing was written to the configured store"
    assert ArtifactManager.configured().settings.artifact_root == store, "the configured root is back"

    # Its tasks replay with the scratch root as the artifact root, and say so without it.
    with pytest.raises(ReplayInputError, match=r"outside the configured artifact root .* scratch root"):
        ml.replay(DAG, "summarize", run.run_id)
    scratch_manager = ArtifactManager(
        dataclasses.replace(ArtifactManager.configured().settings, artifact_root=run.artifact_root)
    )
    assert ml.replay(DAG, "summarize", run.run_id, manager=scratch_manager).value == summary.value


@requires_provider_cli
def test_without_a_sample_and_from_the_cli(warehouse: Path) -> None:
    run = ml.run_local(load_dag(DAG), sample=None)
    try:
        assert run.state == "success" and len(extracted(run.run_id, run.artifact_root)) == ROWS
        assert "/mlops-local-" in run.artifact_root, "a new temporary folder by default"
    finally:
        shutil.rmtree(Path(run.artifact_root.removeprefix("file://")), ignore_errors=True)

    root = warehouse.parent / "cli"
    proc = airflow("mlops", "run-local", DAG, "--sample", "5", "--artifact-root", str(root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Ran {DAG} locally (ml.sql sources limited to 5 rows): run manual__" in proc.stdout
    assert "  orders: success" in proc.stdout and "  summarize: success" in proc.stdout
    assert f"  artifacts: {root.as_uri()}" in proc.stdout
    run_id = proc.stdout.split(": run ", 1)[1].split()[0]
    assert len(extracted(run_id, root.as_uri())) == 5


#: A query whose rows after the 1000th fail when the database computes them, per database.
POISONED = {
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)\n"
        "SELECT i AS id, CASE WHEN i <= 1000 THEN i ELSE abs(-9223372036854775807 - 1) END AS v FROM n\n"
        "-- a trailing comment;\n"
    ),
    "postgres": (
        "SELECT i AS id, CASE WHEN i <= 1000 THEN i ELSE 1 / (i - i) END AS v "
        "FROM generate_series(1, 100000) AS i;"
    ),
}


@pytest.mark.parametrize("database", sorted(POISONED))
def test_a_sampled_extract_makes_the_database_return_only_the_sample(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sample=N the database itself stops after N rows: a query whose later rows fail still
    samples (without the LIMIT, PostgreSQL's client-side cursor would compute and fetch them all)."""
    from conftest import POSTGRES_URL, postgres_available

    from airflow_mlops_provider.operators import SqlExtractOperator
    from airflow_mlops_provider.operators.sql import sampled

    if database == "postgres":
        if not postgres_available():
            pytest.skip("start PostgreSQL on 127.0.0.1:5432 (trust auth, database test) to run this test")
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", POSTGRES_URL)
    else:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"sqlite:///{str(tmp_path / 'w.sqlite').lstrip('/')}")
    extract = SqlExtractOperator(task_id="poisoned", sql=POISONED[database], conn_id="warehouse")
    with sampled(7):
        frame = extract.execute({})
    assert frame["id"].tolist() == list(range(1, 8)) and frame["v"].tolist() == list(range(1, 8))
    with pytest.raises(Exception, match=r"(?i)integer overflow|division by zero"):
        extract.execute({})  # not sampled: the whole query runs, and fails
