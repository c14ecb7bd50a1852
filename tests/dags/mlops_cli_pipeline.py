"""A three-step ``@ml.task`` pipeline (extract -> features -> train) plus one task per preview kind.

Used by the CLI and notebook API tests: ``params.rows`` sets the table size, so runs differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, get_current_context, task
from PIL import Image
from sklearn.linear_model import LogisticRegression

from airflow_mlops_provider.decorators import ml_task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1),
    catchup=False,
    params={"rows": 120, "alpha": 0.5},
    tags=["mlops-test"],
)
def mlops_cli_pipeline():
    @ml_task
    def extract() -> pd.DataFrame:
        rows = int(get_current_context()["params"]["rows"])
        rng = np.random.default_rng(rows)
        return pd.DataFrame(
            {
                "customer_id": np.arange(rows),
                "age": rng.integers(18, 80, rows),
                "spend": rng.gamma(2.0, 10.0, rows).round(2),
                "segment": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
            }
        )

    @ml_task
    def features(raw: pd.DataFrame) -> pd.DataFrame:
        out = raw.assign(spend_per_year=raw["spend"] / raw["age"])
        out["churned"] = (out["spend"] < out["spend"].median()).astype(int)
        return out

    @ml_task
    def train(feats: pd.DataFrame) -> LogisticRegression:
        alpha = float(get_current_context()["params"]["alpha"])
        model = LogisticRegression(C=alpha, max_iter=200)
        return model.fit(feats[["age", "spend", "spend_per_year"]], feats["churned"])

    @task
    def weights() -> np.ndarray:
        return np.arange(12, dtype=np.float64).reshape(3, 4)

    @task
    def history() -> dict:
        return {"epochs": [{"epoch": i, "loss": round(1 / (i + 1), 4)} for i in range(300)]}

    @task
    def blob() -> bytes:
        return b"\x89MLOPS\x00\x01" + bytes(range(256)) * 4

    @task
    def chart() -> Image.Image:
        return Image.new("RGB", (16, 9), (200, 30, 30))

    @task
    def summary() -> dict:
        return {"status": "ok", "rows": int(get_current_context()["params"]["rows"])}

    @task
    def shards() -> list[pd.DataFrame]:
        return [pd.DataFrame({"v": [i, i + 1]}) for i in range(2)]

    train(features(extract()))
    weights()
    history()
    blob()
    chart()
    summary()
    shards()


mlops_cli_pipeline()
