"""Mistakes in check and metric definitions fail when the DAG is parsed, naming the task."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_mlops_provider.decorators import Regression, ml_check, ml_metric
from airflow_mlops_provider.operators.checks import DataFrameCheckOperator, MetricCheckOperator


def _dag() -> DAG:
    return DAG("parse_errors", schedule=None, start_date=pendulum.datetime(2024, 1, 1))


def test_unknown_severity() -> None:
    with pytest.raises(ValueError, match="unknown severity 'fatal'"):
        ml_check(severity="fatal")
    with pytest.raises(ValueError, match="unknown severity 'loud'"):
        ml_metric(severity="loud")


def test_bounds_given_wrong() -> None:
    with pytest.raises(ValueError, match=r"lower bound 0\.9 is above upper bound 0\.1"):
        ml_metric(lower=0.9, upper=0.1)
    with pytest.raises(ValueError, match=r"metric accuracy lower bound 0\.9 is above upper bound 0\.5"):
        ml_metric(lower={"accuracy": 0.9}, upper={"accuracy": 0.5})
    with pytest.raises(TypeError, match=r"lower='high' must be a number"):
        ml_metric(lower="high")
    with pytest.raises(TypeError, match=r"ml\.Regression"):
        ml_metric(regression={"accuracy": 0.02})
    with pytest.raises(ValueError, match="max_drop or max_rise"):
        Regression(window=3)
    with pytest.raises(ValueError, match="min_history"):
        Regression(window=2, max_drop=0.1, min_history=3)


def test_operator_arguments_are_checked_when_the_dag_is_defined() -> None:
    with _dag():
        with pytest.raises(ValueError, match=r"Task 'bad_cols': unknown check 'nul_check' for column 'age'"):
            DataFrameCheckOperator(
                task_id="bad_cols", data=None, checks={"columns": {"age": {"nul_check": {}}}}
            )
        with pytest.raises(ValueError, match="needs a dict with one of equal_to"):
            DataFrameCheckOperator(
                task_id="bad_cmp", data=None, checks={"columns": {"age": {"min": {"at_least": 1}}}}
            )
        with pytest.raises(ValueError, match="unknown table check 'rowcount'"):
            DataFrameCheckOperator(task_id="bad_table", data=None, checks={"table": {"rowcount": {}}})
        with pytest.raises(ValueError, match="unknown severity"):
            DataFrameCheckOperator(task_id="bad_sev", data=None, checks={}, severity="critical")
        with pytest.raises(ValueError, match="give lower, upper or regression"):
            MetricCheckOperator(task_id="empty", metric_task_id="m", name="accuracy")


@pytest.mark.slow
def test_wrong_return_types_fail_the_task_with_a_clear_error() -> None:
    from airflow_runner import load_dag, run_dag

    result = run_dag("mlops_bad_results")
    assert result.task_states[("returns_a_count", -1)] == "failed"
    assert result.task_states[("returns_text", -1)] == "failed"

    dag = load_dag("mlops_bad_results")
    not_a_check = r"Check task 'returns_a_count' returned int, which is not a check result"
    with pytest.raises(TypeError, match=not_a_check):
        dag.get_task("returns_a_count")._normalize(3)
    not_a_number = r"Metric task 'returns_text' returned returns_text='high' \(str\)"
    with pytest.raises(TypeError, match=not_a_number):
        dag.get_task("returns_text")._values("high")


def test_numpy_booleans_are_check_results() -> None:
    import numpy as np

    from airflow_mlops_provider.decorators.check import MLCheckDecoratedOperator

    with _dag():
        operator = MLCheckDecoratedOperator(
            task_id="np_bool", python_callable=lambda: True, op_args=[], op_kwargs={}
        )
    assert operator._normalize(np.float64(0.5) > 0.1).passed is True
    assert operator._normalize(np.bool_(False)).passed is False
