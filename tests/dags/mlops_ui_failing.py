"""A run that fails the ordinary way, for the ML view's "what failed" and task pages: ``prepare``
succeeds (its log has a warning to show), ``summarize`` reads its frame (an input with a producer and
a preview), ``fit`` raises a ``ValueError`` with a message found nowhere else."""

from __future__ import annotations

import logging

import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.decorators import ml_task

ERROR = "the learning rate 7.5 diverged after 3 epochs"


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_ui_failing():
    @ml_task
    def prepare() -> pd.DataFrame:
        logging.getLogger(__name__).warning("prepared 3 training batches; batch 2 is larger than usual")
        return pd.DataFrame(
            {"batch": [1, 2, 3], "rows": [100, 250, 175], "source": ["<i>web</i>", "app", "app"]}
        )

    @ml_task
    def summarize(batches: pd.DataFrame) -> dict:
        return {"rows": int(batches["rows"].sum())}

    @task
    def fit(batches: pd.DataFrame) -> None:
        raise ValueError(ERROR)

    batches = prepare()
    summarize(batches)
    fit(batches)


mlops_ui_failing()
