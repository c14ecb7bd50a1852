"""Two variants of one pipeline (param ``variant``), for comparing runs: the second has more rows,
an added column (``segment``), a removed one (``legacy``), a retyped one (``score``), more nulls and
more distinct values (``city``: 2 -> 3), a higher mean (``id``: 2.5 -> 3.5), a metric that moved and
a check that now warns."""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag, get_current_context

from airflow_mlops_provider.decorators import ml_check, ml_metric, ml_task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, params={"variant": 1})
def mlops_compare():
    @ml_task
    def customers() -> pd.DataFrame:
        if get_current_context()["params"]["variant"] == 1:
            return pd.DataFrame(
                {"id": [1, 2, 3, 4], "city": ["a", "a", "b", "b"], "score": [1, 2, 3, 4], "legacy": [0] * 4}
            )
        return pd.DataFrame(
            {
                "id": [1, 2, 3, 4, 5, 6],
                "city": ["a", None, "c", "c", "d", None],
                "score": [1.5, 2.0, 3.0, 4.0, 5.0, 6.0],
                "segment": ["x"] * 6,
            }
        )

    @ml_check(severity="warning")
    def small(frame: pd.DataFrame) -> bool:
        return len(frame) < 5

    @ml_metric(upper=5.0)
    def rows(frame: pd.DataFrame) -> float:
        return float(len(frame))

    frame = customers()
    small(frame)
    rows(frame)


mlops_compare()
