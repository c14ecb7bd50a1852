"""Record, for every DAG run, the structure it was created with, off the scheduler's critical path.

The listener runs inside the scheduler loop, so it only copies four already-loaded attributes of the
DagRun (dag id, run id, created DAG version id, logical date) onto a queue. A daemon thread builds
the snapshot from the metadata DB (``SerializedDagModel`` + ``DagCode`` of that DAG version) and
writes it to the artifact store.

When the store is unreachable, a write is retried with exponential backoff a few times; then the
job, with its snapshot already built (so the code recorded is the code at run time, even if
``DagCode`` is later updated in place), is spooled to ``$AIRFLOW_HOME/mlops_spool/snapshots/``. The
spool is flushed after the next successful write (also by a later process). For ``cooldown`` seconds
after an outage, jobs get one attempt instead of the full backoff, so a backlog does not build up.

Runs that never pass through the scheduler's "queued -> running" transition (``dag.test()``, runs
created directly as running) are caught when they finish: the success/failure hooks enqueue the run
only if it was not recorded yet.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import hookimpl
from sqlalchemy import inspect as sa_inspect

from airflow_mlops_provider._background import BackgroundQueue
from airflow_mlops_provider.artifacts.config import airflow_home
from airflow_mlops_provider.snapshots.model import DagSnapshot, sha256_text
from airflow_mlops_provider.snapshots.store import SnapshotStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

SPOOL_SUBDIR = ("mlops_spool", "snapshots")


def default_spool_dir() -> Path:
    """``$AIRFLOW_HOME/mlops_spool/snapshots``: local to the scheduler's host, survives restarts."""
    return Path(airflow_home(), *SPOOL_SUBDIR)


def default_store() -> SnapshotStore:
    """The snapshot store on the configured artifact store (``ArtifactManager.configured()``)."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    return _snapshot_store(ArtifactManager.configured().store)


@functools.lru_cache(maxsize=4)
def _snapshot_store(store: Any) -> SnapshotStore:
    return SnapshotStore(store)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _loaded(obj: Any, name: str) -> Any:
    """An ORM attribute without triggering a lazy load when it is already in the instance's state."""
    try:
        values = sa_inspect(obj).dict
        if name in values:
            return values[name]
    except Exception:
        pass
    return getattr(obj, name, None)


@dataclass(frozen=True)
class SnapshotJob:
    """What the scheduler hands over: enough to find the run's DAG version later."""

    dag_id: str
    run_id: str
    dag_version_id: str | None
    logical_date: str | None
    if_missing: bool = False
    enqueued_at: float = field(default_factory=time.time)

    @property
    def key(self) -> tuple[str, str]:
        return (self.dag_id, self.run_id)

    @classmethod
    def from_dag_run(cls, dag_run: Any, *, if_missing: bool = False) -> SnapshotJob:
        dag_id, run_id = _loaded(dag_run, "dag_id"), _loaded(dag_run, "run_id")
        if dag_id is None or run_id is None:
            raise ValueError(f"{dag_run!r} is not a DAG run (no dag_id/run_id)")
        version = _loaded(dag_run, "created_dag_version_id")
        return cls(
            dag_id=str(dag_id),
            run_id=str(run_id),
            dag_version_id=str(version) if version is not None else None,
            logical_date=_iso(_loaded(dag_run, "logical_date")),
            if_missing=if_missing,
        )


class DagNotSerializedError(LookupError):
    """The metadata DB holds no serialized DAG to snapshot (deleted DAG): retrying cannot help."""


def build_snapshot(
    dag_id: str, dag_version_id: str | None, *, session: Session | None = None
) -> tuple[DagSnapshot, dict[str, Any]]:
    """The snapshot of a DAG version from the metadata DB, and provenance for the run pointer.

    Falls back to the latest serialized DAG when the version is unknown or was deleted (the
    provenance then says ``"dag_version_fallback": "latest"``).
    """
    from airflow.models.dag_version import DagVersion
    from airflow.models.dagcode import DagCode
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(create_session())
        row = None
        if dag_version_id:
            row = session.scalar(
                select(SerializedDagModel).where(
                    SerializedDagModel.dag_version_id == uuid.UUID(dag_version_id)
                )
            )
        provenance: dict[str, Any] = {}
        if row is None:
            row = SerializedDagModel.get(dag_id, session=session)
            provenance["dag_version_fallback"] = "latest"
        if row is None:
            raise DagNotSerializedError(
                f"DAG {dag_id!r} has no serialized DAG in the metadata DB to snapshot."
            )
        source = session.scalar(
            select(DagCode.source_code).where(DagCode.dag_version_id == row.dag_version_id)
        )
        version = session.get(DagVersion, row.dag_version_id)
        row.load_op_links = False  # as the scheduler does: extra links are irrelevant here
        snapshot = DagSnapshot.from_serialized(row.dag, data=row.data, source=source)
        provenance["dag_version_id"] = str(row.dag_version_id)
        if source is not None:
            provenance["dag_file_sha256"] = sha256_text(source)
        if version is not None:
            provenance["dag_version_number"] = version.version_number
            if version.bundle_version:
                provenance["bundle_version"] = version.bundle_version
        return snapshot, provenance


class SnapshotRecorder(BackgroundQueue[SnapshotJob]):
    """Queue + daemon thread that records run snapshots with retries and a local spool.

    :param store: where snapshots go; ``None`` means the configured artifact root (resolved per job).
    :param spool_dir: where jobs wait while the store is down
        (default ``$AIRFLOW_HOME/mlops_spool/snapshots``).
    :param retries: extra attempts after a failed write (with exponential backoff from ``backoff`` s).
    :param cooldown: seconds after an outage during which jobs get a single attempt.
    :param max_queue: beyond this many pending jobs, new jobs are spooled directly.
    :param exit_timeout: how long process exit waits for pending jobs.
    """

    thread_name = "mlops-snapshot-recorder"
    exit_warning = "DAG snapshot recorder: %d job(s) still pending at exit were not recorded"

    def __init__(
        self,
        store: SnapshotStore | None = None,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        cooldown: float = 30.0,
        max_queue: int = 10_000,
        exit_timeout: float = 10.0,
        builder: Callable[[str, str | None], tuple[DagSnapshot, dict[str, Any]]] = build_snapshot,
    ) -> None:
        self.store = store
        self._spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.cooldown = cooldown
        self._builder = builder
        self.stats = {"recorded": 0, "skipped": 0, "spooled": 0, "unspooled": 0, "failed": 0}
        super().__init__(exit_timeout=exit_timeout, max_queue=max_queue)

    def _init_process_state(self) -> None:
        super()._init_process_state()
        self._down_until = 0.0
        self._spool_dirty = True  # a previous process may have left jobs behind
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    @property
    def spool_dir(self) -> Path:
        return self._spool_dir or default_spool_dir()

    # -- scheduler side -------------------------------------------------------------------------

    def enqueue(self, dag_run: Any, *, if_missing: bool = False) -> bool:
        """Hand a run over to the background thread; never raises, never touches the store or DB.

        :param if_missing: record only if the run was not recorded yet (used at run completion).
        """
        try:
            return self.submit(SnapshotJob.from_dag_run(dag_run, if_missing=if_missing))
        except Exception:
            log.exception("Could not queue the DAG structure snapshot of %r", dag_run)
            return False

    def submit(self, job: SnapshotJob) -> bool:
        """Queue a job (spooled directly when the queue is full); returns whether it was accepted."""
        with self._lock:
            if job.if_missing and job.key in self._seen:
                self.stats["skipped"] += 1
                return True
        if not self.put(job):
            self._spool(job, None, {})
        return True

    # -- background thread ----------------------------------------------------------------------

    def handle(self, job: SnapshotJob) -> None:
        self._process(job)

    def failed(self, job: SnapshotJob) -> None:
        self.stats["failed"] += 1

    def _mark_seen(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)

    def _store(self) -> SnapshotStore:
        return self.store if self.store is not None else default_store()

    def _attempts(self) -> int:
        return 1 if time.monotonic() < self._down_until else 1 + max(0, self.retries)

    def _retry(self, action: Callable[[], Any], what: str) -> Any:
        attempts = self._attempts()
        for attempt in range(attempts):
            try:
                return action()
            except DagNotSerializedError:
                raise
            except Exception as err:
                if attempt == attempts - 1:
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                log.info("DAG snapshot: %s failed (%s); retrying in %.1fs", what, err, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _process(self, job: SnapshotJob) -> None:
        if job.if_missing:
            if job.key in self._seen or self._spool_path(job).exists():
                self.stats["skipped"] += 1
                return
            with contextlib.suppress(Exception):  # store down: build and spool below
                if self._store().has_run(job.dag_id, job.run_id):
                    self._mark_seen(job.key)
                    self.stats["skipped"] += 1
                    return
        try:
            snapshot, provenance = self._retry(
                lambda: self._builder(job.dag_id, job.dag_version_id), f"building {job.dag_id}/{job.run_id}"
            )
        except DagNotSerializedError as err:  # deterministic: neither retried nor spooled
            log.warning("No DAG snapshot for %s/%s: %s", job.dag_id, job.run_id, err)
            self.stats["failed"] += 1
            return
        except Exception:
            log.exception(
                "Could not build the DAG snapshot of %s/%s; spooling the job", job.dag_id, job.run_id
            )
            self._spool(job, None, {})
            return
        self._write_or_spool(job, snapshot, provenance)

    def _write(self, job: SnapshotJob, snapshot: DagSnapshot, provenance: dict[str, Any]) -> None:
        recorded_at = datetime.fromtimestamp(job.enqueued_at, timezone.utc)
        self._store().record(snapshot, job.run_id, job.logical_date, recorded_at=recorded_at, **provenance)

    def _write_or_spool(self, job: SnapshotJob, snapshot: DagSnapshot, provenance: dict[str, Any]) -> None:
        try:
            self._retry(lambda: self._write(job, snapshot, provenance), f"writing {job.dag_id}/{job.run_id}")
        except Exception as err:
            self._down_until = time.monotonic() + self.cooldown
            log.warning(
                "DAG snapshot of %s/%s not written (%s); spooled to %s and retried after the next "
                "successful write",
                job.dag_id,
                job.run_id,
                err,
                self.spool_dir,
            )
            self._spool(job, snapshot, provenance)
            return
        self._down_until = 0.0
        self._mark_seen(job.key)
        self.stats["recorded"] += 1
        if self._spool_dirty:
            self.flush_spool()

    # -- spool ----------------------------------------------------------------------------------

    def _spool_path(self, job: SnapshotJob) -> Path:
        name = hashlib.sha256(f"{job.dag_id}\0{job.run_id}".encode()).hexdigest()[:32]
        return self.spool_dir / f"{name}.json"

    def _spool(self, job: SnapshotJob, snapshot: DagSnapshot | None, provenance: dict[str, Any]) -> None:
        """Write the job (and its snapshot when built) atomically to the local spool."""
        path = self._spool_path(job)
        document = {
            "job": asdict(job),
            "snapshot": snapshot.to_dict() if snapshot is not None else None,
            "provenance": provenance,
            "spooled_at": datetime.now(timezone.utc).isoformat(),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(json.dumps(document))
            os.replace(tmp, path)
        except OSError:
            log.exception("Could not spool the DAG snapshot of %s/%s: it is lost", job.dag_id, job.run_id)
            self.stats["failed"] += 1
            return
        self._spool_dirty = True
        self._mark_seen(job.key)
        self.stats["spooled"] += 1

    def spooled(self) -> list[Path]:
        """Spooled jobs, oldest first."""
        try:
            files = [
                p for p in self.spool_dir.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
            ]
        except FileNotFoundError:
            return []
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def flush_spool(self) -> int:
        """Write spooled jobs to the store, oldest first, stopping at the first failure.

        Runs in the background thread after each successful write; callable directly (for instance
        from a maintenance script). Returns how many jobs were written.
        """
        written = 0
        for path in self.spooled():
            try:
                document = json.loads(path.read_text())
                job = SnapshotJob(**document["job"])
                if document.get("snapshot") is not None:
                    snapshot = DagSnapshot.from_dict(document["snapshot"])
                    provenance = document.get("provenance") or {}
                else:
                    snapshot, provenance = self._builder(job.dag_id, job.dag_version_id)
                    provenance = {**provenance, "rebuilt_from_spool": True}
            except FileNotFoundError:
                continue  # flushed by another process
            except DagNotSerializedError as err:  # the DAG is gone from the metadata DB
                log.warning("Dropping spooled DAG snapshot job %s: %s", path, err)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            except Exception:
                log.exception("Spooled DAG snapshot job %s cannot be replayed yet", path)
                continue
            try:
                self._write(job, snapshot, {**provenance, "spooled": True})
            except Exception as err:
                log.info("DAG snapshot spool flush stopped: %s", err)
                return written
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            written += 1
            self.stats["unspooled"] += 1
        self._spool_dirty = bool(self.spooled())
        return written


#: The process-wide recorder the listener feeds.
recorder = SnapshotRecorder()


def _is_test_run(dag_run: Any) -> bool:
    triggered_by = _loaded(dag_run, "triggered_by")
    return str(getattr(triggered_by, "value", triggered_by)).lower() == "test"


class DagRunSnapshotListener:
    """Airflow listener: snapshots each DAG run's structure when it starts (scheduler side).

    Completion hooks record runs that were never seen starting. For ``dag.test()`` runs (triggered
    by ``test``), completion also waits for the recorder, so the snapshot is written, with the
    configuration in effect, before ``dag.test()`` returns.
    """

    def __init__(self, snapshot_recorder: SnapshotRecorder | None = None) -> None:
        self.recorder = recorder if snapshot_recorder is None else snapshot_recorder

    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        self.recorder.enqueue(dag_run)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        self._finished(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        self._finished(dag_run)

    def _finished(self, dag_run: Any) -> None:
        self.recorder.enqueue(dag_run, if_missing=True)
        with contextlib.suppress(Exception):
            if _is_test_run(dag_run):
                self.recorder.flush(self.recorder.exit_timeout)


#: Register this in the plugin's ``listeners``.
snapshot_listener = DagRunSnapshotListener()
