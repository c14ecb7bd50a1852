"""Lookups of earlier runs from inside a worker (Airflow 3 workers have no database access).

They go through the Task SDK (the API server answers), so they work on any executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


def previous_successful_runs(ti: Any, task_id: str, limit: int) -> Iterator[Any]:
    """Earlier successful task instances of ``task_id`` in this DAG, newest first.

    Runs are ordered by logical date; a run without one (a manual run triggered without a logical
    date) has no defined predecessor, so nothing is returned for it.
    """
    from airflow.sdk.execution_time.comms import GetPreviousTI, PreviousTIResult
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    dag_run = ti.get_template_context().get("dag_run")
    cursor = getattr(dag_run, "logical_date", None)
    found = 0
    while cursor is not None and found < limit:
        response = SUPERVISOR_COMMS.send(
            GetPreviousTI(
                dag_id=ti.dag_id,
                task_id=task_id,
                logical_date=cursor,
                map_index=ti.map_index if task_id == ti.task_id else -1,
                state="success",
            )
        )
        previous = response.task_instance if isinstance(response, PreviousTIResult) else None
        if previous is None or previous.logical_date is None or previous.logical_date >= cursor:
            return
        found += 1
        yield previous
        cursor = previous.logical_date


def pull(ti: Any, task_id: str, key: str, run_id: str, map_index: int = -1) -> Any:
    """An XCom of another run (loaded through the XCom backend)."""
    return ti.xcom_pull(task_ids=task_id, key=key, run_id=run_id, map_indexes=map_index)


def previous_artifact(task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """Inside a running task: ``task_id``'s value from its previous successful run, or ``None``.

    Drift checks compare today's data with it::

        @ml.check(severity="warning")
        def no_drift(df):
            return ml.checks.drift(df, ml.previous_artifact("extract"))
    """
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    for previous in previous_successful_runs(ti, task_id, 1):
        return pull(ti, task_id, key, previous.run_id, map_index)
    return None


def last_success(task_id: str) -> Any:
    """Inside a running task: the newest earlier successful instance of ``task_id`` (or ``None``).

    Its ``end_date`` says how fresh that task's artifacts are.
    """
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return next(iter(previous_successful_runs(ti, task_id, 1)), None)
