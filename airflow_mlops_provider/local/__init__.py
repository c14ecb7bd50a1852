"""Run DAG code in this process: replay one task instance of a past run, or a whole DAG on a sample.

``replay`` (:func:`.replay.replay`) and ``run_local`` (:func:`.run_local.run_local`) are exported as
``ml.replay`` and ``ml.run_local``.
"""

from __future__ import annotations

from airflow_mlops_provider.local.replay import ReplayError, ReplayResult, replay
from airflow_mlops_provider.local.run_local import LocalRun, run_local

__all__ = ["LocalRun", "ReplayError", "ReplayResult", "replay", "run_local"]
