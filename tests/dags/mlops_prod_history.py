"""A daily ML pipeline for the production-path tests: a frame, a drift check against the previous
successful run, a check returning a boolean Series, a metric with a regression gate, and a mapped
task.

``conf`` drives a run: ``accuracy`` is the metric's value (default 0.9), ``shift`` moves the
``score`` column (drift).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, get_current_context

from airflow_mlops_provider import ml

FEATURES = ["age", "score"]


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mlops-test"],
)
def mlops_prod_history():
    @ml.task
    def extract() -> pd.DataFrame:
        conf = get_current_context()["dag_run"].conf or {}
        rng = np.random.default_rng(7)
        frame = pd.DataFrame(
            {
                "customer_id": np.arange(1_000, 1_200),
                "age": rng.integers(18, 80, 200).astype("float64"),
                "score": rng.normal(0.5, 0.1, 200) + float(conf.get("shift", 0.0)),
                "segment": pd.array(rng.choice(["gold", "silver", "bronze"], 200), dtype="string"),
            }
        )
        return frame[["customer_id", *FEATURES, "segment"]]

    @ml.check(severity="warning")
    def no_drift(df: pd.DataFrame):
        return ml.checks.drift(df, ml.previous_artifact("extract"))

    @ml.check(severity="warning")
    def ages_plausible(df: pd.DataFrame) -> pd.Series:
        return df["age"].between(18, 80)

    @ml.metric(lower=0.2, regression=ml.Regression(window=3, max_drop=0.1))
    def quality(df: pd.DataFrame) -> dict:
        conf = get_current_context()["dag_run"].conf or {}
        return {"accuracy": float(conf.get("accuracy", 0.9))}

    @ml.task
    def shard(part: int) -> pd.DataFrame:
        return pd.DataFrame({"part": [part] * 3, "value": [part * 1.5, 2.0, 3.0]})

    frame = extract()
    no_drift(frame)
    ages_plausible(frame)
    quality(frame)
    shard.expand(part=[0, 1])


mlops_prod_history()
