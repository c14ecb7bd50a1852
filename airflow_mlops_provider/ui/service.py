"""What each page of the ML view shows, as plain dicts: shared by the FastAPI app and the FAB view.

The web server never loads or unpickles an artifact. It reads the XCom rows (references, check,
metric and task records) from the metadata DB through :mod:`airflow_mlops_provider.catalog`, and only
three kinds of small JSON objects from the artifact store: the ``<n>.preview.json`` written beside
every artifact, the ``<n>.manifest.json`` and the DAG structure snapshots. Every URI it reads comes
from a stored reference and goes through :meth:`ArtifactStore.fs_path`, which refuses anything
outside the configured artifact root; request parameters are ids, never URIs.

Permissions are checked by the callers (FastAPI dependencies, FAB decorators) before any function
here runs; ``overview`` is given the set of DAG ids the user may read.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_mlops_provider import catalog
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.catalog import task_logs
from airflow_mlops_provider.catalog.artifacts import RESERVED_KEY_PREFIX, artifact_entries
from airflow_mlops_provider.exceptions import ArtifactError
from airflow_mlops_provider.records import (
    CHECK_KEY,
    METRICS_KEY,
    TASK_KEY,
    CheckRecord,
    MetricRecord,
    TaskRecord,
)
from airflow_mlops_provider.ui.layout import NODE_HEIGHT, NODE_WIDTH, layout

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops_provider.artifacts.store import ArtifactStore
    from airflow_mlops_provider.catalog.artifacts import ArtifactEntry
    from airflow_mlops_provider.catalog.records import XComEntry
    from airflow_mlops_provider.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

#: Preview texts and inline values are cut here (the stored preview may hold up to 20,000 chars).
MAX_TEXT = 5_000
#: Rows of failing samples shown per check.
MAX_SAMPLES = 20
#: A run page shows the previews of its first 50 XCom values, each table with its first 10 rows;
#: the task pages show the rest (every stored row, up to 50). A 200-task run page thus stays well
#: under 1 MB and 300 ms, whatever the number of tasks.
RUN_PREVIEWS, RUN_PREVIEW_ROWS = 50, 10
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")

#: Fill colours of the run graph's nodes, by state.
STATE_COLOURS = {
    "success": "#4caf50",
    "success_with_warnings": "#ffb300",
    "failed": "#e53935",
    "upstream_failed": "#ff7043",
    "running": "#42a5f5",
    "queued": "#90a4ae",
    "scheduled": "#b0bec5",
    "up_for_retry": "#fdd835",
    "up_for_reschedule": "#80deea",
    "skipped": "#f8bbd0",
    "removed": "#e0e0e0",
    "deferred": "#b39ddb",
    "restarting": "#ce93d8",
    None: "#eeeeee",
}
#: When a task is mapped, the node shows the "worst" state of its instances (first in this list).
_STATE_ORDER = [
    "failed",
    "upstream_failed",
    "up_for_retry",
    "running",
    "restarting",
    "deferred",
    "up_for_reschedule",
    "queued",
    "scheduled",
    "skipped",
    "removed",
    "success",
]


# Airflow's own rule for DAG and task ids (``airflow.utils.helpers.KEY_REGEX``), checked before any
# lookup so ids like ``..`` or ``a/b`` never reach a query or a store path; run ids only lose
# separators and control characters.
_KEY = re.compile(r"^[\w.-]{1,250}$")
_RUN_ID = re.compile(r"^[^/\\\x00-\x1f]{1,250}$")


def invalid_id(dag_id: str, run_id: str | None = None, task_id: str | None = None) -> str | None:
    """Why one of the ids of a request cannot be a real id, or ``None`` when all are plausible."""
    for value, pattern, what in (
        (dag_id, _KEY, "DAG id"),
        (run_id, _RUN_ID, "run id"),
        (task_id, _KEY, "task id"),
    ):
        if value is not None and (not pattern.match(value) or value in (".", "..")):
            return f"Invalid {what}."
    return None


class NotFound(LookupError):
    """The DAG, run or task instance the page is about does not exist (shown as 404)."""


# -- stores ------------------------------------------------------------------------------------------


def snapshot_store() -> SnapshotStore:
    """The configured snapshot store."""
    from airflow_mlops_provider.snapshots.recorder import default_store

    return default_store()


def _map(store: ArtifactStore, fn: Any, items: list[Any]) -> list[Any]:
    """``map`` for store reads: threads on object stores (latency-bound), plain loop on disks."""
    if len(items) < 4 or store.is_local:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(fn, items))


# -- artifacts ---------------------------------------------------------------------------------------


def clean_preview(preview: Any) -> dict[str, Any] | None:
    """Drop what a template must not get: non-dict previews and thumbnails that are not base64."""
    if not isinstance(preview, dict):
        return None
    if preview.get("kind") == "image":
        data = preview.get("thumbnail_png_base64")
        if not isinstance(data, str) or not _BASE64.match(data):
            preview = {k: v for k, v in preview.items() if k != "thumbnail_png_base64"}
    if preview.get("kind") == "json" and isinstance(preview.get("text"), str):
        text = preview["text"]
        if len(text) > MAX_TEXT:
            preview = {**preview, "text": text[:MAX_TEXT], "truncated": True}
    return preview


def _inline_view(entry: ArtifactEntry) -> dict[str, Any]:
    """An XCom value stored inline (small JSON): numbers and booleans as values, the rest as text."""
    value = entry.xcom.value
    if isinstance(value, (bool, int, float)) or value is None:
        kind, text = "value", json.dumps(value)
    elif isinstance(value, str):
        kind, text = "text", value
    else:
        kind, text = "json", json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return {"inline": True, "kind": kind, "text": text[:MAX_TEXT], "truncated": len(text) > MAX_TEXT}


def _stored_view(entry: ArtifactEntry, manifest: bool) -> dict[str, Any]:
    """A stored artifact: its reference, preview and (on task pages) manifest.

    A ``refused`` reference (not an artifact of the row's DAG) shows why and where it points, never
    anything read from the artifact it names.
    """
    ref = entry.reference
    if ref is None:
        return {"error": entry.error, "preview": None, "preview_error": None, "manifest": None}
    if entry.status == "refused":
        return {
            "error": entry.error,
            "refused": True,
            "points_to": entry.points_to,
            "uri": ref.uri,
            "preview": None,
            "preview_error": None,
            "manifest": None,
        }
    view: dict[str, Any] = {
        "error": None,
        "uri": ref.uri,
        "blob": ref.blob,
        "type": ref.type,
        "format": ref.format,
        "serializer": ref.serializer,
        "size_bytes": ref.size_bytes,
        "sha256": ref.sha256,
        "chunk_bytes": ref.chunk_bytes,  # the hash is then over the chunks' digests, not the bytes
        "summary": ref.summary,
        "details": ref.details,
        "producer": ref.producer.describe(),
        "note": entry.note,
        "preview": clean_preview(entry.preview),
        "preview_error": entry.preview_error if entry.status == "ok" else entry.error,
        "manifest": None,
    }
    if manifest:
        if entry.manifest is not None:
            view["manifest"] = {
                "artifact_id": entry.manifest.artifact_id,
                "created_at": entry.manifest.created_at,
                "media_type": entry.manifest.media_type,
                "versions": entry.manifest.versions,
                "execution": entry.manifest.execution or {},
            }
        else:
            view["manifest_error"] = entry.note or entry.error
    return view


def artifacts_of(
    rows: list[XComEntry], *, manifest: bool = False, previews: int | None = None
) -> list[dict[str, Any]]:
    """Artifacts and inline values of XCom rows for the templates (ML records have their own
    sections); an unreachable store shows on each artifact instead of failing the page.

    ``previews`` bounds the XCom values whose previews are read; the artifacts of later values are
    listed (``preview_elsewhere``: their previews are on their task pages) without reading one.
    """
    manager = ArtifactManager.configured()
    values = [r for r in rows if not r.key.startswith(RESERVED_KEY_PREFIX)]
    cut = len(values) if previews is None else previews
    shown = artifact_entries(values[:cut], manager, previews=True, raise_store_errors=False)
    listed = artifact_entries(values[cut:], manager, previews=False, raise_store_errors=False)
    return [
        {
            "task_id": e.xcom.task_id,
            "map_index": e.xcom.map_index,
            "key": e.xcom.key,
            "path": e.path,
            "status": e.status,
            "preview_elsewhere": elsewhere,
            **(_inline_view(e) if e.inline else _stored_view(e, manifest)),
        }
        for entries, elsewhere in ((shown, False), (listed, True))
        for e in entries
    ]


# -- records -----------------------------------------------------------------------------------------


def _samples_table(samples: Any) -> dict[str, Any] | None:
    if not isinstance(samples, list) or not samples:
        return None
    rows = samples[:MAX_SAMPLES]
    if all(isinstance(r, dict) for r in rows):
        columns = list(dict.fromkeys(k for r in rows for k in r))[:50]
        return {
            "columns": columns,
            "rows": [[r.get(c) for c in columns] for r in rows],
            "more": len(samples) > len(rows),
        }
    return {"columns": ["value"], "rows": [[r] for r in rows], "more": len(samples) > len(rows)}


def records_of(rows: list[XComEntry]) -> dict[str, list[dict[str, Any]]]:
    """Checks, metrics and task records of XCom rows, ready for the templates."""
    checks, metrics, tasks = [], [], []
    for row in rows:
        where = {"task_id": row.task_id, "map_index": row.map_index}
        if row.key == CHECK_KEY:
            check = CheckRecord.from_row(row.value)
            checks.append({**where, **check.to_row(), "samples": _samples_table(check.failing_samples)})
        elif row.key == METRICS_KEY:
            record = MetricRecord.from_row(row.value)
            metrics += [{**where, "severity": record.severity, **m.to_row()} for m in record.metrics]
        elif row.key == TASK_KEY:
            tasks.append({**where, **TaskRecord.from_row(row.value).to_row()})
    return {"checks": checks, "metrics": metrics, "tasks": tasks}


def _warned(records: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {r["task_id"] for r in records["checks"] + records["metrics"] if r.get("status") == "warning"}


def node_state(states: list[str | None], warned: bool) -> str | None:
    """One state for a (possibly mapped) task: its worst instance; success plus a warning record
    becomes ``success_with_warnings``."""
    if not states:
        return None
    state = min(states, key=lambda s: _STATE_ORDER.index(s) if s in _STATE_ORDER else len(_STATE_ORDER))
    return "success_with_warnings" if state == "success" and warned else state


# -- permissions -------------------------------------------------------------------------------------


def can_read_task_logs(user: Any, dag_id: str) -> bool:
    """Whether ``user`` may read the task logs of ``dag_id``: the check Airflow's own log routes make
    (``requires_access_dag("GET", DagAccessEntity.TASK_LOGS)``). Tracebacks and why a task died come
    from its log, so both faces show them only when this holds."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.models.dag import DagModel

    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.TASK_LOGS, details=details, user=user
    )


# -- links -------------------------------------------------------------------------------------------


def q(value: Any) -> str:
    """One URL path segment (run ids hold ``:`` and ``+``; ids from the DB are never trusted as paths)."""
    return quote(str(value), safe="")


def airflow_log_url(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """Airflow's own task-instance page (logs tab) in the Airflow 3 UI."""
    url = f"/dags/{q(dag_id)}/runs/{q(run_id)}/tasks/{q(task_id)}"
    return f"{url}/mapped/{map_index}" if map_index >= 0 else url


# -- pages -------------------------------------------------------------------------------------------


def overview(dag_ids: set[str] | None, logs: Callable[[str], bool] = lambda dag_id: False) -> dict[str, Any]:
    """DAGs (among ``dag_ids``, the user's readable DAGs) with artifacts or ML records, and the
    problems of each one's latest run: failed tasks (with why they ended, for DAGs whose task logs
    ``logs(dag_id)`` says the user may read), failed or warning checks and metrics."""
    ids = catalog.records.mlops_dag_ids(dag_ids)
    latest = catalog.runs.latest_runs(ids)
    problems = catalog.records.problem_records(ids, {d: r["run_id"] for d, r in latest.items()})
    for dag_id, run in latest.items():
        if run["state"] == "failed":
            problems += _run_failures(dag_id, run["run_id"], logs=logs(dag_id))
    problems.sort(key=lambda p: (p["dag_id"], p["kind"] != "task", p["task_id"], p["map_index"]))
    by_dag: dict[str, list[dict[str, Any]]] = {}
    for p in problems:
        by_dag.setdefault(p["dag_id"], []).append(p)
    return {
        "dags": [{"dag_id": d, "latest": latest.get(d), "problems": by_dag.get(d, [])} for d in ids],
        "problems": problems,
    }


def _run_failures(dag_id: str, run_id: str, *, logs: bool) -> list[dict[str, Any]]:
    """Why a failed run failed, for the overview: its failed tasks (with why they ended when the
    user may read ``logs``) or, when no task failed (a run timed out or marked failed), the run
    itself with its task states, so a failed DAG never shows "none"."""
    tis = catalog.records.task_instances(dag_id, run_id)
    rows = catalog.records.xcoms(dag_id, run_id, key=TASK_KEY)
    where = {"dag_id": dag_id, "run_id": run_id, "status": "failed"}
    found = [
        where
        | {"task_id": f["task_id"], "map_index": f["map_index"], "kind": "task"}
        | {"message": f["text"] or f"task {f['state'].replace('_', ' ')}"}
        for f in failed_tasks(dag_id, run_id, tis, rows, logs=logs)[:MAX_EXITS_PER_RUN]
    ]
    if found:
        return found
    counts: dict[str, int] = {}
    for ti in tis:
        state = (ti["state"] or "no state").replace("_", " ")
        counts[state] = counts.get(state, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no task instances"
    message = f"the run failed but none of its tasks did ({states}): it timed out or was marked failed"
    return [where | {"task_id": "", "map_index": -1, "kind": "run", "message": message}]


def dag_page(dag_id: str, runs: int = 50, metric_runs: int = 100) -> dict[str, Any]:
    """Runs with state, structure changes and metric values, metric charts over the last
    ``metric_runs`` runs, a grid of checks against runs, and the check history of one DAG."""
    run_list = catalog.runs.dag_runs(dag_id, runs)
    if not run_list and not catalog.records.mlops_dag_ids({dag_id}):
        raise NotFound(f"DAG {dag_id!r} has no runs.")
    snapshots = snapshot_store()
    pointers = _map(snapshots.artifacts, lambda r: _pointer(snapshots, dag_id, r["run_id"]), run_list)
    for run, pointer in zip(run_list, pointers, strict=True):
        run["snapshot_id"] = (pointer or {}).get("snapshot_id")
    # Runs are newest first: a run's structure changed when it differs from the next older one.
    for newer, older in pairwise(run_list):
        newer["structure_changed"] = bool(
            newer["snapshot_id"] and older["snapshot_id"] and newer["snapshot_id"] != older["snapshot_id"]
        )
    if run_list:
        run_list[-1]["structure_changed"] = False
    chart = metric_chart_data(dag_id, metric_runs)
    columns, cells = metric_columns(chart if metric_runs >= runs else metric_chart_data(dag_id, runs))
    for run in run_list:
        run["metrics"] = cells.get(run["run_id"], {})
    checks = check_rows(dag_id, 200)
    grid_runs = [r["run_id"] for r in run_list[:GRID_RUNS]]
    return {
        "dag_id": dag_id,
        "runs": run_list,
        "metric_columns": columns,
        "metrics": chart,
        "checks": checks,
        "checks_grid": checks_grid(check_rows(dag_id, None, runs=GRID_RUNS), grid_runs),
    }


def _pointer(snapshots: SnapshotStore, dag_id: str, run_id: str) -> dict[str, Any] | None:
    try:
        return snapshots.pointer(dag_id, run_id)
    except ArtifactError:
        log.warning("Could not read the snapshot pointer of %s / %s", dag_id, run_id, exc_info=True)
        return None


#: Metric chart windows offered on the DAG page (runs); ``all`` is capped at the largest.
CHART_WINDOWS = {"30": 30, "100": 100, "all": 10_000}


def _run_label(run: dict[str, Any]) -> dict[str, Any]:
    when = run.get("start_date") or run.get("run_after")
    return {"run_id": run["run_id"], "date": when.isoformat() if when else None, "state": run.get("state")}


def metric_chart_data(dag_id: str, runs: int = 100) -> dict[str, Any]:
    """Metric series for the charts, on an axis of runs: ``runs`` lists the window's runs oldest
    first (the x value of a run is its position, 1-based: runs of one afternoon are as far apart as
    runs a month apart), each series has ``x`` (run positions), value, bounds, status and run ids."""
    window = list(reversed(catalog.runs.dag_runs(dag_id, runs)))
    position = {r["run_id"]: i for i, r in enumerate(window, start=1)}
    out = []
    for series in catalog.records.metric_series(dag_id, runs):
        points = sorted(
            (p for p in series["points"] if p["run_id"] in position), key=lambda p: position[p["run_id"]]
        )
        out.append(
            {
                "task_id": series["task_id"],
                "name": series["name"],
                "x": [position[p["run_id"]] for p in points],
                "run_ids": [p["run_id"] for p in points],
                "map_index": [p["map_index"] for p in points],
                "value": [p["value"] for p in points],
                "lower": [p["lower"] for p in points],
                "upper": [p["upper"] for p in points],
                "status": [p["status"] for p in points],
            }
        )
    return {"runs": [_run_label(r) for r in window], "series": out}


def metric_columns(chart: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The runs table's metric columns (``task · name``) and, per run id, each column's value and
    status (the last map index when a mapped task records several)."""
    names: list[str] = []
    cells: dict[str, dict[str, Any]] = {}
    for series in chart["series"]:
        task, name = series["task_id"], series["name"]
        label = name if name == task else f"{task} · {name}"
        names.append(label)
        for run_id, value, status in zip(series["run_ids"], series["value"], series["status"], strict=True):
            cells.setdefault(run_id, {})[label] = {"value": value, "status": status}
    return names, cells


def checks_grid(rows: list[dict[str, Any]], run_ids: list[str]) -> dict[str, Any]:
    """Checks against runs: one row per check task (map index included), one column per run of
    ``run_ids`` (newest first), each cell the check's status in that run (or ``None``)."""
    grid: dict[str, dict[str, str]] = {}
    for row in rows:
        mapped = row.get("map_index") is not None and row["map_index"] >= 0
        label = f"{row['task_id']}[{row['map_index']}]" if mapped else row["task_id"]
        grid.setdefault(label, {}).setdefault(row["run_id"], row["status"])
    return {
        "runs": run_ids,
        "rows": [{"check": label, "cells": [grid[label].get(r) for r in run_ids]} for label in sorted(grid)],
    }


#: Runs (columns) of the checks-by-runs grid, newest first.
GRID_RUNS = 30


def check_rows(dag_id: str, limit: int | None = 200, *, runs: int | None = None) -> list[dict[str, Any]]:
    """Check records of a DAG, newest run first: at most ``limit``, of the newest ``runs`` runs."""
    return [
        {
            "run_id": r.get("run_id"),
            "run_after": r.get("run_after"),
            "task_id": r.get("task_id"),
            "map_index": r.get("map_index"),
            "status": r.get("status"),
            "severity": r.get("severity"),
            "message": r.get("message"),
            "failing_count": r.get("failing_count"),
        }
        for r in catalog.records.check_history(dag_id, None, limit, runs=runs)
    ]


def run_graph(
    dag_id: str, run_id: str, tis: list[dict[str, Any]], warned: set[str], snapshot: Any
) -> dict[str, Any]:
    """Nodes and edges of the run's own structure (its snapshot), laid out, coloured by state."""
    states: dict[str, list[str | None]] = {}
    for ti in tis:
        states.setdefault(ti["task_id"], []).append(ti["state"])
    if snapshot is not None:
        nodes = [t.task_id for t in snapshot.tasks]
        groups = {t.task_id: t.group_id for t in snapshot.tasks}
        mapped = {t.task_id: t.mapped for t in snapshot.tasks}
        edges = [tuple(e) for e in snapshot.edges]
    else:  # not recorded: the run's task instances, without edges (today's DAG may differ)
        nodes = sorted(states)
        groups, mapped, edges = {}, {t: len(states[t]) > 1 for t in nodes}, []
    placed = layout(nodes, edges)
    node_list = []
    for node in nodes:
        x, y = placed.positions[node]
        state = node_state(states.get(node, []), node in warned)
        label = node if len(node) <= 24 else "…" + node[-23:]
        node_list.append(
            {
                "task_id": node,
                "label": label,
                "group_id": groups.get(node),
                "mapped": mapped.get(node, False),
                "instances": len(states.get(node, [])),
                "state": state,
                "colour": STATE_COLOURS.get(state, "#eeeeee"),
                "x": x,
                "y": y,
            }
        )
    return {
        "recorded": snapshot is not None,
        "width": placed.width,
        "height": placed.height,
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
        "nodes": node_list,
        "edges": [{"from": u, "to": d, "path": p} for u, d, p in placed.edges],
    }


def run_page(dag_id: str, run_id: str, *, logs: bool = False) -> dict[str, Any]:
    """The run's graph (as it was), diff against the previous run, artifacts, metrics and checks.

    ``logs`` (the user may read task logs) adds why each failed task ended, read from its log.
    """
    run = catalog.runs.dag_run(dag_id, run_id)
    if run is None:
        raise NotFound(f"DAG {dag_id!r} has no run {run_id!r}.")
    snapshots = snapshot_store()
    tis = catalog.records.task_instances(dag_id, run_id)
    rows = catalog.records.xcoms(dag_id, run_id)
    records = records_of(rows)
    snapshot, snapshot_error = None, None
    try:
        snapshot = snapshots.snapshot_for_run(dag_id, run_id)
    except ArtifactError as err:
        snapshot_error = str(err)
    previous = catalog.runs.previous_run(dag_id, run)
    diff = None
    if previous is not None and snapshot is not None:
        try:
            found = snapshots.diff_runs(dag_id, previous["run_id"], run_id)
            diff = found.to_dict() if found is not None else None
        except ArtifactError as err:
            snapshot_error = str(err)
    return {
        "dag_id": dag_id,
        "run": run,
        "failed_tasks": failed_tasks(dag_id, run_id, tis, rows, logs=logs),
        "previous": previous,
        "graph": run_graph(dag_id, run_id, tis, _warned(records), snapshot),
        "snapshot_id": snapshot.id if snapshot is not None else None,
        "snapshot_error": snapshot_error,
        "diff": diff,
        "artifacts": artifacts_of(rows, previews=RUN_PREVIEWS),
        **records,
        "task_instances": tis,
        "colours": {k: v for k, v in STATE_COLOURS.items() if k},
        "preview_rows": RUN_PREVIEW_ROWS,
    }


def compare_page(dag_id: str, run_a: str, run_b: str) -> dict[str, Any]:
    """Two runs of a DAG side by side (``airflow mlops diff`` shows the same): structure and code
    changes from the snapshots, metric deltas, check status changes and, per table artifact, row,
    schema and column statistic changes, all from what was recorded when the runs wrote them."""
    from airflow_mlops_provider.catalog.compare import compare_runs

    runs = {}
    for run_id in (run_a, run_b):
        run = catalog.runs.dag_run(dag_id, run_id)
        if run is None:
            raise NotFound(f"DAG {dag_id!r} has no run {run_id!r}.")
        runs[run_id] = run
    snapshots = snapshot_store()
    structure, structure_error = None, None
    try:
        found = snapshots.diff_runs(dag_id, run_a, run_b)
        structure = found.to_dict() if found is not None else None
        if found is None:
            structure_error = "the structure of one of the runs was not recorded"
    except ArtifactError as err:
        structure_error = str(err)
    comparison = compare_runs(dag_id, run_a, run_b, ArtifactManager.configured())
    return {
        "dag_id": dag_id,
        "run_a": runs[run_a],
        "run_b": runs[run_b],
        "structure": structure,
        "structure_error": structure_error,
        **comparison.to_dict(),
        "choices": catalog.runs.dag_runs(dag_id, 100),
    }


def task_page(
    dag_id: str, run_id: str, task_id: str, map_index: int = -1, *, traceback: bool = False
) -> dict[str, Any]:
    """Artifacts with manifests, code, duration/memory trend and failure of one task instance.

    The log is read (traceback, why the task died) only with ``traceback=True``: the user may read
    task logs (:func:`can_read_task_logs`).
    """
    run = catalog.runs.dag_run(dag_id, run_id)
    if run is None:
        raise NotFound(f"DAG {dag_id!r} has no run {run_id!r}.")
    tis = [
        ti for ti in catalog.records.task_instances(dag_id, run_id, task_id) if ti["map_index"] == map_index
    ]
    if not tis:
        raise NotFound(f"Run {run_id!r} of DAG {dag_id!r} has no task instance {task_id!r}[{map_index}].")
    ti = tis[0]
    snapshots = snapshot_store()
    rows = catalog.records.xcoms(dag_id, run_id, task_id, map_index)
    artifacts = artifacts_of(rows, manifest=True)
    records = records_of(rows)
    code, code_origin = None, None
    for entry in artifacts:
        source = ((entry.get("manifest") or {}).get("execution") or {}).get("source")
        if source:
            code, code_origin = source, "artifact manifest (execution.source)"
            break
    if code is None:
        try:
            snapshot = snapshots.snapshot_for_run(dag_id, run_id)
        except ArtifactError:
            snapshot = None
        task = snapshot.task_dict.get(task_id) if snapshot is not None else None
        if task is not None and task.source:
            code, code_origin = task.source, f"run's structure snapshot ({task.code_origin})"
    history = [
        h for h in catalog.records.task_history(dag_id, task_id, 200) if h.get("map_index") == map_index
    ]
    history.reverse()  # oldest first for the chart
    ended = None
    if traceback and ti["try_number"]:  # the log is read (once) for its excerpt and, if failed, why
        ended = task_logs.read_task_exit(dag_id, run_id, task_id, map_index, ti["try_number"])
    failed = ti["state"] in ("failed", "up_for_retry", "running")
    inputs = []
    for record in records["tasks"]:
        inputs += record.get("inputs") or []
    return {
        "dag_id": dag_id,
        "run": run,
        "ti": ti,
        "task_id": task_id,
        "map_index": map_index,
        "artifacts": artifacts,
        **records,
        "inputs": input_views(dag_id, inputs),
        "code": code,
        "code_origin": code_origin,
        "trend": {  # on an axis of runs, as the metric charts: x is the run's position, oldest first
            "x": list(range(1, len(history) + 1)),
            "run_ids": [h["run_id"] for h in history],
            "duration": [h.get("duration_seconds") for h in history],
            "memory": [h.get("peak_rss_mb") for h in history],
        },
        "history": list(reversed(history))[:30],
        "traceback": ended.traceback if ended and failed else None,
        "exit": exit_summary(ended, records["tasks"]) if ended is not None and failed else None,
        "log_excerpt": ended.excerpt if ended else [],
        "preview_rows": RUN_PREVIEW_ROWS,
        "log_url": airflow_log_url(dag_id, run_id, task_id, map_index),
    }


def input_views(dag_id: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The artifacts a task read (its ``mlops.task`` record's lineage), each with its producer and,
    for producers of this DAG, a link to the producer's task page and the preview stored when the
    producer wrote it (read for the first ``RUN_PREVIEWS`` inputs; nothing is loaded). Inputs from
    another DAG are named only: the user's permission covers ``dag_id``."""
    from dataclasses import replace

    from airflow_mlops_provider.artifacts import codec

    views, rows_of = [], {}
    for n, item in enumerate(inputs):
        producer = item.get("producer") if isinstance(item.get("producer"), dict) else {}
        where = {
            "run_id": str(producer.get("run_id") or ""),
            "task_id": str(producer.get("task_id") or ""),
            "map_index": producer.get("map_index") if isinstance(producer.get("map_index"), int) else -1,
            "key": str(producer.get("key") or "return_value"),
        }
        ours = producer.get("dag_id") == dag_id and not invalid_id(dag_id, where["run_id"], where["task_id"])
        view = {
            "type": item.get("type"),
            "uri": item.get("uri"),
            "sha256": item.get("sha256"),
            "producer": {"dag_id": producer.get("dag_id"), **where},
            "linked": ours,
            "preview_read": False,
            "preview": None,
            "preview_error": None,
        }
        if ours and n < RUN_PREVIEWS:
            found = (where["run_id"], where["task_id"], where["map_index"], where["key"])
            if found not in rows_of:
                rows_of[found] = catalog.records.xcoms(dag_id, *found[:3], key=found[3])
            # Only this input's reference of the producer's row (which may hold many) is read.
            own = [
                replace(row, value=ref)
                for row in rows_of[found]
                for _, ref in codec.iter_references(row.value)
                if ref.get("uri") == view["uri"]
            ]
            view["preview_read"] = True
            if entries := artifacts_of(own[:1]):
                view["preview"] = entries[0].get("preview")
                view["preview_error"] = entries[0].get("preview_error") or entries[0].get("error")
            else:
                view["preview_error"] = "the producer's XCom row no longer refers to this artifact"
        views.append(view)
    return views


# -- failures ----------------------------------------------------------------------------------------

#: Failed task instances whose logs a run page reads to say why they ended (the rest: state only).
MAX_EXITS_PER_RUN = 20


def exit_summary(ended: task_logs.TaskExit, task_records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How a try ended, for people: "killed by SIGKILL (likely out of memory), peak RSS 812 MiB".

    The peak comes from the ``mlops.task`` record the task kept up to date while it ran, so a
    killed ``@ml.task`` still has its last sample.
    """
    if ended.reason is None:
        return None
    peak = next((r.get("peak_rss_mb") for r in task_records if r.get("peak_rss_mb") is not None), None)
    text = ended.reason + (f", peak RSS {peak:,.0f} MiB" if peak is not None else "")
    return {**ended.as_dict(), "peak_rss_mb": peak, "text": text}


def failed_tasks(
    dag_id: str, run_id: str, tis: list[dict[str, Any]], rows: list[XComEntry], *, logs: bool
) -> list[dict[str, Any]]:
    """Failed task instances of a run with why they ended (read from their logs, up to a bound, when
    ``logs``: the user may read task logs; otherwise their state only)."""
    failed = [ti for ti in tis if ti["state"] in ("failed", "up_for_retry")]
    out = []
    for i, ti in enumerate(failed):
        where = (ti["task_id"], ti["map_index"])
        entry = {"task_id": ti["task_id"], "map_index": ti["map_index"], "state": ti["state"], "text": None}
        if logs and i < MAX_EXITS_PER_RUN:
            ended = task_logs.read_task_exit(dag_id, run_id, *where, ti["try_number"])
            own = [
                TaskRecord.from_row(r.value).to_row()
                for r in rows
                if r.key == TASK_KEY and (r.task_id, r.map_index) == where
            ]
            summary = exit_summary(ended, own)
            if summary is not None:
                entry.update(text=summary["text"], died=summary["died"])
            elif ended.traceback:
                entry["text"] = ended.traceback.strip().splitlines()[-1]
        out.append(entry)
    return out
