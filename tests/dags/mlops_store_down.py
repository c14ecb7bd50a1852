"""A task whose artifact store cannot be reached: it must fail, and Airflow's retries must apply."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_store_down():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def produce() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2, 3]})

    @task
    def consume(df: pd.DataFrame) -> int:
        return len(df)

    consume(produce())


mlops_store_down()
