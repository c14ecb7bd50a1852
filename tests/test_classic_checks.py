"""DataFrameCheckOperator and MetricCheckOperator through real DAG runs."""

from __future__ import annotations

import pytest
from airflow_runner import run_dag

from airflow_mlops_provider.records import CHECK_KEY

pytestmark = pytest.mark.slow


def test_clean_runs_pass_and_drift_is_judged_against_the_previous_run() -> None:
    first = run_dag("mlops_classic_checks", run_conf={"seed": 1})
    assert first.state == "success", first.task_states
    assert first.row("publish") == "published"
    assert first.row("columns_ok", key=CHECK_KEY)["passed"] is True

    same = run_dag("mlops_classic_checks", run_conf={"seed": 2})
    drift = same.row("no_drift", key=CHECK_KEY)
    assert drift["passed"] is True, drift["message"]
    assert drift["details"]["drift"]["spend"]["method"] == "ks"
    assert drift["details"]["freshness"]["age_seconds"] < 3600

    shifted = run_dag("mlops_classic_checks", run_conf={"seed": 3, "shift": 2})
    assert shifted.state == "success"  # warning severity
    drift = shifted.row("no_drift", key=CHECK_KEY)
    assert drift["status"] == "warning" and "spend" in drift["message"]
    assert drift["details"]["drift"]["spend"]["drifted"] is True
    assert drift["details"]["drift"]["segment"]["drifted"] is False


def test_failed_column_checks_block_downstream_and_keep_samples() -> None:
    result = run_dag("mlops_classic_checks", run_conf={"young": 7})
    assert result.task_states[("columns_ok", -1)] == "failed"
    assert result.task_states[("publish", -1)] == "upstream_failed"
    record = result.row("columns_ok", key=CHECK_KEY)
    assert record["status"] == "failed" and "age min is 5" in record["message"]
    assert record["failing_count"] == 7 and len(record["failing_samples"]) == 5
    assert all(row["age"] == 5.0 for row in record["failing_samples"])


def test_metric_check_operator_fails_below_bound() -> None:
    result = run_dag("mlops_classic_checks", run_conf={"accuracy": 0.6})
    assert result.task_states[("accuracy_gate", -1)] == "failed"
    assert result.task_states[("publish", -1)] == "upstream_failed"
    record = result.row("accuracy_gate", key=CHECK_KEY)
    assert record["message"] == "accuracy=0.6 is below the lower bound 0.8"
