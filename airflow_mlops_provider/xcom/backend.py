"""``ArtifactXComBackend``: XCom values stored as typed artifacts.

Airflow 3 runs an XCom backend only in the worker's task process; the API server and the UI read
the JSON row as it is. So the row is either the value itself (small JSON) or a readable reference:
type, one-line summary, format, size and URI.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

from airflow_mlops_provider.artifacts import lineage
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer
from airflow_mlops_provider.caching import DeferredInput
from airflow_mlops_provider.records import RECORD_KEYS
from airflow_mlops_provider.xcom import _lazy, read_ahead


def get_manager() -> ArtifactManager:
    """The manager for the current ``[mlops]`` config (cached per distinct config)."""
    return ArtifactManager.configured()


class ArtifactXComBackend(BaseXCom):
    """Stores each XCom value in its own format in the artifact store (see ``[mlops]`` config).

    DataFrames and tables go to Arrow IPC (or Parquet), arrays to ``.npy``, images to PNG, bytes as they are,
    large JSON to zstd JSON, anything else to cloudpickle (optionally signed). Small JSON values stay
    inline in the XCom row. Parameters annotated :class:`~airflow_mlops_provider.ArtifactRef` (or
    ``Annotated[..., Columns(...)]``) receive lazy handles (or just those columns).
    """

    @staticmethod
    def serialize_value(
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> Any:
        producer = Producer(
            dag_id=dag_id or "",
            run_id=run_id or "",
            task_id=task_id or "",
            map_index=-1 if map_index is None else map_index,
            key=key or BaseXCom.XCOM_RETURN_KEY,
            try_number=_lazy.current_try_number(),
        )
        if producer.key in RECORD_KEYS:
            # The catalog reads the provider's own records from the DB: never a reference, whatever
            # the size (a reduce task's record lists every input it read).
            return get_manager().dump_record(value, producer)
        row = get_manager().dump(value, producer)
        if producer.key == BaseXCom.XCOM_RETURN_KEY:
            lineage.note_return_row(row)
        return row

    @staticmethod
    def deserialize_value(result: Any) -> Any:
        row = result.value
        manager = get_manager()
        request = _lazy.requested_form(row)
        if request is _lazy.LAZY:
            return manager.load_lazy(row)
        if request is _lazy.DEFERRED:
            return DeferredInput(row, manager)
        if isinstance(request, _lazy.ColumnsRequest):
            return manager.load_lazy(row).load(columns=request.names)
        read_ahead.note_load(row, manager)
        return manager.load(row)

    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        value = getattr(xcom, "value", None)
        if value is not None:
            get_manager().purge(value)
