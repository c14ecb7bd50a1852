"""Replay with the current or the recorded code: the tests rewrite ``transform`` after a run."""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider import ml

MINIMUM = 4


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def mlops_replay_changing():
    @task
    def source() -> pd.DataFrame:
        return pd.DataFrame({"id": range(10), "score": [float(i) for i in range(10)]})

    @ml.task
    def transform(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["score"] >= MINIMUM].reset_index(drop=True)

    transform(source())


mlops_replay_changing()
