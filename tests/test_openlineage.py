"""OpenLineage: the artifacts a task reads and writes become the datasets of its events.

The OpenLineage provider decides once per process whether it is enabled, so the DAG runs in a
fresh ``airflow dags test`` process configured with a file transport, and the test reads the
events it wrote.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from airflow_runner import run_dag_cli

from airflow_mlops_provider.artifacts import codec

if TYPE_CHECKING:
    from pathlib import Path

pytest.importorskip("airflow.providers.openlineage", reason="apache-airflow-providers-openlineage")

DAG = "mlops_cli_pipeline"


def _dataset(uri: str) -> tuple[str, str]:
    """The (namespace, name) OpenLineage gives an artifact URI (Airflow's file and s3 converters)."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return "file", parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def _complete_events(path: Path) -> dict[str, dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = {}
    for event in events:
        if event.get("eventType") == "COMPLETE" and "." in event["job"]["name"]:
            out[event["job"]["name"].split(".", 1)[1]] = event
    return out


def _datasets(event: dict[str, Any], side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event[side]}


def test_task_events_carry_artifact_inputs_and_outputs(store: str, tmp_path: Path) -> None:
    events_file = tmp_path / "openlineage.jsonl"
    env = os.environ.copy()
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
        {"type": "file", "log_file_path": str(events_file), "append": True}
    )
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "mlops-tests"
    run = run_dag_cli(DAG, env=env)
    assert run.state == "success"
    rows = {task_id: value for (task_id, _, key), value in run.xcom_rows.items() if key == "return_value"}

    def written(task_id: str) -> set[tuple[str, str]]:
        return {_dataset(ref["uri"]) for _, ref in codec.iter_references(rows[task_id])}

    events = _complete_events(events_file)
    assert {"extract", "features", "train", "chart", "summary"} <= events.keys()
    for event in events.values():
        assert event["job"]["namespace"] == "mlops-tests"

    extract, features, train = written("extract"), written("features"), written("train")
    assert len(extract) == len(features) == len(train) == 1
    assert _datasets(events["extract"], "inputs") == set()
    assert _datasets(events["extract"], "outputs") == extract
    # Each task lists what it read and what it wrote, and nothing an earlier task in the same
    # process wrote (dag tests run every task in one process).
    assert _datasets(events["features"], "inputs") == extract
    assert _datasets(events["features"], "outputs") == features
    assert _datasets(events["train"], "inputs") == features
    assert _datasets(events["train"], "outputs") == train
    if store.startswith("s3://"):
        bucket = urlsplit(store).netloc
        assert next(iter(train))[0] == f"s3://{bucket}"
        assert next(iter(train))[1].startswith("airflow/artifacts/dag_id=mlops_cli_pipeline/")
    # A value small enough to stay inline in the XCom row is no dataset.
    assert rows["summary"]["status"] == "ok"
    assert _datasets(events["summary"], "outputs") == set()
