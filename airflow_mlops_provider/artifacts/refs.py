"""Lazy handles on stored artifacts.

Annotate a task parameter with :class:`ArtifactRef` to receive a handle instead of the loaded value,
then read only what you need::

    @task
    def train(features: ArtifactRef[pd.DataFrame]):
        for batch in features.iter_batches(columns=["age", "spend"]):
            ...

or annotate it ``Annotated[pd.DataFrame, Columns("age", "spend")]`` to receive a DataFrame holding
only those columns.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, TypeVar

from airflow_mlops_provider.artifacts.serializers.tabular import FOOTER_SIDECAR
from airflow_mlops_provider.exceptions import ArtifactError, ArtifactIntegrityError, ArtifactNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Producer, Reference

log = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = object()


class Columns:
    """``Annotated`` marker: load only these columns of a table artifact.

    :param names: column names to read; other columns are never downloaded or decoded.
    """

    def __init__(self, *names: str) -> None:
        if not names or not all(isinstance(n, str) for n in names):
            raise TypeError("Columns(...) takes one or more column names as strings.")
        self.names = list(names)

    def __repr__(self) -> str:
        return f"Columns({', '.join(map(repr, self.names))})"


class ArtifactRef(Generic[T]):
    """A handle on an artifact that reads nothing until asked.

    Tasks receive one for parameters annotated ``ArtifactRef`` (optionally ``ArtifactRef[T]``).
    """

    def __init__(
        self, reference: Reference | None, manager: ArtifactManager | None, value: Any = _MISSING
    ) -> None:
        self._reference = reference
        self._manager = manager
        self._value = value

    @classmethod
    def from_value(cls, value: Any) -> ArtifactRef[Any]:
        """A handle on a value that was small enough to live inline in the XCom row."""
        return cls(None, None, value)

    def __repr__(self) -> str:
        if self._reference is None:
            return f"ArtifactRef(inline {type(self._value).__name__})"
        return f"ArtifactRef({self._reference.uri!r}, {self._reference.summary!r})"

    # -- metadata (no I/O) ------------------------------------------------------------------------

    @property
    def reference(self) -> Reference | None:
        """The stored reference, or ``None`` for an inline value."""
        return self._reference

    @property
    def uri(self) -> str | None:
        return self._reference.uri if self._reference else None

    @property
    def summary(self) -> str:
        return self._reference.summary if self._reference else repr(self._value)[:200]

    @property
    def details(self) -> dict[str, Any]:
        return dict(self._reference.details) if self._reference else {}

    @property
    def producer(self) -> Producer | None:
        return self._reference.producer if self._reference else None

    @property
    def is_table(self) -> bool:
        return self._reference is not None and self._reference.format == "parquet"

    # -- reading --------------------------------------------------------------------------------

    def load(self, columns: Sequence[str] | None = None) -> T:
        """The value; for tables, ``columns`` reads only those columns (and the index)."""
        if self._reference is None:
            if columns is not None:
                return self._value[list(columns)]
            return self._value
        assert self._manager is not None
        if columns is None:
            return self._manager.load_reference(self._reference)
        table = self._read_table(list(columns))
        serializer = self._manager.registry.by_name(self._reference.serializer)
        return serializer.from_arrow(table, self._reference)  # type: ignore[attr-defined]

    def iter_batches(
        self, batch_size: int = 65_536, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table artifact as ``pyarrow.RecordBatch`` objects, one row group at a time.

        Memory stays around one row group (at most 128 MB of Arrow memory for tables returned whole;
        one batch for tables written from a ``RecordBatchReader``) whatever the table's size.
        """
        self._require_table("iter_batches")
        # Row group by row group: memory stays around one row group.
        with self._parquet(pre_buffer=False) as parquet:
            yield from parquet.iter_batches(
                batch_size=batch_size, columns=list(columns) if columns else None, use_threads=False
            )

    def iter_pandas(self, batch_size: int = 65_536, columns: Sequence[str] | None = None) -> Iterator[Any]:
        """Like :meth:`iter_batches`, as pandas DataFrames."""
        for batch in self.iter_batches(batch_size=batch_size, columns=columns):
            yield batch.to_pandas()

    def open(self) -> BinaryIO:
        """The raw bytes as a seekable stream (ranged reads on object stores); not hash-checked."""
        if self._reference is None or self._manager is None:
            raise ArtifactError("This value was stored inline in the XCom row; use .load().")
        return self._manager.store.open_read(self._reference.data_uri)

    def _require_table(self, what: str) -> None:
        if not self.is_table:
            kind = self._reference.type if self._reference else type(self._value).__qualname__
            raise ArtifactError(f"{what}() needs a table artifact (Parquet); this one is {kind}.")

    def _open_checked(self) -> BinaryIO:
        """Open the object, refusing it if its size differs from the one recorded at write time."""
        assert self._reference is not None and self._manager is not None
        raw = self._manager.store.open_read(self._reference.data_uri)
        size = getattr(raw, "size", None)
        if size is None:
            size = self._manager.store.size(self._reference.data_uri)
        if size != self._reference.size_bytes:
            raw.close()
            self._manager.verify(self._reference, b"")  # raises the integrity error with details
        return raw

    @contextlib.contextmanager
    def _parquet(self, *, pre_buffer: bool) -> Iterator[pq.ParquetFile]:
        """The Parquet file, reading the footer from its sidecar copy when there is one.

        Read failures are explained: a deleted object, other bytes than were written (size or page
        checksums), or an unreachable store each get their own error naming URI and producer.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._reference is not None and self._manager is not None
        reference, store = self._reference, self._manager.store
        metadata = self._footer()
        try:
            if metadata is None:
                raw = self._open_checked()
            else:
                raw = store.open_read(reference.data_uri, size=reference.size_bytes)
            with raw:
                yield pq.ParquetFile(
                    raw, metadata=metadata, page_checksum_verification=True, pre_buffer=pre_buffer
                )
        except ArtifactNotFoundError as err:
            raise self._manager.missing(reference) from err
        except (OSError, pa.ArrowException) as err:
            try:
                size = store.size(reference.data_uri)
            except ArtifactNotFoundError:
                raise self._manager.missing(reference) from err
            if size != reference.size_bytes:
                self._manager.verify(reference, b"")  # raises the integrity error with details
            raise ArtifactIntegrityError(
                f"The artifact {reference.data_uri} written by {reference.producer.describe()} cannot "
                f"be read as Parquet: {type(err).__name__}: {err}. Its bytes differ from what was "
                "written (a page checksum or the file structure failed); re-run the producing task."
            ) from err

    def _footer(self) -> pq.FileMetaData | None:
        """The footer's sidecar copy, if it was written and still matches its recorded hash."""
        import hashlib

        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._reference is not None and self._manager is not None
        expected = (self._reference.details.get("sidecars") or {}).get(FOOTER_SIDECAR)
        if not expected:
            return None
        try:
            data = self._manager.store.get_bytes(self._reference.sibling(FOOTER_SIDECAR))
        except ArtifactNotFoundError:
            return None
        if hashlib.sha256(data).hexdigest() != expected:
            log.warning("Ignoring the footer copy of %s: its hash does not match.", self._reference.uri)
            return None
        return pq.read_metadata(pa.BufferReader(data))

    def _read_table(self, columns: list[str]) -> pa.Table:
        self._require_table("load(columns=...)")
        # pre_buffer coalesces the column chunks into few ranged requests on object stores.
        with self._parquet(pre_buffer=True) as parquet:
            available = parquet.schema_arrow.names
            missing = [c for c in columns if c not in available]
            if missing:
                raise ArtifactError(
                    f"Column(s) {missing} are not in {self.uri} ({self.summary}); available: {available[:50]}"
                )
            return parquet.read(columns=columns, use_pandas_metadata=True)
