"""A small ML pipeline passing a DataFrame, an array and a fitted model between tasks.

There is no serialization, S3 or file code here: with ``ArtifactXComBackend`` configured, each
return value is stored in its own format (Arrow IPC tables, .npy, cloudpickle) and handed to the next task.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, task
from sklearn.linear_model import LogisticRegression

from airflow_mlops_provider import ArtifactRef, Columns


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlops", "example"],
)
def example_typed_artifacts():
    @task
    def extract() -> pd.DataFrame:
        rng = np.random.default_rng(42)
        n = 5_000
        customers = pd.DataFrame(
            {
                "age": rng.integers(18, 80, n),
                "spend": rng.gamma(2.0, 50.0, n).round(2),
                "visits": rng.poisson(3, n),
                "segment": pd.Categorical(rng.choice(["new", "loyal", "lapsed"], n)),
            },
            index=pd.RangeIndex(n, name="customer_id"),
        )
        customers["churned"] = (customers["visits"] < 2) & (customers["spend"] < 80)
        return customers

    @task
    def labels(customers: Annotated[pd.DataFrame, Columns("churned")]) -> np.ndarray:
        # Only the "churned" column is read from the stored table file.
        return customers["churned"].to_numpy()

    @task
    def train(customers: pd.DataFrame, y: np.ndarray) -> LogisticRegression:
        features = customers[["age", "spend", "visits"]].to_numpy()
        return LogisticRegression(max_iter=500).fit(features, y)

    @task
    def score(customers: ArtifactRef[pd.DataFrame], model: LogisticRegression) -> pd.DataFrame:
        # Stream the table batch by batch: the task never holds all of it in memory.
        parts = []
        for batch in customers.iter_pandas(batch_size=1_000, columns=["age", "spend", "visits"]):
            batch["score"] = model.predict_proba(batch[["age", "spend", "visits"]].to_numpy())[:, 1]
            parts.append(batch)
        return pd.concat(parts, ignore_index=True)

    @task
    def report(scores: pd.DataFrame, y: np.ndarray) -> dict:
        predicted = scores["score"].to_numpy() > 0.5
        return {"rows": len(scores), "accuracy": round(float((predicted == y).mean()), 4)}

    customers = extract()
    y = labels(customers)
    model = train(customers, y)
    report(score(customers, model), y)


example_typed_artifacts()
