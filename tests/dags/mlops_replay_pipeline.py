"""Replay: an @ml.task that fails above a param's limit, a mapped @ml.task over artifacts, a plain @task."""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider import ml

LIMIT = 100


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"rows": 6, "threshold": 10},
)
def mlops_replay_pipeline():
    @task
    def raw(params=None) -> pd.DataFrame:
        rows = int(params["rows"])
        return pd.DataFrame(
            {
                "id": range(rows),
                "amount": [float(i * 3) for i in range(rows)],
                "city": [("a", "b", "c")[i % 3] for i in range(rows)],
            }
        )

    @ml.task
    def features(raw: pd.DataFrame, params=None) -> pd.DataFrame:
        threshold = int(params["threshold"])
        if threshold > LIMIT:
            raise ValueError(f"threshold {threshold} is above the limit {LIMIT}")
        out = raw[raw["amount"] >= threshold].copy()
        out["large"] = out["amount"] > 2 * threshold
        return out

    @task
    def parts() -> list[pd.DataFrame]:
        return [pd.DataFrame({"v": [i * 10 + j for j in range(3)]}) for i in range(3)]

    @ml.task
    def scaled(part: pd.DataFrame, factor: int) -> int:
        return int(part["v"].sum()) * factor

    @task
    def plain(frame: pd.DataFrame) -> int:
        return len(frame)

    frame = raw()
    features(frame)
    scaled.expand(part=parts(), factor=[1, 100])
    plain(frame)


mlops_replay_pipeline()
