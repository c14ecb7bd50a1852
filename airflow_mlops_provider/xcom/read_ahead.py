"""Read ahead through the outputs of a mapped upstream that a task iterates over.

Airflow hands a reduce task a lazy sequence: each item is one request for its XCom row, then one
``deserialize_value``, then (with this backend) one read of the artifact, all one after the other.
When a task loads map index ``i + 1`` of an upstream right after ``i``, it is iterating: the rows of
the next few items are asked for in one request and their artifacts are fetched in the background
(:meth:`ArtifactManager.prefetch`), so the following loads find their bytes ready. A task that pulls
one item never triggers it. Only for object stores: a local read is quicker than the extra request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider import _compat
from airflow_mlops_provider.artifacts import codec

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

log = logging.getLogger(__name__)

#: Items fetched ahead of the one being loaded (within the prefetcher's byte bound).
WINDOW = 8
_MAX_STREAMS = 32


@dataclass
class _Stream:
    last: int  # the map index loaded last
    horizon: int  # the first map index not asked for yet


_streams: dict[tuple[Any, ...], _Stream] = {}


def note_load(row: Any, manager: ArtifactManager) -> None:
    """Called before an XCom row is loaded whole in a task; starts reading ahead when the task
    walks a mapped upstream's items in order. Never raises: reading ahead only saves time."""
    if manager.store.is_local:
        return
    first = next(codec.iter_references(row), None)
    if first is None:
        return
    producer = first[1].get("producer") or {}
    index = producer.get("map_index")
    if not isinstance(index, int) or index < 0:
        return
    stream_key = tuple(producer.get(field) for field in ("dag_id", "run_id", "task_id", "key"))
    stream = _streams.get(stream_key)
    if stream is None or index != stream.last + 1:  # a single pull, or a jump: not (yet) a walk
        if len(_streams) >= _MAX_STREAMS:
            _streams.clear()
        _streams[stream_key] = _Stream(last=index, horizon=index + 1)
        return
    stream.last = index
    if stream.horizon - index > WINDOW // 2:  # enough is on its way
        return
    start, stop = max(stream.horizon, index + 1), index + 1 + WINDOW
    stream.horizon = stop
    try:
        dag_id, run_id, task_id, key = stream_key
        rows = _compat.xcom_slice(
            dag_id=dag_id, run_id=run_id, task_id=task_id, key=key, start=start, stop=stop
        )
        if rows:
            manager.prefetch(rows)
    except Exception as err:
        log.debug("Could not read ahead through %s: %s", stream_key, err)
