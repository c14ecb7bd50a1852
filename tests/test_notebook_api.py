"""The notebook API reads finished runs' artifacts from another process, through the DB and the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from airflow_runner import run_dag
from conftest import set_unreachable_s3_connection

from airflow_mlops_provider import ArtifactNotFoundError, ArtifactRef, ArtifactStoreError
from airflow_mlops_provider.notebook import ArtifactLookupError, list_artifacts, load_artifact, resolve_run_id

DAG = "mlops_cli_pipeline"

# Runs in a fresh interpreter with the test's environment (AIRFLOW_HOME, DB, artifact root).
NOTEBOOK = r"""
import json, sys
from airflow_mlops_provider import ArtifactRef
from airflow_mlops_provider.notebook import list_artifacts, load_artifact

dag, first = "mlops_cli_pipeline", sys.argv[1]
out = {}
latest = load_artifact(dag, task_id="extract")
out["latest"] = [type(latest).__name__, len(latest), str(latest["segment"].dtype)]
out["first"] = len(load_artifact(dag, first, "extract"))
model = load_artifact(dag, "latest", "train")
features = load_artifact(dag, first, "features")
predicted = model.predict(features[["age", "spend", "spend_per_year"]])
out["model"] = [type(model).__name__, model.C, len(predicted)]
handle = load_artifact(dag, task_id="features", lazy=True)
out["lazy"] = [isinstance(handle, ArtifactRef), handle.summary, list(handle.load(columns=["age"]).columns)]
out["shards"] = [len(frame) for frame in load_artifact(dag, task_id="shards")]
out["inline"] = load_artifact(dag, first, "summary")
out["weights"] = load_artifact(dag, first, "weights").tolist()
out["listed"] = list_artifacts(dag, first, "extract")
print(json.dumps(out, default=str))
"""


def _set_run_state(run_id: str, state: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun).where(DagRun.dag_id == DAG, DagRun.run_id == run_id).values(state=state)
        )


def test_load_artifacts_of_finished_runs_from_another_process(store: str) -> None:
    first = run_dag(DAG)
    second = run_dag(DAG, run_conf={"rows": 60})
    assert first.state == second.state == "success"

    proc = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, first.run_id],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["latest"] == ["DataFrame", 60, "category"]  # "latest" = the newest successful run
    assert out["first"] == 120
    assert out["model"] == ["LogisticRegression", 0.5, 120]
    assert out["lazy"] == [True, "DataFrame 60 rows x 6 columns", ["age"]]
    assert out["shards"] == [2, 2]
    assert out["inline"] == {"status": "ok", "rows": 120}
    assert out["weights"][2] == [8.0, 9.0, 10.0, 11.0]

    [listed] = out["listed"]  # the manifest of the artifact plus where it was found
    assert listed["status"] == "ok" and listed["inline"] is False
    assert listed["uri"] == first.row("extract")["uri"] and listed["uri"].startswith(store)
    assert (listed["run_id"], listed["task_id"], listed["key"], listed["path"]) == (
        first.run_id,
        "extract",
        "return_value",
        "",
    )
    assert listed["producer"]["task_id"] == "extract" and listed["sha256"] == first.row("extract")["sha256"]
    assert listed["execution"]["params"] == {"rows": 120, "alpha": 0.5}
    assert listed["execution"]["code_hash"] == first.row("extract", key="mlops.task")["code_hash"]
    assert "artifact_id" in listed and "versions" in listed

    # A run that did not succeed is never "latest".
    _set_run_state(second.run_id, "failed")
    try:
        assert resolve_run_id(DAG) == first.run_id
        assert len(load_artifact(DAG, task_id="extract")) == 120
        assert len(load_artifact(DAG, second.run_id, "extract")) == 60  # explicit ids still work
    finally:
        _set_run_state(second.run_id, "success")


def test_list_artifacts_marks_inline_values_and_missing_objects(store: str) -> None:
    result = run_dag(DAG)
    run_id = result.run_id

    inline = list_artifacts(DAG, run_id, "summary")
    assert {(i["key"], i["inline"], i["status"]) for i in inline} == {
        ("return_value", True, "inline"),
        ("rows", True, "inline"),
        ("status", True, "inline"),
    }
    assert next(i for i in inline if i["key"] == "return_value")["value"] == {"status": "ok", "rows": 120}
    assert all(i["uri"] is None for i in inline)

    everything = list_artifacts(DAG, run_id)
    assert not any(i["key"].startswith("mlops.") for i in everything)
    assert any(i["key"] == "mlops.task" for i in list_artifacts(DAG, run_id, include_records=True))
    shards = [i for i in everything if i["task_id"] == "shards"]
    assert [i["path"] for i in shards] == ["[0]", "[1]"]
    assert all(i["format"] == "arrow" and i["status"] == "ok" for i in shards)
    # All runs, newest first.
    runs = [i["run_id"] for i in list_artifacts(DAG, task_id="extract")]
    assert runs[0] == run_id

    # Delete one artifact's folder from the store, as a lifecycle rule would.
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    manager = ArtifactManager()
    uri = result.row("features")["uri"]
    manager.store.delete_dir(uri.rsplit("/", 1)[0])
    [gone] = list_artifacts(DAG, run_id, "features")
    assert gone["status"] == "missing" and gone["uri"] == uri and gone["summary"].startswith("DataFrame")
    with pytest.raises(ArtifactNotFoundError) as err:
        load_artifact(DAG, run_id, "features")
    assert uri in str(err.value) and "task 'features'" in str(err.value)


def test_lookup_errors_name_what_exists(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_dag(DAG)
    run_id = result.run_id

    with pytest.raises(ArtifactLookupError, match="Did you mean: mlops_cli_pipeline"):
        load_artifact("mlops_cli_pipelin", task_id="extract")
    with pytest.raises(ArtifactLookupError) as err:
        load_artifact(DAG, "manual__1999-01-01", "extract")
    assert "has no run 'manual__1999-01-01'" in str(err.value) and run_id in str(err.value)
    with pytest.raises(ArtifactLookupError) as err:
        load_artifact(DAG, run_id)
    assert "Pass a task id" in str(err.value) and "extract, features" in str(err.value)
    with pytest.raises(ArtifactLookupError) as err:
        load_artifact(DAG, run_id, "nope")
    assert "no task 'nope'" in str(err.value) and "blob, chart, extract, features, history" in str(err.value)
    with pytest.raises(ArtifactLookupError, match=r"Its keys: mlops\.task, return_value"):
        load_artifact(DAG, run_id, "extract", key="model")
    with pytest.raises(ArtifactLookupError, match="Map indexes with one: -1"):
        load_artifact(DAG, run_id, "extract", map_index=3)
    with pytest.raises(ArtifactLookupError, match="Task 'nope' has no XCom"):
        list_artifacts(DAG, run_id, "nope")
    assert isinstance(ArtifactLookupError("x"), LookupError)

    frame = load_artifact(DAG, run_id, "extract")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 120
    assert isinstance(load_artifact(DAG, run_id, "summary", lazy=True), ArtifactRef)

    if store.startswith("s3://"):  # an unreachable store: the root and the connection are named
        from airflow_mlops_provider.artifacts.config import ArtifactSettings
        from airflow_mlops_provider.artifacts.manager import ArtifactManager

        set_unreachable_s3_connection(monkeypatch, "broken_s3")
        broken = ArtifactManager(ArtifactSettings(store, conn_id="broken_s3"))
        with pytest.raises(ArtifactStoreError) as err:
            load_artifact(DAG, run_id, "extract", manager=broken)
        assert store in str(err.value) and "'broken_s3'" in str(err.value)
        with pytest.raises(ArtifactStoreError):
            list_artifacts(DAG, run_id, "extract", manager=broken)
