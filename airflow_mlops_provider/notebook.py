"""Read artifacts from notebooks and scripts, with Airflow's config and metadata DB.

No scheduler, API server or worker is needed: the XCom rows are read from the metadata DB
(``[database] sql_alchemy_conn``) and the objects from ``[mlops] artifact_root`` through
:class:`~airflow_mlops_provider.artifacts.manager.ArtifactManager`, so sizes and content hashes are
verified exactly as inside a task::

    from airflow_mlops_provider.notebook import list_artifacts, load_artifact

    frame = load_artifact("churn_training", task_id="features")  # newest successful run
    model = load_artifact("churn_training", "manual__2025-01-02T03:04:05+00:00", "train")
    handle = load_artifact("churn_training", task_id="features", lazy=True)  # ArtifactRef, no I/O
    handle.load(columns=["age"])

    for item in list_artifacts("churn_training", task_id="features"):
        print(item["run_id"], item["summary"], item["uri"])

Every lookup failure (unknown DAG, run, task, key or map index) is an :class:`ArtifactLookupError`
that lists what does exist.
"""

from __future__ import annotations

import difflib
import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.artifacts.manifest import Manifest, Reference
from airflow_mlops_provider.catalog import runs as run_order
from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactLookupError,
    ArtifactNotFoundError,
    ArtifactStoreError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy.orm import Session

    from airflow_mlops_provider.artifacts.manager import ArtifactManager

__all__ = [
    "LATEST",
    "ArtifactLookupError",
    "XComEntry",
    "get_xcom",
    "list_artifacts",
    "load_artifact",
    "manifest_uri",
    "read_manifest",
    "resolve_run_id",
]

LATEST = "latest"
RESERVED_KEY_PREFIX = "mlops."
_MAX_LISTED = 15
_MANIFEST_SUFFIX = ".manifest.json"


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
        return [Reference.from_row(row) for row in codec.iter_references(self.value)]

    @property
    def is_inline(self) -> bool:
        return not any(True for _ in codec.iter_references(self.value))

    def describe(self) -> str:
        where = f"dag {self.dag_id!r}, run {self.run_id!r}, task {self.task_id!r}"
        if self.map_index >= 0:
            where += f", map index {self.map_index}"
        return f"{where}, key {self.key!r}"


# -- helpers ------------------------------------------------------------------------------------


def _manager(manager: ArtifactManager | None) -> ArtifactManager:
    if manager is not None:
        return manager
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    return ArtifactManager()


def _session_scope(session: Session | None) -> Any:
    import contextlib

    if session is not None:
        return contextlib.nullcontext(session)
    from airflow.utils.session import create_session

    return create_session()


def _listing(values: list[str], limit: int = _MAX_LISTED) -> str:
    if not values:
        return "none"
    shown = ", ".join(values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def _check_dag(session: Session, dag_id: str) -> None:
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    if session.scalar(select(DagModel.dag_id).where(DagModel.dag_id == dag_id)) is not None:
        return
    if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id).limit(1)) is not None:
        return
    known = sorted(session.scalars(select(DagModel.dag_id)).all())
    close = difflib.get_close_matches(dag_id, known, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else f" Known DAGs: {_listing(known)}."
    raise ArtifactLookupError(f"DAG {dag_id!r} is not in Airflow's metadata DB.{hint}")


def _recent_runs(session: Session, dag_id: str, limit: int = 5) -> list[str]:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    rows = session.execute(
        select(DagRun.run_id, DagRun.state)
        .where(DagRun.dag_id == dag_id)
        .order_by(*run_order.newest_first())
        .limit(limit)
    ).all()
    return [f"{row.run_id} ({row.state})" for row in rows]


def _resolve_run(session: Session, dag_id: str, run_id: str) -> tuple[str, Any, str | None]:
    _check_dag(session, dag_id)
    row = run_order.resolve_run(dag_id, run_id, successful=True, session=session)
    if row is not None:
        return row["run_id"], row["run_after"], row["state"]
    recent = _recent_runs(session, dag_id)
    if run_id in (LATEST, "previous"):
        which = "successful run" if run_id == LATEST else "second successful run"
        raise ArtifactLookupError(
            f"DAG {dag_id!r} has no {which} yet (newest runs: {_listing(recent)}). Pass a run id "
            "to read the artifacts of a run that did not succeed."
        )
    raise ArtifactLookupError(f"DAG {dag_id!r} has no run {run_id!r}. Newest runs: {_listing(recent)}.")


def resolve_run_id(dag_id: str, run_id: str = LATEST, *, session: Session | None = None) -> str:
    """The run id ``run_id`` stands for: itself if it exists, the newest successful run for ``latest``,
    the one before it for ``previous``.

    "Newest" is the run that happened last (:mod:`airflow_mlops_provider.catalog.runs`: its start,
    for scheduled, manual, REST-triggered, backfilled and cleared-and-rerun runs alike).

    :raises ArtifactLookupError: unknown DAG or run, or no successful run for ``latest``.
    """
    with _session_scope(session) as s:
        return _resolve_run(s, dag_id, run_id)[0]


def _explain_missing_task(session: Session, dag_id: str, run_id: str, task_id: str, key: str) -> str:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    with_xcoms = sorted(
        set(
            session.scalars(
                select(XComModel.task_id).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
            ).all()
        )
    )
    state = session.scalar(
        select(TaskInstance.state)
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
        .limit(1)
    )
    where = f"run {run_id!r} of DAG {dag_id!r}"
    if state is not None:
        lead = f"Task {task_id!r} ran in {where} (state {state}) but has no XCom with key {key!r}."
    else:
        lead = f"There is no task {task_id!r} in {where}."
    return f"{lead} Tasks with XComs in this run: {_listing(with_xcoms)}."


def get_xcom(
    dag_id: str,
    run_id: str = LATEST,
    task_id: str | None = None,
    key: str = "return_value",
    map_index: int = -1,
    *,
    session: Session | None = None,
) -> XComEntry:
    """The raw XCom row of a task (not loaded: inline value or artifact references).

    :param dag_id: the DAG.
    :param run_id: a run id, or ``"latest"`` for the newest successful run (by ``run_after``).
    :param task_id: the task; required (the error lists the tasks with XComs in the run).
    :param key: the XCom key (``return_value`` for what the task returned).
    :param map_index: the map index of a mapped task instance (``-1`` for unmapped tasks).
    :raises ArtifactLookupError: unknown DAG, run, task, key or map index.
    """
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    with _session_scope(session) as s:
        resolved, run_after, run_state = _resolve_run(s, dag_id, run_id)
        if task_id is None:
            tasks = sorted(
                set(
                    s.scalars(
                        select(XComModel.task_id).where(
                            XComModel.dag_id == dag_id, XComModel.run_id == resolved, XComModel.key == key
                        )
                    ).all()
                )
            )
            raise ArtifactLookupError(
                f"Pass a task id. Tasks with a {key!r} XCom in run {resolved!r} of DAG {dag_id!r}: "
                f"{_listing(tasks)}."
            )
        rows = s.execute(
            select(XComModel.key, XComModel.map_index, XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == resolved, XComModel.task_id == task_id
            )
        ).all()
        for row in rows:
            if row.key == key and row.map_index == map_index:
                return XComEntry(dag_id, resolved, task_id, map_index, key, row.value, run_after, run_state)
        if not any(row.key == key for row in rows):
            if rows:
                keys = sorted({row.key for row in rows})
                raise ArtifactLookupError(
                    f"Task {task_id!r} in run {resolved!r} of DAG {dag_id!r} has no XCom with key {key!r}. "
                    f"Its keys: {_listing(keys)}."
                )
            raise ArtifactLookupError(_explain_missing_task(s, dag_id, resolved, task_id, key))
        indexes = sorted({row.map_index for row in rows if row.key == key})
        raise ArtifactLookupError(
            f"Task {task_id!r} in run {resolved!r} of DAG {dag_id!r} has no {key!r} XCom for map index "
            f"{map_index}. Map indexes with one: {_listing([str(i) for i in indexes])}."
        )


# -- loading ------------------------------------------------------------------------------------


def load_artifact(
    dag_id: str,
    run_id: str = LATEST,
    task_id: str | None = None,
    key: str = "return_value",
    map_index: int = -1,
    lazy: bool = False,
    *,
    session: Session | None = None,
    manager: ArtifactManager | None = None,
) -> Any:
    """The value a task pushed, as the task returned it (a DataFrame, an array, a model...).

    Reads the XCom row from the metadata DB and the objects it refers to from the artifact store,
    verifying their size and SHA-256. Pickles are subject to ``[mlops] allow_pickle`` and
    ``signing_key`` as in a worker.

    :param dag_id: the DAG.
    :param run_id: a run id, or ``"latest"`` for the newest *successful* run (by ``run_after``).
    :param task_id: the task that pushed the value.
    :param key: the XCom key.
    :param map_index: the map index of a mapped task instance.
    :param lazy: return :class:`~airflow_mlops_provider.ArtifactRef` handles instead of loading
        (``ref.load(columns=[...])``, ``ref.iter_batches()``); containers of artifacts come back as
        containers of handles.
    :param session: an SQLAlchemy session on the metadata DB (a new one by default).
    :param manager: the artifact manager (one built from Airflow's config by default).
    :raises ArtifactLookupError: unknown DAG, run, task, key or map index.
    :raises ArtifactNotFoundError: the object was deleted from the store (names URI and producer).
    :raises ArtifactStoreError: the store cannot be reached.
    """
    entry = get_xcom(dag_id, run_id, task_id, key, map_index, session=session)
    artifacts = _manager(manager)
    return artifacts.load_lazy(entry.value) if lazy else artifacts.load(entry.value)


def manifest_uri(uri: str) -> str:
    """The URI of the manifest stored beside a data object (``<folder>/<n>.manifest.json``)."""
    if uri.endswith(_MANIFEST_SUFFIX):
        return uri
    folder, name = posixpath.split(uri.rstrip("/"))
    stem = name.split(".", 1)[0]
    if not stem:
        raise ArtifactError(f"{uri} is not the URI of an artifact's data object.")
    return f"{folder}/{stem}{_MANIFEST_SUFFIX}"


def read_manifest(uri: str, *, manager: ArtifactManager | None = None) -> Manifest:
    """The manifest of a stored artifact, given the URI of its data object (or of the manifest).

    :raises ArtifactError: the URI is outside ``[mlops] artifact_root`` (nothing is read there).
    :raises ArtifactNotFoundError: no manifest at that place (the artifact was deleted).
    :raises ArtifactStoreError: the store cannot be reached.
    """
    artifacts = _manager(manager)
    artifacts.store.fs_path(uri)  # refuses URIs outside the root, naming the one that was given
    location = manifest_uri(uri)
    try:
        raw = artifacts.store.get_bytes(location)
    except ArtifactNotFoundError as err:
        raise ArtifactNotFoundError(
            f"No artifact at {uri}: its manifest {location} is missing from the store (deleted, or the URI "
            "is wrong)."
        ) from err
    try:
        return Manifest.from_json(raw)
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"The manifest {location} cannot be read: {err}") from err


# -- listing ------------------------------------------------------------------------------------


def _reference_paths(data: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Like :func:`codec.iter_references`, with each reference's place inside the value."""
    if isinstance(data, list):
        for index, item in enumerate(data):
            yield from _reference_paths(item, f"{path}[{index}]")
    elif isinstance(data, dict):
        tag = data.get(codec.TAG)
        if tag == "artifact":
            yield path, data
        elif tag in ("dict", "tuple", "set", "frozenset"):
            items = data["items"]
            pairs = items.items() if isinstance(items, dict) else enumerate(items)
            for name, item in pairs:
                yield from _reference_paths(item, f"{path}[{name!r}]")
        elif tag is None:
            for name, item in data.items():
                yield from _reference_paths(item, f"{path}[{name!r}]")


def _inline_kind(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get(codec.TAG), str):
        return value[codec.TAG]
    return type(value).__name__


def _read_manifest_entry(manager: ArtifactManager, ref_row: dict[str, Any]) -> dict[str, Any]:
    """The manifest of one reference as a dict, with a ``status``; store failures propagate."""
    uri = ref_row.get("uri", "")
    fallback = {k: v for k, v in ref_row.items() if k not in (codec.TAG, "v")}
    try:
        raw = manager.store.get_bytes(manifest_uri(uri))
        body = json.loads(raw)
    except ArtifactStoreError:
        raise
    except ArtifactNotFoundError:
        return {**fallback, "status": "missing", "error": f"The artifact {uri} is missing from the store."}
    except ArtifactError as err:  # outside the configured root (e.g. after a root change)
        return {**fallback, "status": "outside_root", "error": str(err)}
    except ValueError as err:
        return {**fallback, "status": "unreadable", "error": f"Unreadable manifest: {err}"}
    return {**body, "status": "ok", "error": None}


def list_artifacts(
    dag_id: str,
    run_id: str | None = None,
    task_id: str | None = None,
    *,
    key: str | None = None,
    include_records: bool = False,
    session: Session | None = None,
    manager: ArtifactManager | None = None,
) -> list[dict[str, Any]]:
    """What the tasks of a DAG pushed: one dict per stored artifact or inline value, newest run first.

    Each dict is the artifact's **manifest** as stored beside the object (``uri``, ``type``,
    ``format``, ``size_bytes``, ``sha256``, ``summary``, ``details``, ``producer``,
    ``created_at``, ``versions``, ``execution`` for ``@ml.task`` results...) plus where it was
    found: ``dag_id``, ``run_id``, ``run_after``, ``run_state``, ``task_id``, ``map_index``,
    ``key``, ``path`` (the place inside the XCom value, ``""`` for the value itself, ``"[0]"`` for
    the first item of a list of artifacts), ``inline`` and ``status``:

    * ``ok``: the manifest was read;
    * ``missing``: the object was deleted from the store (the fields come from the XCom row);
    * ``outside_root``: the row points outside ``[mlops] artifact_root`` (written before a root change);
    * ``inline``: the value lives in the XCom row itself (``inline`` is True, ``value`` holds the raw
      JSON, ``uri`` is None, ``size_bytes`` is the size of its JSON encoding).

    :param dag_id: the DAG.
    :param run_id: one run (or ``"latest"``); ``None`` lists every run, newest first.
    :param task_id: only this task's XComs.
    :param key: only this XCom key.
    :param include_records: also list the provider's check/metric/task records (``mlops.*`` keys).
    :raises ArtifactLookupError: unknown DAG, run, or a task without XComs in the run(s).
    :raises ArtifactStoreError: the store cannot be reached.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    with _session_scope(session) as s:
        _check_dag(s, dag_id)
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
            .order_by(
                *run_order.newest_first(),
                XComModel.task_id,
                XComModel.map_index,
                XComModel.key,
            )
        )
        if run_id is not None:
            stmt = stmt.where(XComModel.run_id == _resolve_run(s, dag_id, run_id)[0])
        if key is not None:
            stmt = stmt.where(XComModel.key == key)
        rows = s.execute(stmt if task_id is None else stmt.where(XComModel.task_id == task_id)).all()
        if task_id is not None and not rows:
            tasks = sorted(set(s.scalars(stmt.with_only_columns(XComModel.task_id).distinct()).all()))
            scope = f"run {run_id!r}" if run_id is not None else "any run"
            raise ArtifactLookupError(
                f"Task {task_id!r} has no XCom in {scope} of DAG {dag_id!r}. Tasks with XComs: "
                f"{_listing(tasks)}."
            )

    artifacts = _manager(manager)
    entries: list[dict[str, Any]] = []
    pending: list[tuple[int, dict[str, Any]]] = []
    for row in rows:
        if not include_records and row.key.startswith(RESERVED_KEY_PREFIX):
            continue
        where = {
            "dag_id": dag_id,
            "run_id": row.run_id,
            "run_after": row.run_after.isoformat() if row.run_after else None,
            "run_state": None if row.state is None else str(row.state),
            "task_id": row.task_id,
            "map_index": row.map_index,
            "key": row.key,
        }
        refs = list(_reference_paths(row.value))
        if not refs:
            text = json.dumps(row.value, default=str)
            entries.append(
                {
                    **where,
                    "path": "",
                    "inline": True,
                    "status": "inline",
                    "error": None,
                    "uri": None,
                    "type": _inline_kind(row.value),
                    "format": "inline",
                    "size_bytes": len(text.encode()),
                    "summary": text if len(text) <= 80 else text[:77] + "...",
                    "value": row.value,
                }
            )
            continue
        for path, ref_row in refs:
            entries.append({**where, "path": path, "inline": False})
            pending.append((len(entries) - 1, ref_row))

    if pending:
        with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
            manifests = list(pool.map(lambda item: _read_manifest_entry(artifacts, item[1]), pending))
        for (index, _), manifest in zip(pending, manifests, strict=True):
            entries[index].update(manifest)
    return entries
