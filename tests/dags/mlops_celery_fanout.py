"""Fan out to N mapped tasks (``shards`` param, default 500), each returning a DataFrame, and reduce.

The reduce rebuilds every shard's expected frame and compares it exactly (values, dtypes, the
categorical's categories, the timezone-aware index with its frequency), and counts distinct frames:
a value lost, swapped between tasks or changed on the way fails the run (with ``strict``, the
default; dev/bench_fanout.py turns it off to report what another XCom backend changes).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, get_current_context, task

ROWS = 200


def shard_frame(shard: int) -> pd.DataFrame:
    rng = np.random.default_rng(shard)
    index = pd.date_range("2026-01-01", periods=ROWS, freq="min", tz="Europe/Paris", name="at")
    return pd.DataFrame(
        {
            "shard": np.full(ROWS, shard, dtype="int64"),
            "x": rng.normal(size=ROWS),
            "label": pd.Categorical(rng.choice(["a", "b", "c"], ROWS), categories=["a", "b", "c"]),
            "name": [f"s{shard}-{k}" for k in range(ROWS)],
        },
        index=index + pd.Timedelta(seconds=shard),
    )


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1),
    catchup=False,
    params={"shards": 500, "strict": True},
    default_args={"retries": 4, "retry_delay": timedelta(seconds=10)},
    tags=["mlops-test"],
)
def mlops_celery_fanout():
    @task
    def shards() -> list[int]:
        return list(range(int(get_current_context()["params"]["shards"])))

    @task
    def make(shard: int) -> pd.DataFrame:
        return shard_frame(shard)

    @task
    def reduce(frames) -> dict:
        digests, changed = set(), []
        for shard, frame in enumerate(frames):
            expected = shard_frame(shard)
            try:
                pd.testing.assert_frame_equal(frame, expected, check_exact=True, check_freq=True)
                assert frame.index.freq == expected.index.freq, f"index freq {frame.index.freq}"
            except AssertionError as error:
                changed.append(f"shard {shard}: {str(error).splitlines()[0]}")
            digests.add(int(pd.util.hash_pandas_object(frame).sum()))
        if changed and get_current_context()["params"]["strict"]:
            raise ValueError(f"{len(changed)} frames came back changed, first: {changed[0]}")
        count = len(frames)
        return {"frames": count, "distinct": len(digests), "rows": count * ROWS, "changed": changed[:3]}

    reduce(make.expand(shard=shards()))


mlops_celery_fanout()
