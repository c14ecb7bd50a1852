"""The ``ml`` namespace: ``from airflow_mlops_provider import ml``.

``ml.task``, ``ml.check`` and ``ml.metric`` are TaskFlow decorators (also ``@task.ml``,
``@task.ml_check``, ``@task.ml_metric``); ``ml.sql`` and ``ml.save`` add a warehouse extract or
load task in one line; ``ml.metric_history`` reads a metric across runs from the metadata DB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.caching import Cache
from airflow_mlops_provider.catalog.records import check_history, metric_history
from airflow_mlops_provider.checks import builtin as checks
from airflow_mlops_provider.checks.result import CheckResult
from airflow_mlops_provider.decorators import Regression
from airflow_mlops_provider.decorators import ml_check as check
from airflow_mlops_provider.decorators import ml_metric as metric
from airflow_mlops_provider.decorators import ml_task as task
from airflow_mlops_provider.local import replay, run_local
from airflow_mlops_provider.runtime import last_success, previous_artifact

if TYPE_CHECKING:
    from airflow.sdk.definitions.xcom_arg import XComArg

__all__ = [
    "Cache",
    "CheckResult",
    "Regression",
    "check",
    "check_history",
    "checks",
    "last_success",
    "metric",
    "metric_history",
    "previous_artifact",
    "replay",
    "run_local",
    "save",
    "sql",
    "task",
]


def _task_id(task_id: str | None, default: str) -> str:
    from airflow.sdk.bases.decorator import get_unique_task_id

    return task_id or get_unique_task_id(default)


def sql(
    query: str, *, conn_id: str, parameters: Any = None, task_id: str | None = None, **kwargs: Any
) -> XComArg:
    """A task that runs ``query`` (templated) on ``conn_id`` and returns a DataFrame artifact.

    Works with any connection whose hook is a common-sql ``DbApiHook`` (Snowflake, PostgreSQL,
    SQLite...). Extra keyword arguments go to the operator (retries, pool, ...).
    """
    from airflow_mlops_provider.operators.sql import SqlExtractOperator

    operator = SqlExtractOperator(
        task_id=_task_id(task_id, "extract"), sql=query, conn_id=conn_id, parameters=parameters, **kwargs
    )
    return operator.output


def save(
    data: Any,
    *,
    conn_id: str,
    table: str,
    if_exists: str = "append",
    task_id: str | None = None,
    **kwargs: Any,
) -> XComArg:
    """A task that writes the DataFrame ``data`` (usually another task's output) to ``table``.

    Snowflake goes through ``write_pandas``; other databases through SQLAlchemy in one transaction,
    so a failed write leaves the table as it was.
    """
    from airflow_mlops_provider.operators.sql import DataFrameLoadOperator

    operator = DataFrameLoadOperator(
        task_id=_task_id(task_id, f"save_{table.split('.')[-1]}"),
        data=data,
        conn_id=conn_id,
        table=table,
        if_exists=if_exists,
        **kwargs,
    )
    return operator.output
