"""What a replay needs from the metadata DB: where a DAG's file is and which task tries were recorded.

Read only: a replay (:mod:`airflow_mlops_provider.local.replay`) must leave the metadata DB as it
found it, so nothing here writes, and the XCom rows it resolves inputs against are read through
:mod:`.records`.
"""

from __future__ import annotations

from typing import Any

from airflow_mlops_provider.catalog import records
from airflow_mlops_provider.catalog._session import with_session
from airflow_mlops_provider.records import TASK_KEY, TaskRecord


def dag_file(dag_id: str, *, session: Any = None) -> str | None:
    """The file the DAG processor last parsed the DAG from, or ``None`` for an unknown DAG."""
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    return with_session(
        session, lambda s: s.scalar(select(DagModel.fileloc).where(DagModel.dag_id == dag_id))
    )


def recorded_runs(dag_id: str, task_id: str, map_index: int = -1, *, session: Any = None) -> list[str]:
    """Runs in which this task instance pushed an ``mlops.task`` record, the run that happened last
    first (:mod:`.runs` order)."""
    rows = records.xcoms(dag_id, task_id=task_id, map_index=map_index, key=TASK_KEY, session=session)
    return list(dict.fromkeys(row.run_id for row in rows))


def task_record(
    dag_id: str, run_id: str, task_id: str, map_index: int = -1, *, session: Any = None
) -> TaskRecord | None:
    """The ``mlops.task`` record of one task instance of a run (its last try), if it has one."""
    rows = records.xcoms(dag_id, run_id, task_id, map_index, key=TASK_KEY, session=session)
    return TaskRecord.from_row(rows[0].value) if rows else None


def map_indexes(dag_id: str, run_id: str, task_id: str, *, session: Any = None) -> list[int]:
    """Map indexes of a task's instances in a run (``[-1]`` for an unmapped task that ran)."""
    return sorted(
        {ti["map_index"] for ti in records.task_instances(dag_id, run_id, task_id, session=session)}
    )
