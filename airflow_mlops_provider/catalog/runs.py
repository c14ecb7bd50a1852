"""The order in which DAG runs happened: one definition of "previous", "latest" and "history".

Airflow 3 creates runs without a logical date for UI, REST and ``airflow dags trigger`` runs, and a
scheduled run's ``run_after`` is the end of its data interval, which can lie before manual runs
that were started earlier. Neither orders runs as they happened. A run *happened* when it started
(``start_date``; clearing a finished run starts it again, so a re-run counts as of its re-run);
a run that has not started yet is placed at its ``run_after``. Ties go to the run created first.

Every face (UI, CLI, notebook, gc) and the worker-side lookups of earlier runs use this module,
so they cannot disagree.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.catalog._session import state_name, with_session

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy.orm import Session

#: How many earlier runs a run's history (``history.RunHistory``) lists.
HISTORY_LIMIT = 200


@contextlib.contextmanager
def private_session() -> Iterator[Session]:
    """A session of its own on Airflow's engine, for callers inside another component's loop
    (``create_session()`` there would hand out, and then close, that component's session)."""
    from airflow import settings
    from sqlalchemy.orm import Session as OrmSession

    with OrmSession(settings.engine) as session:
        yield session


def happened_at() -> Any:
    """SQL expression: when a run happened (its start, or ``run_after`` while it has not started)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import func

    return func.coalesce(DagRun.start_date, DagRun.run_after)


def newest_first() -> list[Any]:
    """``ORDER BY`` clauses putting the run that happened last first."""
    from airflow.models.dagrun import DagRun

    return [happened_at().desc(), DagRun.id.desc()]


def oldest_first() -> list[Any]:
    from airflow.models.dagrun import DagRun

    return [happened_at().asc(), DagRun.id.asc()]


def sort_key(run: Any) -> tuple[datetime, int]:
    """The same order for runs already loaded (dicts with ``start_date``/``run_after``/``id``)."""
    get = run.get if isinstance(run, dict) else lambda name: getattr(run, name, None)
    return (get("start_date") or get("run_after"), get("id") or 0)


def columns() -> list[Any]:
    from airflow.models.dagrun import DagRun

    return [
        DagRun.id,
        DagRun.run_id,
        DagRun.state,
        DagRun.run_type,
        DagRun.logical_date,
        DagRun.run_after,
        DagRun.start_date,
        DagRun.end_date,
    ]


def as_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "state": state_name(row.state),
        "run_type": state_name(row.run_type),
        "logical_date": row.logical_date,
        "run_after": row.run_after,
        "start_date": row.start_date,
        "end_date": row.end_date,
    }


def dag_runs(
    dag_id: str, limit: int = 50, *, state: str | None = None, session: Session | None = None
) -> list[dict[str, Any]]:
    """Runs of a DAG (optionally only those in ``state``), the one that happened last first."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    def query(s: Any) -> list[dict[str, Any]]:
        stmt = select(*columns()).where(DagRun.dag_id == dag_id)
        if state is not None:
            stmt = stmt.where(DagRun.state == state)
        return [as_dict(row) for row in s.execute(stmt.order_by(*newest_first()).limit(limit))]

    return with_session(session, query)


def dag_ids(*, session: Session | None = None) -> list[str]:
    """Every DAG Airflow knows (parsed, or with runs left from before it was removed), sorted."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select, union

    def query(s: Any) -> list[str]:
        return sorted(s.scalars(union(select(DagModel.dag_id), select(DagRun.dag_id))))

    return with_session(session, query)


def runs_where_task_started(
    dag_id: str, task_id: str, map_index: int, *, session: Session | None = None
) -> list[str]:
    """Run ids in which this task instance started (whatever its state), the run that happened
    last first."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    def query(s: Any) -> list[str]:
        stmt = (
            select(DagRun.run_id)
            .join(
                TaskInstance, (TaskInstance.dag_id == DagRun.dag_id) & (TaskInstance.run_id == DagRun.run_id)
            )
            .where(
                DagRun.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == map_index,
                TaskInstance.start_date.is_not(None),
            )
            .order_by(*newest_first())
        )
        return list(s.scalars(stmt))

    return with_session(session, query)


def run_conf(dag_id: str, run_id: str, *, session: Session | None = None) -> dict[str, Any]:
    """The conf a run was triggered with (empty when none)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    def query(s: Any) -> dict[str, Any]:
        return s.scalar(select(DagRun.conf).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) or {}

    return with_session(session, query)


def dag_run(dag_id: str, run_id: str, *, session: Session | None = None) -> dict[str, Any] | None:
    """One run, or ``None`` when the DAG has no run with that id."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    def query(s: Any) -> dict[str, Any] | None:
        row = s.execute(select(*columns()).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
        return None if row is None else as_dict(row)

    return with_session(session, query)


def earlier_runs(
    dag_id: str,
    run: dict[str, Any],
    limit: int = 1,
    *,
    state: str | None = None,
    session: Session | None = None,
) -> list[dict[str, Any]]:
    """Runs of the DAG that happened before ``run`` (optionally only in ``state``), newest first."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import and_, or_, select

    at, run_pk = sort_key(run)

    def query(s: Any) -> list[dict[str, Any]]:
        stmt = select(*columns()).where(
            DagRun.dag_id == dag_id,
            DagRun.id != run_pk,
            or_(happened_at() < at, and_(happened_at() == at, DagRun.id < run_pk)),
        )
        if state is not None:
            stmt = stmt.where(DagRun.state == state)
        return [as_dict(row) for row in s.execute(stmt.order_by(*newest_first()).limit(limit))]

    return with_session(session, query)


def previous_run(
    dag_id: str, run: dict[str, Any], *, session: Session | None = None
) -> dict[str, Any] | None:
    """The run of the same DAG that happened just before ``run``."""
    found = earlier_runs(dag_id, run, 1, session=session)
    return found[0] if found else None


def latest_runs(dag_ids: list[str], *, session: Session | None = None) -> dict[str, dict[str, Any]]:
    """The run of each DAG that happened last."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import func, select

    def query(s: Any) -> dict[str, dict[str, Any]]:
        ranked = select(
            *columns(),
            DagRun.dag_id,
            func.row_number().over(partition_by=DagRun.dag_id, order_by=newest_first()).label("rank"),
        ).where(DagRun.dag_id.in_(dag_ids))
        sub = ranked.subquery()
        rows = s.execute(select(sub).where(sub.c.rank == 1))
        return {row.dag_id: as_dict(row) for row in rows}

    return with_session(session, query) if dag_ids else {}


def resolve_run(
    dag_id: str, run_id: str, *, successful: bool = True, session: Session | None = None
) -> dict[str, Any] | None:
    """``run_id`` itself, or for ``"latest"`` / ``"previous"`` the last / second-to-last run that
    happened (only successful runs when ``successful``)."""
    if run_id not in ("latest", "previous"):
        return dag_run(dag_id, run_id, session=session)
    runs = dag_runs(dag_id, 2, state="success" if successful else None, session=session)
    index = 0 if run_id == "latest" else 1
    return runs[index] if len(runs) > index else None
