"""Extract with SqlExtractOperator, transform with a @task, load with DataFrameLoadOperator.

``params.conn_id`` picks the database (SQLite, PostgreSQL or Snowflake in the tests); the same
transformed frame is loaded three ways: appended, replacing a snapshot, and once only.
"""

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
    params={"conn_id": "warehouse", "source": "orders", "target": "orders_enriched"},
)
def mlops_sql_etl():
    extract = SqlExtractOperator(
        task_id="extract",
        conn_id="{{ params.conn_id }}",
        sql="SELECT * FROM {{ params.source }} ORDER BY id",
    )

    @task
    def enrich(orders: pd.DataFrame) -> pd.DataFrame:
        orders.columns = [str(name).lower() for name in orders.columns]  # Snowflake answers in upper case
        orders["amount"] = orders["qty"] * orders["price"]
        return orders

    enriched = enrich(extract.output)
    DataFrameLoadOperator(
        task_id="append", data=enriched, conn_id="{{ params.conn_id }}", table="{{ params.target }}"
    )
    DataFrameLoadOperator(
        task_id="snapshot",
        data=enriched,
        conn_id="{{ params.conn_id }}",
        table="{{ params.target }}_snapshot",
        if_exists="replace",
        chunksize=2,
    )
    DataFrameLoadOperator(
        task_id="create_once",
        data=enriched,
        conn_id="{{ params.conn_id }}",
        table="{{ params.target }}_once",
        if_exists="fail",
    )


mlops_sql_etl()
