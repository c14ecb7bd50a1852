"""One task returning a 200 MB DataFrame (a multipart upload of many parts) and a check of it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, task

ROWS = 25_000_000  # one float64 column: 200 MB


def big_frame() -> pd.DataFrame:
    return pd.DataFrame({"x": np.random.default_rng(7).random(ROWS)})


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_celery_big():
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def big() -> pd.DataFrame:
        return big_frame()

    @task
    def check(frame: pd.DataFrame) -> dict:
        pd.testing.assert_frame_equal(frame, big_frame(), check_exact=True)
        return {"rows": len(frame)}

    check(big())


mlops_celery_big()
