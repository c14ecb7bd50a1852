"""Misuse that must fail the task clearly: a non-SQL connection, and data that is not a DataFrame."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.operators import DataFrameLoadOperator, SqlExtractOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"http_conn_id": "http_api", "sql_conn_id": "warehouse"},
)
def mlops_sql_bad_inputs():
    SqlExtractOperator(task_id="extract_from_http", conn_id="{{ params.http_conn_id }}", sql="SELECT 1")

    @task
    def summary() -> dict:
        return {"rows": 3, "status": "ok"}

    DataFrameLoadOperator(
        task_id="load_a_dict", data=summary(), conn_id="{{ params.sql_conn_id }}", table="summaries"
    )


mlops_sql_bad_inputs()
