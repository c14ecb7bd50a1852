"""What the running task read and how it ran, attached to the manifests of what it writes.

The task process reads its inputs while Airflow resolves arguments (before ``execute``) and writes
its return value after ``execute``; this per-process record links the two. The provider's listener
clears it when a task instance finishes, so each task in a process starts clean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.manifest import Reference

_reads: dict[str, dict[str, Any]] = {}
_execution: dict[str, Any] | None = None


def record_read(reference: Reference) -> None:
    """Note an input artifact (loaded, or handed over as a lazy handle)."""
    _reads[reference.uri] = {
        "uri": reference.uri,
        "sha256": reference.sha256,
        "type": reference.type,
        "producer": {
            "dag_id": reference.producer.dag_id,
            "run_id": reference.producer.run_id,
            "task_id": reference.producer.task_id,
            "map_index": reference.producer.map_index,
            "key": reference.producer.key,
        },
    }


def inputs() -> list[dict[str, Any]]:
    return list(_reads.values())


def set_execution(info: dict[str, Any]) -> None:
    """Execution facts (code hash, duration, memory, params) for the manifests written next."""
    global _execution
    _execution = info


def execution() -> dict[str, Any] | None:
    return _execution


def reset() -> None:
    global _execution
    _reads.clear()
    _execution = None
