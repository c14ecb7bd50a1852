"""A DAG with one artifact of each preview kind, a warning check, a warning metric and a failure.

The UI tests render its pages: the DataFrame holds a ``<script>`` cell that must come out escaped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, task
from PIL import Image
from sklearn.linear_model import LogisticRegression

from airflow_mlops_provider.decorators import ml_check, ml_metric, ml_task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_ui_shop():
    @ml_task
    def make_frame() -> pd.DataFrame:
        return pd.DataFrame(
            {"name": ["<script>alert(1)</script>", "plain", "x"], "score": [0.5, 0.25, 0.75]},
            index=pd.RangeIndex(10, 13, name="customer_id"),
        )

    @task
    def make_array() -> np.ndarray:
        return np.arange(12, dtype=np.float32).reshape(3, 4)

    @task
    def make_image() -> Image.Image:
        return Image.new("RGB", (8, 6), (10, 20, 30))

    @task
    def make_document() -> dict:
        return {"notes": [f"<b>bold</b> note number {i}" for i in range(300)]}

    @task
    def make_number() -> int:
        return 42

    @task
    def make_flag() -> bool:
        return True

    @task
    def train() -> LogisticRegression:
        return LogisticRegression(C=0.5).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])

    @ml_check(severity="warning")
    def scores_high(df: pd.DataFrame) -> pd.Series:
        return df["score"] > 0.3

    @ml_metric(lower={"accuracy": 0.9}, upper={"loss": 1.0}, severity="warning")
    def evaluate(df: pd.DataFrame) -> dict:
        return {"accuracy": 0.8, "loss": 0.4}

    @task
    def explode() -> None:
        raise ValueError("the model exploded")

    frame = make_frame()
    scores_high(frame)
    evaluate(frame)
    make_array()
    make_image()
    make_document()
    make_number()
    make_flag()
    train()
    explode()


mlops_ui_shop()
