"""Two ``@ml.task`` tasks passing a pandas DataFrame (unmapped), for the cluster without the FAB
provider (tests/test_cluster_without_fab.py): the UI tests read the task names and the preview."""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["mlops-test"])
def mlops_cluster_nofab():
    @ml.task
    def load_orchard() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "tree_id": [101, 102, 103],
                "variety": ["bramley", "cox", "gala"],
                "apples_kg": [12.5, 8.25, 15.0],
            }
        )

    @ml.task
    def add_yield_class(df: pd.DataFrame) -> pd.DataFrame:
        # Cleaning in place, as tasks do: the frame read back must take assignments ("assignment
        # destination is read-only" when a column was a view of Arrow memory).
        df.loc[df["apples_kg"] > 50, "apples_kg"] = 50.0
        return df.assign(yield_class=["high" if kg > 10 else "low" for kg in df["apples_kg"]])

    add_yield_class(load_orchard())


mlops_cluster_nofab()
