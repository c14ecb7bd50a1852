"""Lookups of earlier runs from inside a worker (Airflow 3 workers have no database access).

"Earlier" follows the catalog's order of runs (:mod:`airflow_mlops_provider.catalog.runs`): the
scheduler records each run's predecessors when it starts (:mod:`~airflow_mlops_provider.catalog.history`)
and the API server says, live, in which of them a task succeeded. Runs without a logical date
(triggered from the UI, the REST API or ``airflow dags trigger``) have predecessors like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider import _compat
from airflow_mlops_provider.catalog import history
from airflow_mlops_provider.records import METRICS_KEY, MetricRecord

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True)
class EarlierRun:
    """A run in which the task succeeded: its id and the run's dates."""

    run_id: str
    start_date: datetime | None = None
    end_date: datetime | None = None
    run_after: datetime | None = None


def _dates(dag_id: str, run_id: str) -> EarlierRun:
    info = _compat.dag_run_info(dag_id, run_id)
    if info is None:
        return EarlierRun(run_id)
    return EarlierRun(run_id, info.start_date, info.end_date, info.run_after)


def previous_successful_runs(
    ti: Any, task_id: str, limit: int, map_index: int | None = None
) -> list[EarlierRun]:
    """Up to ``limit`` earlier runs of this DAG in which ``task_id`` succeeded, newest first."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    if map_index is None:
        map_index = ti.map_index if task_id == ti.task_id else -1
    dag_run = ti.get_template_context()["dag_run"]
    recorded = history.read(ArtifactManager.configured().store, ti.dag_id, dag_run.run_id)
    if recorded is not None:
        states = (
            _compat.task_states(ti.dag_id, task_id, map_index, recorded.earlier) if recorded.earlier else {}
        )
        chosen = [run_id for run_id in recorded.earlier if states.get(run_id) == "success"][:limit]
        return [_dates(ti.dag_id, run_id) for run_id in chosen]
    # No recorded history (dag.test() runs, or the scheduler could not write it): order the runs here.
    states = _compat.task_states(ti.dag_id, task_id, map_index, None)
    candidates = [r for r, state in states.items() if state == "success" and r != dag_run.run_id]
    runs = [_dates(ti.dag_id, run_id) for run_id in candidates[: history.FALLBACK_LIMIT]]
    mine = dag_run.start_date or dag_run.run_after
    earlier = [r for r in runs if (r.start_date or r.run_after) and (r.start_date or r.run_after) < mine]
    earlier.sort(key=lambda r: r.start_date or r.run_after, reverse=True)
    return earlier[:limit]


def pull(ti: Any, task_id: str, key: str, run_id: str, map_index: int = -1) -> Any:
    """An XCom of another run (loaded through the XCom backend)."""
    return ti.xcom_pull(task_ids=task_id, key=key, run_id=run_id, map_indexes=map_index)


def metric_values_before(
    ti: Any, task_id: str, windows: dict[str, int], map_index: int = -1
) -> dict[str, list[float]]:
    """Values of the named metrics of ``task_id`` in previous successful runs, newest first."""
    if not windows:
        return {}
    history: dict[str, list[float]] = {name: [] for name in windows}
    for previous in previous_successful_runs(ti, task_id, max(windows.values()), map_index):
        record = MetricRecord.from_row(pull(ti, task_id, METRICS_KEY, previous.run_id, map_index))
        for entry in record.metrics:
            if entry.name in history and entry.value is not None:
                history[entry.name].append(float(entry.value))
    return {name: values[: windows[name]] for name, values in history.items()}


def previous_artifact(task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """Inside a running task: ``task_id``'s value from its previous successful run, or ``None``.

    Drift checks compare today's data with it (and record ``skipped`` when it is ``None``)::

        @ml.check(severity="warning")
        def no_drift(df):
            return ml.checks.drift(df, ml.previous_artifact("extract"))
    """
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    for previous in previous_successful_runs(ti, task_id, 1, map_index):
        return pull(ti, task_id, key, previous.run_id, map_index)
    return None


def last_success(task_id: str) -> EarlierRun | None:
    """Inside a running task: the newest earlier run in which ``task_id`` succeeded (or ``None``).

    Its ``end_date`` (the end of that run) says how fresh that task's artifacts are.
    """
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return next(iter(previous_successful_runs(ti, task_id, 1)), None)
