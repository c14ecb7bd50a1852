"""The classic operators, for DAGs written without TaskFlow. ``run_conf`` drives each run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_mlops_provider.decorators import ml_metric
from airflow_mlops_provider.operators.checks import DataFrameCheckOperator, MetricCheckOperator


def make_frame(**context) -> pd.DataFrame:
    conf = context["dag_run"].conf or {}
    rng = np.random.default_rng(conf.get("seed", 0))
    n = 500
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.integers(18, 90, n).astype("float64"),
            "spend": rng.normal(100 + conf.get("shift", 0) * 30, 30, n),
            "segment": rng.choice(["new", "loyal"], n),
        }
    )
    frame.loc[: conf.get("young", 0) - 1, "age"] = 5.0
    return frame


def publish(**context) -> str:
    return "published"


with DAG("mlops_classic_checks", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    extract = PythonOperator(task_id="extract", python_callable=make_frame)
    columns_ok = DataFrameCheckOperator(
        task_id="columns_ok",
        data=extract.output,
        checks={
            "columns": {
                "age": {"null_check": {"equal_to": 0}, "min": {"geq_to": 18}},
                "id": {"unique_check": {"equal_to": 0}},
                "segment": {"allowed_values": ["new", "loyal"]},
            },
            "table": {"row_count": {"geq_to": 100}},
        },
        severity="error",
        max_failing_samples=5,
    )
    no_drift = DataFrameCheckOperator(
        task_id="no_drift",
        data=extract.output,
        checks={
            "table": {
                "drift": {"ks_threshold": 0.2, "columns": ["spend", "segment"]},
                "freshness": {"task_id": "extract", "max_age_seconds": 3600},
            }
        },
        severity="warning",
    )

    @ml_metric
    def quality(df: pd.DataFrame, **context) -> dict:
        return {"accuracy": (context["dag_run"].conf or {}).get("accuracy", 0.9)}

    accuracy_gate = MetricCheckOperator(
        task_id="accuracy_gate", metric_task_id="quality", name="accuracy", lower=0.8, severity="error"
    )
    done = PythonOperator(task_id="publish", python_callable=publish)
    quality(extract.output) >> accuracy_gate
    [columns_ok, accuracy_gate] >> done
