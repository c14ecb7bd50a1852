"""A reduce that walks the outputs of 24 mapped tasks, and a task that pulls one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, task

SHARDS = 24


def shard_frame(shard: int) -> pd.DataFrame:
    rng = np.random.default_rng(shard)
    return pd.DataFrame({"shard": np.full(500, shard), "x": rng.normal(size=500)})


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_read_ahead():
    @task
    def make(shard: int) -> pd.DataFrame:
        return shard_frame(shard)

    @task
    def reduce(frames) -> int:
        count = 0
        for shard, frame in enumerate(frames):
            pd.testing.assert_frame_equal(frame, shard_frame(shard), check_exact=True)
            count += 1
        return count

    @task
    def pick(frames) -> int:
        pd.testing.assert_frame_equal(frames[7], shard_frame(7), check_exact=True)
        return 7

    frames = make.expand(shard=list(range(SHARDS)))
    reduce(frames)
    pick(frames)


mlops_read_ahead()
