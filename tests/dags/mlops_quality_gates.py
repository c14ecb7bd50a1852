"""Checks (warning and error), metrics with bounds and regression, mapped checks, a notifier.

``run_conf`` drives each run: ``bad_scores`` rows get a score outside [0, 1] (error check),
``null_rows`` rows get a null age (warning check), ``accuracy`` is the metric's value.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import BaseNotifier, dag, get_current_context

from airflow_mlops_provider.checks import builtin
from airflow_mlops_provider.decorators import Regression, ml_check, ml_metric, ml_task
from airflow_mlops_provider.runtime import last_success, previous_artifact


class FileNotifier(BaseNotifier):
    """Appends one JSON line per notification (the tests read the file)."""

    def notify(self, context) -> None:
        path = os.environ["MLOPS_TEST_NOTIFICATIONS"]
        with open(path, "a") as out:
            out.write(json.dumps({"task_id": context["ti"].task_id, "run_id": context["run_id"]}) + "\n")


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_quality_gates():
    @ml_task(memory_warning_mb=1)
    def scores() -> pd.DataFrame:
        conf = get_current_context()["dag_run"].conf or {}
        frame = pd.DataFrame(
            {"age": np.arange(20, 40, dtype="float64"), "score": np.linspace(0.05, 0.95, 20)},
            index=pd.RangeIndex(100, 120, name="customer_id"),
        )
        frame.iloc[: conf.get("bad_scores", 0), 1] = 1.5
        frame.iloc[-conf.get("null_rows", 0) or len(frame) :, 0] = np.nan if conf.get("null_rows") else 0
        if not conf.get("null_rows"):
            frame["age"] = np.arange(20, 40, dtype="float64")
        return frame

    @ml_check(severity="warning", notifier=FileNotifier())
    def ages_present(df: pd.DataFrame) -> pd.Series:
        return df["age"].notna()

    @ml_check(severity="error", max_failing_samples=3)
    def scores_are_probabilities(df: pd.DataFrame) -> pd.Series:
        return df["score"].between(0, 1)

    @ml_metric(
        lower=0.5,
        severity="warning",
        notifier=FileNotifier(),
        regression=Regression(window=3, max_drop=0.1, min_history=2),
    )
    def model_quality(df: pd.DataFrame) -> dict:
        conf = get_current_context()["dag_run"].conf or {}
        return {"accuracy": conf.get("accuracy", 0.9), "rows": len(df)}

    @ml_check(severity="error")
    def shard_ok(shard: int) -> bool:
        return shard != 13

    @ml_check(severity="warning")
    def scores_stable(df: pd.DataFrame):
        return builtin.drift(df, previous_artifact("scores"), columns=["score"])

    @ml_check(severity="warning")
    def scores_fresh():
        last = last_success("scores")
        return builtin.freshness(last.end_date if last else None, max_age=3600)

    @ml_task
    def deploy(df: pd.DataFrame) -> str:
        return f"deployed {len(df)} scores"

    data = scores()
    gate = scores_are_probabilities(data)
    ages_present(data)
    model_quality(data)
    scores_stable(data)
    scores_fresh()
    shards = shard_ok.expand(shard=[1, 2, 3])
    [gate, shards] >> deploy(data)


mlops_quality_gates()
