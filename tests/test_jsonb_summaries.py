"""What the XCom row says about an artifact is JSONB-safe; the artifact itself stays exact.

PostgreSQL's JSONB rejects ``\\u0000``. A value holding NUL characters never goes inline (it is
stored in the object store), but its reference's summary and details (dict keys, column names, an
object's repr) are copied into the row: there NUL is written as the text ``\\x00``. The real
PostgreSQL metadata DB runs in a separate pytest session (Airflow binds its DB at import time).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from conftest import DAGS_DIR, TESTS_DIR, requires_postgres, run_in_postgres_session

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Producer

DAG = "mlops_nul_summaries"
DAG_FILE = r"""
import pandas as pd
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_nul_summaries():
    @task  # no "-> dict": Airflow would push each key as an XCom key of its own (multiple_outputs)
    def nul_key():
        return {"a\x00b": 1}

    @task
    def nul_column() -> pd.DataFrame:
        return pd.DataFrame({"x\x00y": [1, 2, 3], "ok": ["p\x00q", "r", "s"]})

    @task
    def nul_text():
        return ["v\x00w", {"k": "\x00"}]

    nul_key()
    nul_column()
    nul_text()


mlops_nul_summaries()
"""


class Labelled:
    """A pickled object whose repr (recorded in the reference's details) holds a NUL character."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Labelled) and other.label == self.label

    def __repr__(self) -> str:
        return f"Labelled({self.label})"


def _assert_same(loaded: Any, value: Any) -> None:
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded, value)
    else:
        assert loaded == value


@pytest.mark.parametrize(
    "value",
    [
        {"a\x00b": 1},
        ["v\x00w", {"k": "\x00"}],
        pd.DataFrame({"x\x00y": [1, 2, 3], "ok": ["p\x00q", "r", "s"]}),
        Labelled("n\x00l"),
    ],
    ids=["dict-key", "strings", "dataframe-column", "object-repr"],
)
def test_the_row_holds_no_nul_and_the_value_comes_back_exactly(
    manager: ArtifactManager, producer: Producer, value: Any
) -> None:
    from airflow_mlops_provider.artifacts import codec
    from airflow_mlops_provider.artifacts.manifest import Manifest

    row = manager.dump(value, producer)
    text = json.dumps(row)  # what Airflow stores in the row (a JSONB column on PostgreSQL)
    assert "\\u0000" not in text and "\x00" not in text, text
    [(_, reference)] = list(codec.iter_references(row))
    manifest = manager.store.get_bytes(reference["uri"].rsplit("/", 1)[0] + "/0.manifest.json")
    assert Manifest.from_json(manifest).reference.sha256 == reference["sha256"]
    _assert_same(manager.load(row), value)


def test_summaries_show_where_the_nul_was(manager: ArtifactManager, producer: Producer) -> None:
    row = manager.dump({"a\x00b": 1}, producer)
    assert row["details"]["keys"] == ["a\\x00b"]
    frame = manager.dump(pd.DataFrame({"x\x00y": [1]}), producer)
    assert "x\\x00y" in frame["details"]["dtypes"]
    assert "Labelled(n\\x00l)" in manager.dump(Labelled("n\x00l"), producer)["details"]["repr"]


def test_jsonb_safe_keeps_clean_data_as_it_is() -> None:
    from airflow_mlops_provider.artifacts.codec import jsonb_safe

    clean = {"a": [1, "b", {"c": None}], "d": 1.5}
    assert jsonb_safe(clean) == clean
    assert jsonb_safe({"k\x00": ("v\x00", 2)}) == {"k\\x00": ["v\\x00", 2]}


# -- a real PostgreSQL metadata DB ---------------------------------------------------------------------


@pytest.mark.slow
@requires_postgres
def test_nul_values_run_on_a_postgres_metadata_db() -> None:
    proc = run_in_postgres_session(f"{TESTS_DIR / 'test_jsonb_summaries.py'}::test_on_postgres", timeout=900)
    tail = "\n".join(proc.stdout.splitlines()[-40:])
    assert proc.returncode == 0, tail
    assert "PASSED tests/test_jsonb_summaries.py::test_on_postgres" in proc.stdout, tail


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_on_postgres(store: str) -> None:
    """Run by the test above in a session whose metadata DB is PostgreSQL (skipped otherwise)."""
    from airflow import settings
    from airflow_runner import run_dag

    from airflow_mlops_provider.notebook import load_artifact

    if settings.engine.dialect.name != "postgresql":
        pytest.skip("runs in the PostgreSQL session of test_nul_values_run_on_a_postgres_metadata_db")
    path = DAGS_DIR / f"{DAG}.py"
    path.write_text(DAG_FILE)
    try:
        result = run_dag(DAG)
    finally:
        path.unlink(missing_ok=True)
    assert result.state == "success", result.task_states
    assert "\\u0000" not in json.dumps(list(result.xcom_rows.values()))
    run = result.run_id
    assert load_artifact(DAG, run, "nul_key") == {"a\x00b": 1}
    assert load_artifact(DAG, run, "nul_text") == ["v\x00w", {"k": "\x00"}]
    frame = pd.DataFrame({"x\x00y": [1, 2, 3], "ok": ["p\x00q", "r", "s"]})
    pd.testing.assert_frame_equal(load_artifact(DAG, run, "nul_column"), frame)
