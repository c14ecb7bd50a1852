"""A templated ``.sql`` file (``{{ ds }}``, ``{{ params }}``) with a bound parameter, then a load."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.operators import DataFrameLoadOperator, SqlExtractOperator

if TYPE_CHECKING:
    import pandas as pd


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # The placeholder is the driver's paramstyle: ":min_id" for SQLite, "%(min_id)s" elsewhere.
    params={"conn_id": "warehouse", "source": "orders", "label": "daily", "placeholder": ":min_id"},
)
def mlops_sql_templated():
    extract = SqlExtractOperator(
        task_id="extract",
        conn_id="{{ params.conn_id }}",
        sql="mlops_sql_templated.sql",
        parameters={"min_id": 3},
    )

    @task
    def shout(rows: pd.DataFrame) -> pd.DataFrame:
        rows.columns = [str(name).lower() for name in rows.columns]
        rows["name"] = rows["name"].str.upper()
        return rows

    DataFrameLoadOperator(
        task_id="load",
        data=shout(extract.output),
        conn_id="{{ params.conn_id }}",
        table="orders_{{ ds_nodash }}",
        if_exists="replace",
    )


mlops_sql_templated()
