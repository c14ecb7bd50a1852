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

from typing import TYPE_CHECKING, Any, BinaryIO, Generic, Protocol, TypeVar

from airflow_mlops_provider.artifacts import lineage
from airflow_mlops_provider.artifacts.serializers import TableSerializer
from airflow_mlops_provider.exceptions import ArtifactError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa

    from airflow_mlops_provider.artifacts.manifest import Producer, Reference
    from airflow_mlops_provider.artifacts.serializers import Serializer, StoredObject

T = TypeVar("T")
_MISSING = object()


class ArtifactReader(Protocol):
    """What a handle reads through: the artifact manager. A protocol, so that the manager imports
    this module and never the other way round."""

    def load_reference(self, reference: Reference) -> Any: ...

    def serializer(self, reference: Reference) -> Serializer: ...

    def stored(self, reference: Reference) -> StoredObject: ...

    def open_raw(self, reference: Reference) -> BinaryIO: ...


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
        self, reference: Reference | None, reader: ArtifactReader | None, value: Any = _MISSING
    ) -> None:
        self._reference = reference
        self._reader = reader
        self._value = value

    def __reduce__(self) -> Any:
        # A handle pickles as its reference (or inline value), never with its reader: the reader is
        # the artifact manager, whose settings hold [mlops] signing_key. Unpickled, it reads through
        # the manager configured where it is loaded.
        if self._reference is None:
            return (_inline_handle, (self._value,))
        return (_stored_handle, (self._reference.to_row(),))

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
        """Whether the artifact can be read by column and in batches (its serializer is a table one)."""
        if self._reference is None or self._reader is None:
            return False
        try:
            return isinstance(self._reader.serializer(self._reference), TableSerializer)
        except LookupError:
            return False

    # -- reading --------------------------------------------------------------------------------

    def load(self, columns: Sequence[str] | None = None) -> T:
        """The value; for tables, ``columns`` reads only those columns (and the index)."""
        if self._reference is None:
            if columns is not None:
                return self._value[list(columns)]
            return self._value
        assert self._reader is not None
        if columns is None:
            return self._reader.load_reference(self._reference)
        serializer = self._table("load(columns=...)")
        value = serializer.read_columns(self._reader.stored(self._reference), list(columns))
        lineage.note_loaded(value, self._reference)
        return value

    def iter_batches(
        self, batch_size: int = 65_536, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table artifact as ``pyarrow.RecordBatch`` objects, one row group at a time.

        Memory stays around one row group (at most 128 MB of Arrow memory for tables returned whole;
        one batch for tables written from a ``RecordBatchReader``) whatever the table's size.
        """
        serializer = self._table("iter_batches")
        assert self._reference is not None and self._reader is not None
        stored = self._reader.stored(self._reference)
        yield from serializer.iter_batches(stored, batch_size, list(columns) if columns else None)

    def iter_pandas(self, batch_size: int = 65_536, columns: Sequence[str] | None = None) -> Iterator[Any]:
        """Like :meth:`iter_batches`, as pandas DataFrames."""
        from airflow_mlops_provider.artifacts.serializers.tabular import arrow_to_pandas

        for batch in self.iter_batches(batch_size=batch_size, columns=columns):
            yield arrow_to_pandas(batch)

    def open(self) -> BinaryIO:
        """The raw bytes as a seekable stream (ranged reads on object stores); not hash-checked."""
        if self._reference is None or self._reader is None:
            raise ArtifactError("This value was stored inline in the XCom row; use .load().")
        return self._reader.open_raw(self._reference)

    def _table(self, what: str) -> TableSerializer:
        serializer = None
        if self._reference is not None and self._reader is not None:
            serializer = self._reader.serializer(self._reference)
        if not isinstance(serializer, TableSerializer):
            kind = self._reference.type if self._reference else type(self._value).__qualname__
            raise ArtifactError(
                f"{what}() needs a table artifact (a DataFrame, a pyarrow Table...); this one is {kind}."
            )
        return serializer


def _inline_handle(value: Any) -> ArtifactRef[Any]:
    return ArtifactRef.from_value(value)


def _stored_handle(row: dict[str, Any]) -> ArtifactRef[Any]:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Reference

    return ArtifactRef(Reference.from_row(row), ArtifactManager.configured())
