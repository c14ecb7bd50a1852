"""Content-addressed storage of DAG snapshots in the artifact store, and per-run pointers to them.

Layout under the artifact root::

    _snapshots/dag_id=<dag>/<snapshot id>.json             one object per distinct structure
    _snapshots/dag_id=<dag>/runs/run_id=<run>.json         {"snapshot_id", "dag_id", "run_id", ...}

A run pointer holds ``snapshot_id``, ``dag_id``, ``run_id``, ``recorded_at`` (when the run was handed
to the recorder) and ``logical_date``; the recorder adds provenance: ``dag_version_id``,
``dag_version_number``, ``bundle_version``, ``dag_file_sha256`` (the SHA-256 of the DAG file's
source the run was created with) and, when relevant, ``spooled`` / ``rebuilt_from_spool`` /
``dag_version_fallback``.

A DAG that does not change costs one snapshot object however many runs it has (the write is skipped
when the object exists); each run costs one small pointer. Snapshot objects are the canonical JSON
whose SHA-256 is their name, so a read verifies the content against the name.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.exceptions import ArtifactIntegrityError, ArtifactNotFoundError
from airflow_mlops_provider.snapshots.diff import diff_snapshots
from airflow_mlops_provider.snapshots.model import DagSnapshot, sha256_text

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.store import ArtifactStore
    from airflow_mlops_provider.snapshots.diff import SnapshotDiff

_Path = TypeVar("_Path", layout.SnapshotPath, layout.SnapshotRunPath)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class SnapshotStore:
    """Reads and writes DAG snapshots and run pointers through an :class:`ArtifactStore`."""

    def __init__(self, artifact_store: ArtifactStore) -> None:
        self.artifacts = artifact_store

    def __repr__(self) -> str:
        return f"SnapshotStore({self.artifacts!r})"

    # -- layout ---------------------------------------------------------------------------------

    def dag_url(self, dag_id: str) -> str:
        return self.artifacts.url(layout.snapshots_dir(dag_id))

    def snapshot_url(self, dag_id: str, snapshot_id: str) -> str:
        return self.artifacts.url(layout.SnapshotPath.of(dag_id, snapshot_id).relative)

    def run_url(self, dag_id: str, run_id: str) -> str:
        return self.artifacts.url(layout.SnapshotRunPath.of(dag_id, run_id).relative)

    # -- writes ---------------------------------------------------------------------------------

    def put_snapshot(self, snapshot: DagSnapshot) -> bool:
        """Store the snapshot unless an object with its id exists; returns whether it wrote."""
        url = self.snapshot_url(snapshot.dag_id, snapshot.id)
        if self.artifacts.exists(url):
            return False
        self.artifacts.put_bytes(url, snapshot.to_json().encode())
        return True

    def record(
        self,
        snapshot: DagSnapshot,
        run_id: str,
        logical_date: datetime | str | None,
        *,
        recorded_at: datetime | str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Store the snapshot (once) and point ``run_id`` at it; returns the pointer.

        ``extra`` keys (e.g. ``dag_version_id``) are added to the pointer for provenance. The
        snapshot is written before the pointer, so a pointer never refers to a missing object.
        """
        self.put_snapshot(snapshot)
        pointer = {
            **extra,
            "snapshot_id": snapshot.id,
            "dag_id": snapshot.dag_id,
            "run_id": run_id,
            "recorded_at": _iso(recorded_at) or datetime.now(timezone.utc).isoformat(),
            "logical_date": _iso(logical_date),
        }
        self.artifacts.put_bytes(
            self.run_url(snapshot.dag_id, run_id), json.dumps(pointer, sort_keys=True).encode()
        )
        return pointer

    # -- reads ----------------------------------------------------------------------------------

    def get(self, dag_id: str, snapshot_id: str) -> DagSnapshot:
        """The snapshot with this id; raises :class:`ArtifactNotFoundError` when it is not stored."""
        url = self.snapshot_url(dag_id, snapshot_id)
        data = self.artifacts.get_bytes(url)
        if sha256_text(data.decode()) != snapshot_id:
            raise ArtifactIntegrityError(
                f"DAG snapshot {url} does not match its content hash: the object was modified or torn."
            )
        return DagSnapshot.from_json(data)

    def pointer(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.artifacts.get_bytes(self.run_url(dag_id, run_id)))
        except ArtifactNotFoundError:
            return None

    def has_run(self, dag_id: str, run_id: str) -> bool:
        return self.artifacts.exists(self.run_url(dag_id, run_id))

    def snapshot_for_run(self, dag_id: str, run_id: str) -> DagSnapshot | None:
        """The structure ``run_id`` was created with, or ``None`` when it was not recorded."""
        pointer = self.pointer(dag_id, run_id)
        if pointer is None:
            return None
        return self.get(dag_id, pointer["snapshot_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Pointers of every recorded run of the DAG, in the order they were handed to the recorder
        (when each run started; runs without a logical date sort among the others)."""
        pointers = []
        for path in self._objects(dag_id, layout.SnapshotRunPath):
            try:
                pointers.append(json.loads(self.artifacts.get_bytes(self.artifacts.url(path.relative))))
            except ArtifactNotFoundError:  # deleted while listing
                continue
        return sorted(pointers, key=lambda p: (p.get("recorded_at") or "", p.get("logical_date") or ""))

    def snapshot_ids(self, dag_id: str) -> list[str]:
        """Ids of the distinct structures stored for the DAG."""
        return sorted(path.snapshot_id for path in self._objects(dag_id, layout.SnapshotPath))

    def diff_runs(self, dag_id: str, old_run_id: str, new_run_id: str) -> SnapshotDiff | None:
        """Structural diff between two recorded runs, ``None`` if either was not recorded.

        The runs' DAG file hashes (when recorded) tell whether the file changed besides the structure.
        """
        old_pointer, new_pointer = self.pointer(dag_id, old_run_id), self.pointer(dag_id, new_run_id)
        if old_pointer is None or new_pointer is None:
            return None
        return diff_snapshots(
            self.get(dag_id, old_pointer["snapshot_id"]),
            self.get(dag_id, new_pointer["snapshot_id"]),
            old_file_hash=old_pointer.get("dag_file_sha256"),
            new_file_hash=new_pointer.get("dag_file_sha256"),
        )

    def _objects(self, dag_id: str, kind: type[_Path]) -> list[_Path]:
        """The DAG's stored objects of one kind (unfinished local writes, ``<name>.tmp-xxxx``, are not)."""
        found = (layout.parse(o.relative) for o in self.artifacts.walk(layout.snapshots_dir(dag_id)))
        return [path for path in found if isinstance(path, kind)]
