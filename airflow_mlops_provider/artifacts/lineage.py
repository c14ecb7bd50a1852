"""What the running task read and how it ran, attached to the manifests of what it writes.

The task process reads its inputs while Airflow resolves arguments (before ``execute``) and writes
its return value after ``execute``; this per-process record links the two. The provider's listener
clears it when a task instance finishes, so each task in a process starts clean.

Reads and writes are also reported to Airflow's hook-level lineage collector, which the OpenLineage
provider (when installed and configured) turns into the input and output datasets of the task's
OpenLineage events. Without it the collector is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_mlops_provider.artifacts.manifest import Reference

log = logging.getLogger(__name__)

_reads: dict[str, dict[str, Any]] = {}
_execution: dict[str, Any] | None = None
# id(value) -> (value or a weak reference to it, reference) for each value loaded from an artifact.
# Cached tasks key their inputs by these references. Weakly held where the type allows (frames,
# arrays, models): a notebook or a bench loading value after value would otherwise keep them all
# alive; the entry goes with the value, so its id cannot be reused for another. Other values (lists,
# dicts, bytes) are held until the task ends (the listener resets this record).
_loaded: dict[int, tuple[Any, Reference]] = {}
_return_row: Any = None


class _ArtifactLineageContext:
    """The one ``context`` object the collector files every artifact under (it de-duplicates by it)."""


_CONTEXT = _ArtifactLineageContext()


def _hook_lineage_collector() -> Any | None:
    """Airflow's hook-level lineage collector, inside a task process only.

    The API server and the CLI also load artifacts; lineage there belongs to no task, and a
    long-lived process would only fill the collector up. Without a reader of hook lineage (such as
    OpenLineage) nothing is reported: making Airflow's collector costs a task about 0.4 s.
    """
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if task_runner is None or getattr(task_runner, "SUPERVISOR_COMMS", None) is None:
        return None
    from airflow_mlops_provider._compat import hook_lineage_has_readers

    if not hook_lineage_has_readers():
        return None
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
    except ImportError:
        return None
    return get_hook_lineage_collector()


_unreported = 0


@contextlib.contextmanager
def unreported() -> Iterator[None]:
    """Writes inside the block are no outputs of the task (a cache hit's staging copy): they are
    not reported to Airflow's hook lineage."""
    global _unreported
    _unreported += 1
    try:
        yield
    finally:
        _unreported -= 1


def report_asset(reference: Reference, *, output: bool) -> None:
    """Report an artifact the running task wrote (``output``) or read, as an Airflow asset URI.

    The URI is the artifact's place in its write folder (``reference.uri``), the same one the
    manifests, the CLI and the UI show. Lineage never fails a task: errors are logged.
    """
    collector = _hook_lineage_collector()
    if collector is None or (output and _unreported):
        return
    try:
        add = collector.add_output_asset if output else collector.add_input_asset
        add(context=_CONTEXT, uri=reference.uri)
    except Exception:
        log.warning("Could not report %s to Airflow's hook lineage", reference.uri, exc_info=True)


def record_read(reference: Reference) -> None:
    """Note an input artifact (loaded, or handed over as a lazy handle)."""
    if reference.uri not in _reads:
        report_asset(reference, output=False)
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


def note_loaded(value: Any, reference: Reference) -> None:
    """Remember which artifact ``value`` was loaded from (see :func:`loaded_from`)."""
    key = id(value)
    try:
        held: Any = weakref.ref(value, lambda _: _loaded.pop(key, None))
    except TypeError:  # not weakly referenceable
        held = value
    _loaded[key] = (held, reference)


def loaded_from(value: Any) -> Reference | None:
    """The artifact this very object was loaded from in this task, if it was."""
    found = _loaded.get(id(value))
    if found is None:
        return None
    held = found[0]
    return found[1] if (held() if isinstance(held, weakref.ref) else held) is value else None


def note_return_row(row: Any) -> None:
    """The ``return_value`` XCom row the running task wrote (what a cache entry points at)."""
    global _return_row
    _return_row = row


def return_row() -> Any:
    return _return_row


def inputs() -> list[dict[str, Any]]:
    return list(_reads.values())


def set_execution(info: dict[str, Any]) -> None:
    """Execution facts (code hash, duration, memory, params) for the manifests written next."""
    global _execution
    _execution = info


def execution() -> dict[str, Any] | None:
    return _execution


def reset() -> None:
    global _execution, _return_row
    _reads.clear()
    _loaded.clear()
    _execution = None
    _return_row = None
