"""The decorators through Airflow's own ``@task`` namespace (provider ``task-decorators``),
TaskFlow arguments passing through, params recorded, and a pandera schema as a check."""

from __future__ import annotations

from datetime import timedelta

import great_expectations as gx
import pandas as pd
import pandera.pandas as pa
import pendulum
from airflow.sdk import Param, dag, task

SCHEMA = pa.DataFrameSchema({"id": pa.Column(int, unique=True), "value": pa.Column(float, pa.Check.ge(0))})


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1),
    catchup=False,
    params={"negatives": Param(0, type="integer")},
)
def mlops_task_namespace():
    @task.ml(
        retries=2,
        retry_delay=timedelta(seconds=1),
        pool="default_pool",
        queue="ml",
        executor_config={"cpu": 2},
        multiple_outputs=True,
    )
    def produce(**context) -> dict:
        frame = pd.DataFrame({"id": range(6), "value": [float(i) for i in range(6)]})
        frame.loc[: context["params"]["negatives"] - 1, "value"] = -1.0
        return {"frame": frame, "rows": len(frame)}

    @task.ml_check(severity="warning")
    def schema_ok(df: pd.DataFrame) -> pd.DataFrame:
        return SCHEMA.validate(df, lazy=True)

    @task.ml_check(severity="warning")
    def schema_returned(df: pd.DataFrame) -> pa.DataFrameSchema:
        return SCHEMA  # validated against df by the check

    @task.ml_check(severity="warning")
    def expectation_returned(df: pd.DataFrame):
        return gx.expectations.ExpectColumnValuesToBeBetween(column="value", min_value=0)

    @task.ml_metric(upper={"rows": 10})
    def size(rows: int) -> dict:
        return {"rows": rows}

    @task.ml
    def double(x: int) -> int:
        return 2 * x

    @task
    def total(values) -> int:
        return sum(values)

    out = produce()
    schema_ok(out["frame"])
    schema_returned(out["frame"])
    expectation_returned(out["frame"])
    size(out["rows"])
    total(double.partial().expand(x=[1, 2, 3]))


mlops_task_namespace()
