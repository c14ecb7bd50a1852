"""The shipped example pipelines, end to end, against a SQLite warehouse."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from airflow_runner import run_dag

from airflow_mlops_provider.records import CHECK_KEY, METRICS_KEY

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[1] / "airflow_mlops_provider" / "example_dags"


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    from airflow_mlops_provider.example_dags._warehouse import sample_customers

    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as conn:
        sample_customers().to_sql("customers", conn, index=False)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"sqlite:///{str(path).lstrip('/')}")
    return path


def pipeline_lines(path: Path, dag_function: str) -> int:
    """Lines of code of a DAG function (decorator and def included; blank lines and comments not)."""
    source = path.read_text()
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == dag_function)
    lines = source.splitlines()[node.decorator_list[0].lineno - 1 : node.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_customer_predictions_pipeline(warehouse: Path) -> None:
    result = run_dag("example_customer_predictions")
    assert result.state == "success", result.task_states
    assert result.row("scores_are_probabilities", key=CHECK_KEY)["passed"] is True
    with sqlite3.connect(warehouse) as conn:
        saved = pd.read_sql("SELECT * FROM predictions", conn)
        us = pd.read_sql("SELECT count(*) AS n FROM customers WHERE location = 'US'", conn)["n"][0]
    assert len(saved) == us and saved["score"].between(0, 1).all()
    assert result.row("save_predictions") == {"table": "predictions", "rows": int(us), "conn_id": "warehouse"}


def test_customer_predictions_is_at_most_15_lines() -> None:
    assert pipeline_lines(EXAMPLES / "example_customer_predictions.py", "example_customer_predictions") <= 15


def test_churn_training_pipeline(warehouse: Path) -> None:
    result = run_dag("example_churn_training")
    assert result.state == "success", result.task_states
    assert {m for (t, m) in result.task_states if t == "train"} == {0, 1, 2, 3}
    scores = [result.row("candidate_score", key="return_value", map_index=i)["accuracy"] for i in range(4)]
    assert result.row("deploy").startswith("deployed LogisticRegression")
    best_c = float(result.row("deploy").split("C=")[1].rstrip(")"))
    assert best_c == [0.01, 0.1, 1.0, 10.0][scores.index(max(scores))]
    evaluate = {m["name"]: m for m in result.row("evaluate", key=METRICS_KEY)["metrics"]}
    # Above its lower bound; the first run has no earlier run for the regression gate: skipped.
    assert evaluate["accuracy"]["lower"] == 0.7 and evaluate["accuracy"]["breaches"] == []
    assert evaluate["accuracy"]["status"] == "skipped"
    assert evaluate["accuracy"]["regression"]["status"] == "skipped"
    assert result.row("features_complete", key=CHECK_KEY)["severity"] == "warning"
    assert result.row("predictions_vary", key=CHECK_KEY)["severity"] == "error"
