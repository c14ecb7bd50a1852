"""Values that repeat: the same table returned by two tasks, by ``multiple_outputs`` and across runs.

``params.variant`` changes one table only, so two runs share every other artifact's bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, get_current_context, task


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "label": rng.choice(["a", "b"], rows)})


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1),
    catchup=False,
    params={"variant": 0},
    tags=["mlops-test"],
)
def mlops_dedup():
    @task(multiple_outputs=True)
    def split() -> dict:
        return {"train": _table(2_000, 1), "test": _table(500, 2)}

    @task
    def reference_copy() -> pd.DataFrame:
        return _table(2_000, 1)  # the same bytes as split()["train"]

    @task
    def variant() -> np.ndarray:
        return np.full(1_000, int(get_current_context()["params"]["variant"]), dtype=np.int64)

    @task
    def check(train: pd.DataFrame, copy: pd.DataFrame, values: np.ndarray) -> dict:
        pd.testing.assert_frame_equal(train, copy)
        return {"rows": len(train), "variant": int(values[0])}

    parts = split()
    check(parts["train"], reference_copy(), variant())


mlops_dedup()
