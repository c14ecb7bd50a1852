"""``@task.ml``, ``@task.ml_check`` and ``@task.ml_metric`` registered through the provider."""

from __future__ import annotations

import pytest
from airflow_runner import load_dag, run_dag

from airflow_mlops_provider.records import CHECK_KEY, METRICS_KEY, TASK_KEY

pytestmark = pytest.mark.slow


def test_task_namespace_and_taskflow_arguments() -> None:
    dag = load_dag("mlops_task_namespace")
    produce = dag.get_task("produce")
    assert type(produce).__name__ == "MLDecoratedOperator"
    assert produce.retries == 2 and produce.pool == "default_pool" and produce.multiple_outputs
    assert produce.queue == "ml" and produce.executor_config == {"cpu": 2}
    assert type(dag.get_task("schema_ok")).__name__ == "MLCheckDecoratedOperator"
    assert type(dag.get_task("size")).__name__ == "MLMetricDecoratedOperator"

    result = run_dag("mlops_task_namespace")
    assert result.state == "success", result.task_states
    assert result.row("total") == 12
    assert result.row("schema_ok", key=CHECK_KEY)["passed"] is True
    assert result.row("schema_returned", key=CHECK_KEY)["passed"] is True
    assert result.row("expectation_returned", key=CHECK_KEY)["passed"] is True
    assert result.row("size", key=METRICS_KEY)["metrics"][0]["value"] == 6
    assert result.row("produce", key=TASK_KEY)["params"] == {"negatives": 0}


def test_pandera_and_great_expectations_failures_become_check_records() -> None:
    result = run_dag("mlops_task_namespace", run_conf={"negatives": 2})
    assert result.state == "success"  # severity "warning"
    record = result.row("schema_ok", key=CHECK_KEY)
    assert record["status"] == "warning" and record["failing_count"] == 2
    assert "greater_than_or_equal_to(0)" in str(record["failing_samples"])
    returned = result.row("schema_returned", key=CHECK_KEY)
    assert returned["status"] == "warning" and returned["failing_count"] == 2
    expectation = result.row("expectation_returned", key=CHECK_KEY)
    assert expectation["status"] == "warning" and expectation["failing_count"] == 2
    assert [row["value"] for row in expectation["failing_samples"]] == [-1.0, -1.0]
    assert expectation["message"].startswith("expect_column_values_to_be_between")
    assert result.row("produce", key=TASK_KEY)["params"] == {"negatives": 2}
