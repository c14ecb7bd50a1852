"""Records (checks, metrics, task records), task instances and XCom rows, from the metadata DB.

This module needs database access, so it runs where Airflow's database is reachable: the API
server, the CLI, a notebook with Airflow's config. Workers use the Task SDK instead
(:mod:`airflow_mlops_provider.runtime`). Histories are in the order runs happened (:mod:`.runs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.artifacts.manifest import Reference
from airflow_mlops_provider.catalog import runs as run_order
from airflow_mlops_provider.catalog._session import state_name, with_session
from airflow_mlops_provider.records import (
    CHECK_KEY,
    METRICS_KEY,
    RECORD_KEYS,
    TASK_KEY,
    CheckRecord,
    MetricRecord,
    TaskRecord,
)

if TYPE_CHECKING:
    from datetime import datetime


def _newest_run_ids(dag_id: str, runs: int) -> Any:
    """A subquery of the ids of a DAG's newest ``runs`` runs (to select records by run, not by row)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    newest = select(DagRun.id).where(DagRun.dag_id == dag_id).order_by(*run_order.newest_first())
    recent = newest.limit(runs).subquery()
    return select(recent.c.id)


def _records(
    dag_id: str,
    task_id: str | None,
    key: str,
    limit: int | None,
    session: Any = None,
    runs: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``key`` newest run first: at most ``limit`` rows, of the newest ``runs`` runs."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    def run(s: Any) -> list[dict[str, Any]]:
        stmt = (
            select(
                XComModel.task_id,
                XComModel.map_index,
                XComModel.value,
                DagRun.run_id,
                DagRun.logical_date,
                DagRun.run_after,
                DagRun.start_date,
                DagRun.state,
            )
            .join(DagRun, DagRun.id == XComModel.dag_run_id)
            .where(XComModel.dag_id == dag_id, XComModel.key == key)
            .order_by(*run_order.newest_first())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        if runs is not None:  # by run, not by row: a run with many checks must not push out others
            stmt = stmt.where(XComModel.dag_run_id.in_(_newest_run_ids(dag_id, runs)))
        if task_id is not None:
            stmt = stmt.where(XComModel.task_id == task_id)
        return [
            {
                "task_id": row.task_id,
                "map_index": row.map_index,
                "run_id": row.run_id,
                "logical_date": row.logical_date,
                "run_after": row.run_after,
                "run_start": row.start_date,
                "run_state": str(row.state) if row.state is not None else None,
                "record": row.value,
            }
            for row in s.execute(stmt)
        ]

    return with_session(session, run)


def metric_history(
    dag_id: str, task_id: str, name: str, limit: int = 100, *, session: Any = None
) -> list[dict[str, Any]]:
    """The values of metric ``name`` of ``task_id`` across runs, newest first.

    Each item: ``run_id``, ``logical_date``, ``run_after``, ``map_index``, ``value``, ``lower``,
    ``upper``, ``status`` (``ok``/``warning``/``failed``/``skipped``), ``breaches`` (why it is out of
    bounds or regressed), ``skipped`` (why a regression gate could not run) and the regression
    evaluation if any.
    """
    out = []
    for row in _records(dag_id, task_id, METRICS_KEY, limit, session):
        entry = MetricRecord.from_row(row["record"]).metric(name)
        if entry is not None:
            out.append(
                {
                    "run_id": row["run_id"],
                    "logical_date": row["logical_date"],
                    "run_after": row["run_after"],
                    "map_index": row["map_index"],
                    "value": entry.value,
                    "lower": entry.lower,
                    "upper": entry.upper,
                    "status": entry.status,
                    "breaches": entry.breaches,
                    "skipped": entry.skipped,
                    "regression": entry.regression,
                }
            )
    return out


def check_history(
    dag_id: str,
    task_id: str | None = None,
    limit: int | None = 100,
    *,
    runs: int | None = None,
    session: Any = None,
) -> list[dict[str, Any]]:
    """Check records (outcome, severity, message, failing samples) across runs, newest first: the
    fields of :class:`CheckRecord` and of the run. ``limit`` bounds the records, ``runs`` takes
    every record of the newest ``runs`` runs (the checks-by-runs grid)."""
    return [
        {**{k: v for k, v in row.items() if k != "record"}, **CheckRecord.from_row(row["record"]).to_row()}
        for row in _records(dag_id, task_id, CHECK_KEY, limit, session, runs)
    ]


# -- the ML view's read side -------------------------------------------------------------------------
# Everything the UI shows comes from these functions (plus the preview/manifest/snapshot objects in
# the artifact store), so the FastAPI app and the Flask-AppBuilder view cannot drift apart. Every
# function takes the ids the caller was *authorized* for; none of them checks permissions itself.

_NOT_PROBLEMS = (None, "ok", "skipped")
_REFERENCE_MARK = '%"__mlops__": "artifact"%'


def mlops_dag_ids(dag_ids: set[str] | None = None, *, session: Any = None) -> list[str]:
    """DAGs that produced artifacts or ML records, restricted to ``dag_ids`` when given."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import Text, cast, or_, select

    def run(s: Any) -> list[str]:
        stmt = select(XComModel.dag_id).distinct()
        stmt = stmt.where(
            or_(XComModel.key.in_(RECORD_KEYS), cast(XComModel.value, Text).like(_REFERENCE_MARK))
        )
        if dag_ids is not None:
            stmt = stmt.where(XComModel.dag_id.in_(sorted(dag_ids)))
        return sorted(s.scalars(stmt))

    if dag_ids is not None and not dag_ids:
        return []
    return with_session(session, run)


def task_instances(
    dag_id: str, run_id: str, task_id: str | None = None, *, session: Any = None
) -> list[dict[str, Any]]:
    """Task instances of a run (every map index), ordered by task id and map index."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    def run(s: Any) -> list[dict[str, Any]]:
        stmt = select(
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.start_date,
            TaskInstance.end_date,
            TaskInstance.duration,
            TaskInstance.operator,
        ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        if task_id is not None:
            stmt = stmt.where(TaskInstance.task_id == task_id)
        stmt = stmt.order_by(TaskInstance.task_id, TaskInstance.map_index)
        return [
            {
                "task_id": r.task_id,
                "map_index": r.map_index,
                "state": state_name(r.state),
                "try_number": r.try_number,
                "start_date": r.start_date,
                "end_date": r.end_date,
                "duration": r.duration,
                "operator": r.operator,
            }
            for r in s.execute(stmt)
        ]

    return with_session(session, run)


@dataclass(frozen=True)
class XComEntry:
    """One XCom row, as stored in the metadata DB (``value`` is the raw row, never deserialized).

    :param value: the JSON the XCom backend wrote: an inline value, an artifact reference, or a
        list/dict holding references.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: Any
    run_after: datetime | None = None
    run_state: str | None = None

    @property
    def references(self) -> list[Reference]:
        """The stored artifacts the row refers to (empty for an inline value)."""
        return [Reference.from_row(row) for _, row in codec.iter_references(self.value)]

    def describe(self) -> str:
        where = f"dag {self.dag_id!r}, run {self.run_id!r}, task {self.task_id!r}"
        if self.map_index >= 0:
            where += f", map index {self.map_index}"
        return f"{where}, key {self.key!r}"


def xcoms(
    dag_id: str,
    run_id: str | None = None,
    task_id: str | None = None,
    map_index: int | None = None,
    *,
    key: str | None = None,
    session: Any = None,
) -> list[XComEntry]:
    """XCom rows of a DAG (optionally of one run, task instance or key): the raw stored values,
    the run that happened last first, then by task id, map index and key."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    def run(s: Any) -> list[XComEntry]:
        stmt = (
            select(
                XComModel.run_id,
                XComModel.task_id,
                XComModel.map_index,
                XComModel.key,
                XComModel.value,
                DagRun.run_after,
                DagRun.state,
            )
            .join(DagRun, DagRun.id == XComModel.dag_run_id)
            .where(XComModel.dag_id == dag_id)
            .order_by(*run_order.newest_first(), XComModel.task_id, XComModel.map_index, XComModel.key)
        )
        for column, wanted in (
            (XComModel.run_id, run_id),
            (XComModel.task_id, task_id),
            (XComModel.map_index, map_index),
            (XComModel.key, key),
        ):
            if wanted is not None:
                stmt = stmt.where(column == wanted)
        return [
            XComEntry(
                dag_id, r.run_id, r.task_id, r.map_index, r.key, r.value, r.run_after, state_name(r.state)
            )
            for r in s.execute(stmt)
        ]

    return with_session(session, run)


def xcom_task_ids(
    dag_id: str, run_id: str | None = None, *, key: str | None = None, session: Any = None
) -> list[str]:
    """Tasks of a DAG (optionally of one run, with one key) that have XComs, sorted."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    def run(s: Any) -> list[str]:
        stmt = select(XComModel.task_id).distinct().where(XComModel.dag_id == dag_id)
        if run_id is not None:
            stmt = stmt.where(XComModel.run_id == run_id)
        if key is not None:
            stmt = stmt.where(XComModel.key == key)
        return sorted(s.scalars(stmt))

    return with_session(session, run)


def task_history(dag_id: str, task_id: str, limit: int = 100, *, session: Any = None) -> list[dict[str, Any]]:
    """``mlops.task`` records (duration, peak memory, code hash) of a task across runs, newest first:
    the fields of :class:`TaskRecord` and of the run."""
    return [
        {**{k: v for k, v in row.items() if k != "record"}, **TaskRecord.from_row(row["record"]).to_row()}
        for row in _records(dag_id, task_id, TASK_KEY, limit, session)
    ]


def metric_series(dag_id: str, runs: int = 100, *, session: Any = None) -> list[dict[str, Any]]:
    """Every metric of a DAG over its last ``runs`` runs, one series per (task, metric), oldest first.

    One query for the whole DAG (not one per metric) so the DAG page stays fast with long histories.
    Each series: ``task_id``, ``name``, and ``points`` with ``run_id``, ``run_after``, ``map_index``,
    ``value``, ``lower``, ``upper`` and ``status``.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    def run(s: Any) -> list[dict[str, Any]]:
        stmt = (
            select(XComModel.task_id, XComModel.map_index, XComModel.value, DagRun.run_id, DagRun.run_after)
            .join(DagRun, DagRun.id == XComModel.dag_run_id)
            .where(XComModel.dag_run_id.in_(_newest_run_ids(dag_id, runs)), XComModel.key == METRICS_KEY)
            .order_by(*run_order.oldest_first())
        )
        series: dict[tuple[str, str], dict[str, Any]] = {}
        for row in s.execute(stmt):
            for entry in MetricRecord.from_row(row.value).metrics:
                key = (row.task_id, entry.name)
                item = series.setdefault(key, {"task_id": key[0], "name": key[1], "points": []})
                item["points"].append(
                    {
                        "run_id": row.run_id,
                        "run_after": row.run_after,
                        "map_index": row.map_index,
                        "value": entry.value,
                        "lower": entry.lower,
                        "upper": entry.upper,
                        "status": entry.status,
                    }
                )
        return [series[k] for k in sorted(series)]

    return with_session(session, run)


def problem_records(
    dag_ids: list[str], run_ids: dict[str, str], *, session: Any = None
) -> list[dict[str, Any]]:
    """Check and metric records that warned or failed in the given run of each DAG (``skipped`` ones
    are shown where the record is, not as problems)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import and_, or_, select

    def run(s: Any) -> list[dict[str, Any]]:
        pairs = [and_(XComModel.dag_id == d, XComModel.run_id == run_ids[d]) for d in dag_ids if d in run_ids]
        if not pairs:
            return []
        stmt = select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.key,
            XComModel.value,
        ).where(or_(*pairs), XComModel.key.in_((CHECK_KEY, METRICS_KEY)))
        out = []
        for row in s.execute(stmt):
            where = {
                "dag_id": row.dag_id,
                "run_id": row.run_id,
                "task_id": row.task_id,
                "map_index": row.map_index,
            }
            if row.key == CHECK_KEY:
                check = CheckRecord.from_row(row.value)
                if check.status not in _NOT_PROBLEMS:
                    out.append({**where, "kind": "check", "status": check.status, "message": check.message})
                continue
            for entry in MetricRecord.from_row(row.value).metrics:
                if entry.status not in _NOT_PROBLEMS:
                    message = "; ".join(entry.breaches) or entry.name
                    out.append({**where, "kind": "metric", "status": entry.status, "message": message})
        return sorted(out, key=lambda r: (r["dag_id"], r["task_id"], r["map_index"]))

    return with_session(session, run)
