"""Real DAG runs (``dag.test()``) with the provider's XCom backend, on both stores."""

from __future__ import annotations

import pytest
from airflow_runner import load_dags, run_dag
from conftest import EXAMPLE_DAGS

pytestmark = pytest.mark.slow


def test_every_type_round_trips_between_tasks(store: str) -> None:
    result = run_dag("mlops_typed_artifacts")
    assert result.state == "success", result.task_states
    assert result.row("check_all") == "all types survived"

    frame_row = result.row("make_frame")
    assert frame_row["__mlops__"] == "artifact"
    assert frame_row["format"] == "arrow"
    assert frame_row["uri"].startswith(store + "/dag_id=mlops_typed_artifacts/")
    assert frame_row["summary"] == "DataFrame 4 rows x 6 columns"
    assert frame_row["details"]["dtypes"]["cat"] == "category"
    assert result.row("make_array")["format"] == "npy"
    assert result.row("make_object_array")["format"] == "cloudpickle"
    assert result.row("make_image")["format"] == "png"
    assert result.row("train")["format"] == "cloudpickle"
    assert result.row("train")["details"]["params"]["C"] == "0.5"
    # Small JSON stays inline and reads like the value itself in Airflow's XCom tab.
    assert result.row("make_plain", key="small_dict") == {"a": 1, "b": [1, 2, 3], "c": None}
    assert result.row("make_plain", key="big_list")["format"] == "json+zstd"
    assert result.row("make_plain", key="text") == "s3://bucket/not/a/reference"


def test_lazy_refs_mapping_and_retries(store: str) -> None:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    result = run_dag("mlops_lazy_and_mapped")
    assert result.state == "success", result.task_states

    streamed = result.row("stream_sum")
    assert streamed["rows"] == 50_000 and streamed["batches"] == 10
    assert streamed["summary"] == "DataFrame 50,000 rows x 10 columns"
    assert streamed["sum"] == pytest.approx(result.row("eager"))
    assert result.row("two_columns") == ["c1", "c2"]

    assert result.row("reduce") == sum(range(40))
    shard_rows = result.row("shards")
    assert [r["format"] for r in shard_rows] == ["arrow"] * 4  # one artifact per list element
    assert result.row("count") == sum(range(1, 31))
    assert {m for (t, m) in result.task_states if t == "ones"} == set(range(30))
    mapped_uris = {result.row("ones", map_index=i)["uri"] for i in range(30)}
    assert len(mapped_uris) == 30 and all(
        f"/map_index={i}/" in u
        for i, u in enumerate(sorted(mapped_uris, key=lambda u: int(u.split("/map_index=")[1].split("/")[0])))
    )

    # The retry: try 1 pushed "progress" and failed; Airflow cleared (purged) it before try 2.
    flaky = result.row("flaky")
    assert "/try=2-" in flaky["uri"]
    assert ("flaky", -1, "progress") not in result.xcom_rows
    manager = ArtifactManager()
    run_folder = flaky["uri"].rsplit("/key=", 1)[0]
    leftovers = [u for u in manager.store.list_files(run_folder) if "/try=1-" in u]
    assert leftovers == []
    assert manager.load(flaky)["try"].tolist() == [2]


@pytest.mark.parametrize("file_stem", EXAMPLE_DAGS)
def test_airflow_example_dags_run_unchanged(file_stem: str, store: str) -> None:
    dag_ids = sorted(load_dags(file_stem))
    assert dag_ids
    for dag_id in dag_ids:
        result = run_dag(file_stem, dag_id)
        assert result.state == "success", (dag_id, result.task_states)


def test_runs_on_the_requested_metadata_db() -> None:
    """Guards the PostgreSQL variant (test_postgres_metadata.py) against silently using SQLite."""
    import os

    from airflow import settings

    expected = "postgresql" if os.environ.get("MLOPS_TEST_METADATA_DB") == "postgres" else "sqlite"
    assert settings.engine.dialect.name == expected


def test_unreachable_store_fails_the_task_and_retries_apply(monkeypatch) -> None:
    from conftest import set_unreachable_s3_connection

    set_unreachable_s3_connection(monkeypatch, "down_s3")
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", "s3://unreachable/artifacts")
    monkeypatch.setenv("AIRFLOW__MLOPS__AWS_CONN_ID", "down_s3")
    result = run_dag("mlops_store_down")
    assert result.state == "failed"
    assert result.task_states[("produce", -1)] == "failed"
    assert result.task_states[("consume", -1)] == "upstream_failed"
    assert result.try_numbers[("produce", -1)] == 2  # the retry ran too
    assert ("produce", -1, "return_value") not in result.xcom_rows


def test_artifacts_go_to_hook_lineage_only_when_a_plugin_reads_it(monkeypatch, producer) -> None:
    """In a task process without a plugin reading hook lineage (OpenLineage), reporting would only
    cost the making of Airflow's collector (0.4 s: every provider's asset URI handlers are loaded);
    with a reader, artifacts are reported (end to end in tests/test_openlineage.py)."""
    from airflow.sdk import lineage as hook_lineage
    from airflow.sdk.execution_time import task_runner

    from airflow_mlops_provider import _compat
    from airflow_mlops_provider.artifacts import lineage
    from airflow_mlops_provider.artifacts.manifest import Reference

    reference = Reference(uri="file:///tmp/x/0.arrow", type="t", serializer="s", format="arrow",
                          format_version=1, size_bytes=1, sha256="0" * 64, producer=producer)  # fmt: skip
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object(), raising=False)  # a task process
    _compat.hook_lineage_has_readers.cache_clear()
    hook_lineage.get_hook_lineage_collector.cache_clear()
    lineage.report_asset(reference, output=True)
    assert hook_lineage.get_hook_lineage_collector.cache_info().currsize == 0  # no reader here

    monkeypatch.setattr(_compat, "hook_lineage_has_readers", lambda: True)
    lineage.report_asset(reference, output=True)
    collector = hook_lineage.get_hook_lineage_collector()
    assert hook_lineage.get_hook_lineage_collector.cache_info().currsize == 1
    hook_lineage.get_hook_lineage_collector.cache_clear()
    assert collector is not None
