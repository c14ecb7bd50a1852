"""A second small DAG: the one the restricted test user may read."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_mlops_provider.decorators import ml_metric


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_ui_other():
    @ml_metric(lower=0.5)
    def quality() -> float:
        return 0.75

    quality()


mlops_ui_other()
