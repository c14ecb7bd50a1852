"""run_local on a sample: an ml.sql extract from the ``warehouse`` connection and an @ml.task on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml

if TYPE_CHECKING:
    import pandas as pd


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def mlops_replay_sample():
    orders = ml.sql("SELECT * FROM orders ORDER BY id", conn_id="warehouse", task_id="orders")

    @ml.task
    def summarize(orders: pd.DataFrame) -> dict:
        return {"rows": len(orders), "total": float(orders["amount"].sum())}

    summarize(orders)


mlops_replay_sample()
