"""TaskFlow decorators: ``@ml.task``, ``@ml.check`` and ``@ml.metric`` (also ``@task.ml`` etc.)."""

from __future__ import annotations

from airflow_mlops_provider.checks.bounds import Regression
from airflow_mlops_provider.decorators.check import ml_check
from airflow_mlops_provider.decorators.metric import ml_metric
from airflow_mlops_provider.decorators.ml_task import ml_task

__all__ = ["Regression", "ml_check", "ml_metric", "ml_task"]
