"""Lazy handles (ArtifactRef, Columns), mapped tasks over artifacts, and retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_mlops_provider import ArtifactRef, Columns


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_lazy_and_mapped():
    @task
    def features() -> pd.DataFrame:
        rng = np.random.default_rng(0)
        return pd.DataFrame({f"c{i}": rng.normal(size=50_000) for i in range(10)})

    @task
    def stream_sum(data: ArtifactRef[pd.DataFrame]) -> dict:
        assert isinstance(data, ArtifactRef), type(data)
        total, rows, batches = 0.0, 0, 0
        for batch in data.iter_batches(batch_size=5_000, columns=["c0"]):
            assert batch.num_columns == 1
            total += float(np.asarray(batch.column(0)).sum())
            rows += batch.num_rows
            batches += 1
        return {"rows": rows, "batches": batches, "sum": total, "summary": data.summary}

    @task
    def two_columns(data: Annotated[pd.DataFrame, Columns("c1", "c2")]) -> list[str]:
        assert isinstance(data, pd.DataFrame), type(data)
        return list(data.columns)

    @task
    def eager(data: pd.DataFrame) -> float:
        return float(data["c0"].sum())

    @task
    def shards() -> list[pd.DataFrame]:
        return [pd.DataFrame({"v": np.arange(i * 10, i * 10 + 10)}) for i in range(4)]

    @task
    def shard_total(shard: pd.DataFrame) -> pd.DataFrame:
        assert isinstance(shard, pd.DataFrame), type(shard)
        return pd.DataFrame({"total": [int(shard["v"].sum())]})

    @task
    def reduce(parts) -> int:
        return sum(int(p["total"].iloc[0]) for p in parts)

    @task
    def widths() -> list[int]:
        return list(range(1, 31))

    @task
    def ones(width: int) -> np.ndarray:
        return np.ones(width)

    @task
    def count(arrays) -> int:
        return int(sum(a.sum() for a in arrays))

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def flaky() -> pd.DataFrame:
        ti = get_current_context()["ti"]
        if ti.try_number == 1:
            ti.xcom_push(key="progress", value=pd.DataFrame({"partial": [1]}))
            raise RuntimeError("first try fails on purpose")
        return pd.DataFrame({"try": [ti.try_number]})

    data = features()
    stream_sum(data)
    two_columns(data)
    eager(data)
    reduce(shard_total.expand(shard=shards()))
    count(ones.expand(width=widths()))
    flaky()


mlops_lazy_and_mapped()
