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
that lists what does exist. An XCom row whose reference points at an artifact that is not its own
DAG's (anyone who may write a DAG's XComs can forge one) is never loaded: :func:`get_xcom` and
:func:`load_artifact` raise :class:`RefusedReferenceError` naming both DAGs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider._hints import listing, unknown_dag
from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.catalog import records, runs
from airflow_mlops_provider.catalog.artifacts import ArtifactEntry, artifact_entries, manifest_uri
from airflow_mlops_provider.catalog.artifacts import read_manifest as _read_manifest
from airflow_mlops_provider.catalog.records import XComEntry
from airflow_mlops_provider.exceptions import ArtifactLookupError, RefusedReferenceError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Manifest

__all__ = [
    "LATEST",
    "ArtifactLookupError",
    "RefusedReferenceError",
    "XComEntry",
    "get_xcom",
    "list_artifacts",
    "load_artifact",
    "manifest_uri",
    "read_manifest",
    "resolve_run_id",
]

LATEST = "latest"


# -- helpers ------------------------------------------------------------------------------------


def _manager(manager: ArtifactManager | None) -> ArtifactManager:
    if manager is not None:
        return manager
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    return ArtifactManager.configured()


def _check_dag(dag_id: str, session: Session | None) -> None:
    known = runs.dag_ids(session=session)
    if dag_id in known:
        return
    raise ArtifactLookupError(f"DAG {dag_id!r} is not in Airflow's metadata DB. {unknown_dag(dag_id, known)}")


def _resolve_run(dag_id: str, run_id: str, session: Session | None) -> dict[str, Any]:
    _check_dag(dag_id, session)
    row = runs.resolve_run(dag_id, run_id, successful=True, session=session)
    if row is not None:
        return row
    recent = [f"{r['run_id']} ({r['state']})" for r in runs.dag_runs(dag_id, 5, session=session)]
    if run_id in (LATEST, "previous"):
        which = "successful run" if run_id == LATEST else "second successful run"
        raise ArtifactLookupError(
            f"DAG {dag_id!r} has no {which} yet (newest runs: {listing(recent)}). Pass a run id "
            "to read the artifacts of a run that did not succeed."
        )
    raise ArtifactLookupError(f"DAG {dag_id!r} has no run {run_id!r}. Newest runs: {listing(recent)}.")


def resolve_run_id(dag_id: str, run_id: str = LATEST, *, session: Session | None = None) -> str:
    """The run id ``run_id`` stands for: itself if it exists, the newest successful run for ``latest``,
    the one before it for ``previous``.

    "Newest" is the run that happened last (:mod:`airflow_mlops_provider.catalog.runs`: its start,
    for scheduled, manual, REST-triggered, backfilled and cleared-and-rerun runs alike).

    :raises ArtifactLookupError: unknown DAG or run, or no successful run for ``latest``.
    """
    return _resolve_run(dag_id, run_id, session)["run_id"]


def _explain_missing_task(dag_id: str, run_id: str, task_id: str, key: str, session: Session | None) -> str:
    with_xcoms = records.xcom_task_ids(dag_id, run_id, session=session)
    tis = records.task_instances(dag_id, run_id, task_id, session=session)
    where = f"run {run_id!r} of DAG {dag_id!r}"
    if tis:
        lead = f"Task {task_id!r} ran in {where} (state {tis[0]['state']}) but has no XCom with key {key!r}."
    else:
        lead = f"There is no task {task_id!r} in {where}."
    return f"{lead} Tasks with XComs in this run: {listing(with_xcoms)}."


def get_xcom(
    dag_id: str,
    run_id: str = LATEST,
    task_id: str | None = None,
    key: str = "return_value",
    map_index: int = -1,
    *,
    session: Session | None = None,
    manager: ArtifactManager | None = None,
) -> XComEntry:
    """The raw XCom row of a task (not loaded: inline value or artifact references), once each of its
    references is known to be an artifact of that DAG (its manifest is read, its data object looked up).

    :param dag_id: the DAG.
    :param run_id: a run id, or ``"latest"`` for the newest successful run.
    :param task_id: the task; required (the error lists the tasks with XComs in the run).
    :param key: the XCom key (``return_value`` for what the task returned).
    :param map_index: the map index of a mapped task instance (``-1`` for unmapped tasks).
    :param manager: the artifact manager to check references with (the configured one by default).
    :raises ArtifactLookupError: unknown DAG, run, task, key or map index.
    :raises RefusedReferenceError: a reference points at an artifact of another DAG (or one whose
        manifest disagrees with it): a forged or tampered row.
    :raises ArtifactStoreError: the row holds references and the store cannot be reached.
    """
    entry = _find_xcom(dag_id, run_id, task_id, key, map_index, session)
    _refuse_foreign(entry, manager)
    return entry


def _refuse_foreign(entry: XComEntry, manager: ArtifactManager | None) -> None:
    """Raise for the first reference of the row that the catalog refuses (see ``catalog.artifacts``)."""
    if next(codec.iter_references(entry.value), None) is None:
        return
    for found in artifact_entries([entry], _manager(manager), include_records=True):
        if found.status == "refused":
            raise found.refusal()


def _find_xcom(
    dag_id: str, run_id: str, task_id: str | None, key: str, map_index: int, session: Session | None
) -> XComEntry:
    resolved = _resolve_run(dag_id, run_id, session)["run_id"]
    if task_id is None:
        tasks = records.xcom_task_ids(dag_id, resolved, key=key, session=session)
        raise ArtifactLookupError(
            f"Pass a task id. Tasks with a {key!r} XCom in run {resolved!r} of DAG {dag_id!r}: "
            f"{listing(tasks)}."
        )
    rows = records.xcoms(dag_id, resolved, task_id, session=session)
    for row in rows:
        if row.key == key and row.map_index == map_index:
            return row
    if not any(row.key == key for row in rows):
        if rows:
            keys = sorted({row.key for row in rows})
            raise ArtifactLookupError(
                f"Task {task_id!r} in run {resolved!r} of DAG {dag_id!r} has no XCom with key {key!r}. "
                f"Its keys: {listing(keys)}."
            )
        raise ArtifactLookupError(_explain_missing_task(dag_id, resolved, task_id, key, session))
    indexes = sorted({row.map_index for row in rows if row.key == key})
    raise ArtifactLookupError(
        f"Task {task_id!r} in run {resolved!r} of DAG {dag_id!r} has no {key!r} XCom for map index "
        f"{map_index}. Map indexes with one: {listing([str(i) for i in indexes])}."
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
    :param run_id: a run id, or ``"latest"`` for the newest *successful* run.
    :param task_id: the task that pushed the value.
    :param key: the XCom key.
    :param map_index: the map index of a mapped task instance.
    :param lazy: return :class:`~airflow_mlops_provider.ArtifactRef` handles instead of loading
        (``ref.load(columns=[...])``, ``ref.iter_batches()``); containers of artifacts come back as
        containers of handles.
    :param session: an SQLAlchemy session on the metadata DB (a new one by default).
    :param manager: the artifact manager (the one configured in Airflow's config by default).
    :raises ArtifactLookupError: unknown DAG, run, task, key or map index.
    :raises RefusedReferenceError: the row refers to an artifact of another DAG (a forged reference).
    :raises ArtifactNotFoundError: the object was deleted from the store (names URI and producer).
    :raises ArtifactStoreError: the store cannot be reached.
    """
    artifacts = _manager(manager)
    entry = get_xcom(dag_id, run_id, task_id, key, map_index, session=session, manager=artifacts)
    return artifacts.load_lazy(entry.value) if lazy else artifacts.load(entry.value)


def read_manifest(uri: str, *, manager: ArtifactManager | None = None) -> Manifest:
    """The manifest of a stored artifact, given the URI of its data object (or of the manifest).

    :raises ArtifactError: the URI is outside ``[mlops] artifact_root`` (nothing is read there).
    :raises ArtifactNotFoundError: no manifest at that place (the artifact was deleted).
    :raises ArtifactStoreError: the store cannot be reached.
    """
    return _read_manifest(_manager(manager), uri)


# -- listing ------------------------------------------------------------------------------------


def _as_dict(entry: ArtifactEntry) -> dict[str, Any]:
    xcom = entry.xcom
    where = {
        "dag_id": xcom.dag_id,
        "run_id": xcom.run_id,
        "run_after": xcom.run_after.isoformat() if xcom.run_after else None,
        "run_state": xcom.run_state,
        "task_id": xcom.task_id,
        "map_index": xcom.map_index,
        "key": xcom.key,
        "path": entry.path,
        "inline": entry.inline,
        "status": entry.status,
        "error": entry.error,
        "note": entry.note,
    }
    if entry.inline:
        text = json.dumps(xcom.value, default=str)
        return {
            **where,
            "uri": None,
            "type": entry.inline_kind,
            "format": "inline",
            "size_bytes": len(text.encode()),
            "summary": text if len(text) <= 80 else text[:77] + "...",
            "value": xcom.value,
        }
    return {**entry.stored_fields(), **where}


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

    * ``ok``: the data object is in the store with the recorded size (when its manifest is gone or
      unreadable, ``note`` says so and the fields come from the XCom row's reference);
    * ``missing``: the data object was deleted from the store;
    * ``outside_root``: the row points outside ``[mlops] artifact_root`` (written before a root change);
    * ``unreadable``: the reference cannot be parsed, or the data object has another size than
      recorded (``error`` says why);
    * ``refused``: the reference points at an artifact of another DAG, or its manifest disagrees
      with it (a forged row): nothing of that artifact is read, ``error`` says why;
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
    _check_dag(dag_id, session)
    resolved = None if run_id is None else _resolve_run(dag_id, run_id, session)["run_id"]
    rows = records.xcoms(dag_id, resolved, task_id, key=key, session=session)
    if task_id is not None and not rows:
        tasks = records.xcom_task_ids(dag_id, resolved, key=key, session=session)
        scope = f"run {run_id!r}" if run_id is not None else "any run"
        raise ArtifactLookupError(
            f"Task {task_id!r} has no XCom in {scope} of DAG {dag_id!r}. Tasks with XComs: {listing(tasks)}."
        )
    entries = artifact_entries(rows, _manager(manager), include_records=include_records)
    return [_as_dict(entry) for entry in entries]
