"""Checks and metrics through real DAG runs: severities, notifiers, history, regression."""

from __future__ import annotations

import argparse
import json

import pytest
from airflow_runner import run_dag

from airflow_mlops_provider.records import CHECK_KEY, METRICS_KEY, TASK_KEY

pytestmark = pytest.mark.slow


@pytest.fixture
def notifications(tmp_path, monkeypatch):
    path = tmp_path / "notifications.jsonl"
    monkeypatch.setenv("MLOPS_TEST_NOTIFICATIONS", str(path))

    def read() -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return read


def test_clean_run_passes_every_gate_and_records_execution(notifications) -> None:
    result = run_dag("mlops_quality_gates", run_conf={"accuracy": 0.91})
    assert result.state == "success", result.task_states
    assert result.row("deploy") == "deployed 20 scores"
    gate = result.row("scores_are_probabilities", key=CHECK_KEY)
    assert gate["passed"] is True and gate["status"] == "ok" and gate["severity"] == "error"
    metrics = {m["name"]: m for m in result.row("model_quality", key=METRICS_KEY)["metrics"]}
    # The first run has nothing to compare with: its regression gate is skipped, not passed.
    assert metrics["accuracy"]["value"] == 0.91 and metrics["accuracy"]["status"] == "skipped"
    assert metrics["accuracy"]["regression"]["passed"] is None
    assert "no earlier successful run" in metrics["accuracy"]["skipped"]
    assert metrics["rows"]["value"] == 20
    # Likewise the drift check against the previous run's data: skipped with the reason, not ok.
    stable = result.row("scores_stable", key=CHECK_KEY)
    assert stable["status"] == "skipped" and stable["passed"] is None
    assert stable["message"].startswith("no reference to compare with")
    assert notifications() == []

    execution = result.row("scores", key=TASK_KEY)
    assert execution["operator"] == "@ml.task" and len(execution["code_hash"]) == 64
    assert execution["duration_seconds"] > 0 and execution["peak_rss_mb"] > 1
    assert "memory_warning" in execution  # memory_warning_mb=1 is always passed
    deploy = result.row("deploy", key=TASK_KEY)
    assert [i["producer"]["task_id"] for i in deploy["inputs"]] == ["scores"]  # lineage

    # The manifest of what an @ml.task returned carries the code that ran and how it ran.
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Manifest, Reference

    reference = Reference.from_row(result.row("scores"))
    manifest = Manifest.from_json(ArtifactManager().store.get_bytes(reference.manifest_uri))
    assert "def scores() -> pd.DataFrame:" in manifest.execution["source"]
    assert manifest.execution["code_hash"] == execution["code_hash"]
    assert manifest.execution["peak_rss_mb"] == execution["peak_rss_mb"]


def test_warning_check_succeeds_records_and_notifies(notifications) -> None:
    result = run_dag("mlops_quality_gates", run_conf={"null_rows": 4})
    assert result.state == "success", result.task_states
    assert result.task_states[("ages_present", -1)] == "success"
    record = result.row("ages_present", key=CHECK_KEY)
    assert record["status"] == "warning" and record["passed"] is False
    assert record["failing_count"] == 4
    assert [row["customer_id"] for row in record["failing_samples"]] == [116, 117, 118, 119]
    assert record["notified"] is True
    assert notifications() == [{"task_id": "ages_present", "run_id": result.run_id}]
    assert result.row("deploy") == "deployed 20 scores"  # a warning does not stop downstream tasks


def test_error_check_fails_without_retry_and_blocks_downstream(notifications) -> None:
    result = run_dag("mlops_quality_gates", run_conf={"bad_scores": 5})
    assert result.state == "failed"
    assert result.task_states[("scores_are_probabilities", -1)] == "failed"
    assert result.try_numbers[("scores_are_probabilities", -1)] == 1
    assert result.task_states[("deploy", -1)] == "upstream_failed"
    record = result.row("scores_are_probabilities", key=CHECK_KEY)
    assert record["status"] == "failed" and record["failing_count"] == 5
    assert len(record["failing_samples"]) == 3  # max_failing_samples
    assert record["failing_samples"][0] == {"customer_id": 100, "age": 20.0, "score": 1.5}


def test_metric_history_bounds_and_regression_across_runs(notifications, capsys) -> None:
    from airflow_mlops_provider.catalog.records import metric_history

    for accuracy in (0.90, 0.92, 0.91):
        assert run_dag("mlops_quality_gates", run_conf={"accuracy": accuracy}).state == "success"
    regressed = run_dag("mlops_quality_gates", run_conf={"accuracy": 0.70})
    assert regressed.state == "success"  # severity "warning"
    entry = {m["name"]: m for m in regressed.row("model_quality", key=METRICS_KEY)["metrics"]}["accuracy"]
    assert entry["status"] == "warning"
    assert entry["regression"]["history"] == [0.91, 0.92, 0.90]
    assert entry["regression"]["baseline_value"] == pytest.approx(0.91)
    assert entry["regression"]["passed"] is False
    assert any("regressed" in b for b in entry["breaches"])
    below = run_dag("mlops_quality_gates", run_conf={"accuracy": 0.4})
    entry = {m["name"]: m for m in below.row("model_quality", key=METRICS_KEY)["metrics"]}["accuracy"]
    assert any("below the lower bound 0.5" in b for b in entry["breaches"])
    assert [n["run_id"] for n in notifications()] == [regressed.run_id, below.run_id]

    # Drift and freshness against earlier runs, from inside the worker (Task SDK, no DB access).
    stable = regressed.row("scores_stable", key=CHECK_KEY)
    assert stable["passed"] is True and stable["details"]["score"]["method"] == "ks"
    assert regressed.row("scores_fresh", key=CHECK_KEY)["passed"] is True

    history = metric_history("mlops_quality_gates", "model_quality", "accuracy", limit=5)
    assert [h["value"] for h in history] == [0.4, 0.70, 0.91, 0.92, 0.90]
    assert [h["status"] for h in history][:2] == ["warning", "warning"]

    # ``airflow mlops metrics`` says why, in the words the ML view uses: bounds and regression alike.
    from airflow_mlops_provider.cli.records_command import metrics

    args = {"dag_id": "mlops_quality_gates", "task_id": "model_quality", "name": "accuracy", "limit": 2}
    metrics(argparse.Namespace(**args, output="table"))
    table = capsys.readouterr().out
    assert "accuracy=0.4 is below the lower bound 0.5" in table and "accuracy=0.7 regressed from" in table


def test_mapped_checks_record_each_map_index() -> None:
    result = run_dag("mlops_quality_gates", run_conf={"accuracy": 0.9})
    records = [result.row("shard_ok", key=CHECK_KEY, map_index=i) for i in range(3)]
    assert [r["passed"] for r in records] == [True, True, True]
