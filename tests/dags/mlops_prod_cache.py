"""A cached step behind an uncached one, for runs made by a real scheduler (test_production_path)."""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, params={"rows": 3})
def mlops_prod_cache():
    @ml.task
    def load(params=None) -> pd.DataFrame:
        return pd.DataFrame({"x": list(range(int(params["rows"])))})

    @ml.task(cache=True)
    def features(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(square=df["x"] ** 2)

    features(load())


mlops_prod_cache()
