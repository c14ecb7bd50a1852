"""Check and metric functions that return the wrong thing: the task fails with a clear error."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_mlops_provider.decorators import ml_check, ml_metric


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_bad_results():
    @ml_check
    def returns_a_count() -> int:
        return 3

    @ml_metric
    def returns_text() -> str:
        return "high"

    returns_a_count()
    returns_text()


mlops_bad_results()
