"""DAG structure snapshots: the shape each run was created with, and structural diffs between runs.

``model`` (``DagSnapshot``), ``diff`` (``diff_snapshots``) and ``store`` (``SnapshotStore``) need no
scheduler; ``recorder`` holds the background recorder and the listener the plugin registers.
"""

from __future__ import annotations

from airflow_mlops_provider.snapshots.diff import SnapshotDiff, TaskChange, TaskRename, diff_snapshots
from airflow_mlops_provider.snapshots.model import DagSnapshot, TaskSnapshot
from airflow_mlops_provider.snapshots.store import SnapshotStore

__all__ = [
    "DagSnapshot",
    "SnapshotDiff",
    "SnapshotStore",
    "TaskChange",
    "TaskRename",
    "TaskSnapshot",
    "diff_snapshots",
]
