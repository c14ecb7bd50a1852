"""Writes that fail half-way, after several chunks went in: the target table must stay as it was.

``guarded`` is created by the test with ``qty ... NOT NULL CHECK (qty > 0)`` and two rows.
"""

from __future__ import annotations

import decimal

import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.operators import DataFrameLoadOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"conn_id": "warehouse", "table": "guarded"},
)
def mlops_sql_failing_load():
    @task
    def violating_rows() -> pd.DataFrame:
        # Rows 1-8 are valid; row 9 (the third chunk of 3) breaks the table's NOT NULL constraint.
        return pd.DataFrame({"id": range(1, 11), "qty": [1.0] * 8 + [None, 2.0]})

    @task
    def unwritable_rows() -> pd.DataFrame:
        # "replace" drops the constrained table and creates one from these dtypes, so the last
        # row fails at the driver instead: PostgreSQL refuses NUL bytes in text, and sqlite3 cannot
        # bind a Decimal. By then the DROP, the CREATE and three chunks have run.
        return pd.DataFrame(
            {
                "id": range(1, 11),
                "note": ["fine"] * 9 + ["nul\x00byte"],
                "amount": [None] * 9 + [decimal.Decimal("1.25")],
            }
        )

    DataFrameLoadOperator(
        task_id="append_violating",
        data=violating_rows(),
        conn_id="{{ params.conn_id }}",
        table="{{ params.table }}",
        chunksize=3,
    )
    DataFrameLoadOperator(
        task_id="replace_unwritable",
        data=unwritable_rows(),
        conn_id="{{ params.conn_id }}",
        table="{{ params.table }}",
        if_exists="replace",
        chunksize=3,
    )


mlops_sql_failing_load()
