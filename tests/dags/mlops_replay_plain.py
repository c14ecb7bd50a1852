"""Replay of plain TaskFlow tasks: one that fails above a param's limit, a mapped one, a classic operator."""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"rows": 4, "limit": 3},
)
def mlops_replay_plain():
    @task
    def raw(params=None) -> pd.DataFrame:
        return pd.DataFrame({"x": range(int(params["rows"]))})

    @task
    def check_rows(frame: pd.DataFrame, params=None) -> int:
        limit = int(params["limit"])
        if len(frame) > limit:
            raise RuntimeError(f"{len(frame)} rows, above the limit {limit}")
        return len(frame)

    @task
    def shout(word: str, frame: pd.DataFrame) -> str:
        return f"{word.upper()}{len(frame)}"

    frame = raw()
    check_rows(frame)
    shout.partial(frame=frame).expand(word=["a", "b"])
    EmptyOperator(task_id="classic")


mlops_replay_plain()
