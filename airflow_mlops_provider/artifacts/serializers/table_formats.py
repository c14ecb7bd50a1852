"""The two file formats of tables: Arrow IPC (the default) and Parquet.

Both hold an Arrow table with its pandas metadata, so the serializers in
:mod:`~airflow_mlops_provider.artifacts.serializers.tabular` convert values to and from Arrow once and
leave the bytes to a :class:`TableFormat`. ``[mlops] table_format`` picks the format new artifacts
are written in; every artifact records its own, so a reader always uses the one that wrote it.

- **Arrow IPC** (the Arrow file format, also known as Feather v2): buffers compressed with zstd on
  all cores, read back without decoding pages. About twice as fast as Parquet for a round trip, at
  slightly more bytes. Record batches of about 64 MiB let a reader stream it batch by batch.
- **Parquet** with zstd and page checksums, row groups of about 128 MB, and a copy of the footer
  stored beside the data: what other tools (Spark, DuckDB, Athena) read.

Partial reads (columns, batches, previews) read through
:meth:`~airflow_mlops_provider.artifacts.serializers.StoredObject.open_verified`, which checks every
chunk it fetches against the digests recorded at write time.
"""

from __future__ import annotations

import contextlib
import io
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from airflow_mlops_provider.artifacts.chunks import SIDECAR as CHUNK_DIGESTS
from airflow_mlops_provider.artifacts.serializers import SIDECARS, Format, SerializerDeclined
from airflow_mlops_provider.exceptions import ArtifactError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference
    from airflow_mlops_provider.artifacts.serializers import StoredObject

# Parquet row groups: at most 1Mi rows and about 128 MB of Arrow memory (Parquet's customary block
# size). Each column chunk of a row group is one ranged read; a streaming reader holds one row group.
_PARQUET_GROUP_BYTES = 128 * 1024 * 1024
# Arrow record batches: about 64 MiB of Arrow memory, what a streaming reader holds at a time.
_ARROW_BATCH_BYTES = 64 * 1024 * 1024
_MAX_ROWS_PER_PART = 1 << 20
# Record batches a column read fetches at once (each on its own connection).
_CONCURRENT_BATCHES = 8
_SMALL_TABLE_BYTES = 1 << 20
# Below this much Arrow memory, IPC buffers are left uncompressed: zstd's fixed cost per buffer
# (about 20 us) is 30 times the rest of the encoding of a 1,000-row table, and saves tens of kB.
_UNCOMPRESSED_TABLE_BYTES = 256 * 1024
#: A copy of the Parquet footer stored beside the data (``<n>.footer.parquet``): a column read then
#: needs no footer request. Artifacts written before it existed are read through their own footer.
FOOTER_SIDECAR = "footer.parquet"


def _rows_per_part(table: pa.Table, target_bytes: int) -> int:
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.get_total_buffer_size() // table.num_rows)
    return int(min(max(target_bytes // per_row, 1024), _MAX_ROWS_PER_PART))


class TableFormat(ABC):
    """Writes Arrow tables to one file format and reads them back, whole or in part."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    extension: ClassVar[str]
    media_type: ClassVar[str]
    label: ClassVar[str]

    @property
    def format(self) -> Format:
        return Format(self.name, self.version, self.extension, self.media_type)

    @abstractmethod
    def write(self, table: pa.Table, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        """Write ``table``; returns extra summary fields (and :data:`SIDECARS`)."""

    @abstractmethod
    def write_stream(
        self, reader: pa.RecordBatchReader, sink: BinaryIO, settings: ArtifactSettings
    ) -> tuple[int, int, dict[str, Any]]:
        """Write a stream batch by batch; returns ``(rows, arrow bytes, extra summary fields)``."""

    @abstractmethod
    def read(self, data: memoryview) -> pa.Table:
        """The whole table from the object's bytes (already read; their sha256 is checked aside)."""

    @abstractmethod
    @contextlib.contextmanager
    def open(self, stored: StoredObject, *, pre_buffer: bool) -> Iterator[Any]:
        """A reader of the stored object for partial reads (format-specific); ``pre_buffer``
        fetches what a read needs in few coalesced requests, at the cost of holding it."""

    @abstractmethod
    def schema(self, reader: Any) -> pa.Schema: ...

    @abstractmethod
    def read_columns(self, reader: Any, columns: list[str]) -> pa.Table: ...

    @abstractmethod
    def iter_batches(
        self, reader: Any, batch_size: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]: ...

    @abstractmethod
    def head(self, reader: Any, columns: list[str], rows: int) -> tuple[pa.Table, dict[str, int]]:
        """The first ``rows`` rows of ``columns`` (reading the first part only) and the layout
        (``{"row_groups": n}`` or ``{"batches": n}``)."""


def index_columns(schema: pa.Schema) -> list[str]:
    """The columns holding a pandas index (a RangeIndex is metadata only, no column)."""
    metadata = schema.pandas_metadata or {}
    return [name for name in metadata.get("index_columns", []) if isinstance(name, str)]


def checked_columns(schema: pa.Schema, columns: Sequence[str], reference: Reference) -> list[str]:
    """``columns`` plus the index columns, refusing names the table does not have."""
    available = schema.names
    missing = [c for c in columns if c not in available]
    if missing:
        raise ArtifactError(
            f"Column(s) {missing} are not in {reference.uri} ({reference.summary}); "
            f"available: {available[:50]}"
        )
    return list(columns) + [c for c in index_columns(schema) if c not in columns]


class ArrowIpcFormat(TableFormat):
    name = "arrow"
    extension = ".arrow"
    media_type = "application/vnd.apache.arrow.file"
    label = "Arrow IPC"

    @staticmethod
    def _options(settings: ArtifactSettings, threads: bool = True, compress: bool = True) -> Any:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        codec = settings.arrow_compression
        compression: Any = None if codec == "none" or not compress else codec
        if compression == "zstd":
            compression = pa.Codec("zstd", compression_level=settings.arrow_compression_level)
        return ipc.IpcWriteOptions(
            compression=compression,
            use_threads=threads,
            emit_dictionary_deltas=True,
        )

    def write(self, table: pa.Table, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        if any(pa.types.is_dictionary(field.type) for field in table.schema):
            table = table.unify_dictionaries()  # a file holds one dictionary per column
        size = table.get_total_buffer_size()
        small = size < _SMALL_TABLE_BYTES
        # A small table is encoded in memory on this thread and handed over in one write: its dozens
        # of buffers would each cost a call, and threads cost more than they save.
        out = pa.BufferOutputStream() if small else sink
        options = self._options(settings, threads=not small, compress=size >= _UNCOMPRESSED_TABLE_BYTES)
        try:
            with ipc.new_file(out, table.schema, options=options) as writer:
                writer.write_table(table, max_chunksize=_rows_per_part(table, _ARROW_BATCH_BYTES))
        except pa.ArrowNotImplementedError as err:
            raise SerializerDeclined(f"Arrow IPC cannot hold this table: {err}") from err
        if small:
            sink.write(out.getvalue())
        return {}

    def write_stream(
        self, reader: pa.RecordBatchReader, sink: BinaryIO, settings: ArtifactSettings
    ) -> tuple[int, int, dict[str, Any]]:
        import pyarrow.ipc as ipc

        rows = nbytes = 0
        dictionaries = _GrowingDictionaries(reader.schema)
        with ipc.new_file(sink, reader.schema, options=self._options(settings)) as writer:
            for batch in reader:
                writer.write_batch(dictionaries.extend(batch))
                rows += batch.num_rows
                nbytes += batch.nbytes
        return rows, nbytes, {}

    def read(self, data: memoryview) -> pa.Table:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        return ipc.open_file(pa.py_buffer(data)).read_all()

    @contextlib.contextmanager
    def open(self, stored: StoredObject, *, pre_buffer: bool) -> Iterator[Any]:
        import pyarrow as pa

        try:
            with stored.open_verified() as source:
                yield _IpcFile(source)
        except (OSError, pa.ArrowException) as err:
            raise stored.read_failed(err, self.label) from err

    def schema(self, reader: _IpcFile) -> pa.Schema:
        return reader.schema

    def read_columns(self, reader: _IpcFile, columns: list[str]) -> pa.Table:
        import pyarrow as pa

        batches, schema = reader.read_batches(columns)
        return pa.Table.from_batches(batches, schema=schema)

    def iter_batches(
        self, reader: _IpcFile, batch_size: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        selected = reader.select(columns)
        for i in range(selected.num_record_batches):
            batch = selected.get_batch(i)
            for offset in range(0, batch.num_rows, batch_size):
                yield batch.slice(offset, batch_size)

    def head(self, reader: _IpcFile, columns: list[str], rows: int) -> tuple[pa.Table, dict[str, int]]:
        import pyarrow as pa

        selected = reader.select(columns)
        head = selected.schema.empty_table()
        if selected.num_record_batches:
            head = pa.Table.from_batches([selected.get_batch(0).slice(0, rows)])
        return head, {"batches": selected.num_record_batches}


class _IpcFile:
    """An Arrow IPC file opened for partial reads: its footer is read once, each selection reads
    only the buffers of the selected columns."""

    def __init__(self, source: BinaryIO) -> None:
        import pyarrow.ipc as ipc

        self._source = source
        self._whole = ipc.open_file(source)
        self.schema = self._whole.schema

    def _options(self, columns: list[str] | None) -> Any:
        import pyarrow.ipc as ipc

        if columns is None:
            return None
        return ipc.IpcReadOptions(included_fields=[self.schema.get_field_index(c) for c in columns])

    def select(self, columns: list[str] | None) -> Any:
        import pyarrow.ipc as ipc

        if columns is None:
            return self._whole
        return ipc.open_file(self._source, options=self._options(columns))

    def read_batches(self, columns: list[str]) -> tuple[list[pa.RecordBatch], pa.Schema]:
        """Every record batch of ``columns``, up to :data:`_CONCURRENT_BATCHES` fetched at once.

        pyarrow reads a batch's buffers one after the other through a Python file, so on an object
        store each is a request waiting for the previous one. Batches are independent: each thread
        reads its own through a fork of the verified source (own connection, footer already cached).
        """
        import pyarrow.ipc as ipc

        selected = self.select(columns)
        count = selected.num_record_batches
        fork = getattr(self._source, "fork", None)
        if count < 2 or fork is None:
            return [selected.get_batch(i) for i in range(count)], selected.schema
        options, local, sources = self._options(columns), threading.local(), []

        def read(index: int) -> pa.RecordBatch:
            if not hasattr(local, "file"):
                sources.append(source := fork())
                local.file = ipc.open_file(source, options=options)
            return local.file.get_batch(index)

        try:
            with ThreadPoolExecutor(min(_CONCURRENT_BATCHES, count), "mlops-batches") as pool:
                return list(pool.map(read, range(count))), selected.schema
        finally:
            for source in sources:
                source.close()


class _GrowingDictionaries:
    """Re-encodes each batch's dictionary columns against one dictionary that only grows.

    An Arrow IPC file holds one dictionary per column, extended by deltas; a stream may send a new
    dictionary with every batch. Unifying a batch with the dictionary so far keeps the old codes
    and appends new values, which the writer stores as a delta.
    """

    def __init__(self, schema: pa.Schema) -> None:
        import pyarrow as pa

        self._columns = [i for i, field in enumerate(schema) if pa.types.is_dictionary(field.type)]
        self._so_far: dict[int, pa.Array] = {}

    def extend(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import pyarrow as pa

        if not self._columns:
            return batch
        arrays = list(batch.columns)
        for i in self._columns:
            column = arrays[i]
            if i in self._so_far:
                pair = pa.table({"c": pa.chunked_array([self._so_far[i], column])})
                column = pair.unify_dictionaries().column(0).chunk(1)
            self._so_far[i] = column.slice(0, 0)
            arrays[i] = column
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


class ParquetFormat(TableFormat):
    name = "parquet"
    extension = ".parquet"
    media_type = "application/vnd.apache.parquet"
    label = "Parquet"

    @staticmethod
    def _compression(settings: ArtifactSettings) -> str | None:
        codec = settings.parquet_compression.lower()
        return None if codec in ("none", "") else codec

    def write(self, table: pa.Table, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        collected: list[pq.FileMetaData] = []
        try:
            pq.write_table(
                table,
                sink,
                compression=self._compression(settings),
                row_group_size=_rows_per_part(table, _PARQUET_GROUP_BYTES),
                write_page_checksum=True,
                metadata_collector=collected,
            )
        except pa.ArrowNotImplementedError as err:  # e.g. a struct without fields (empty dicts)
            raise SerializerDeclined(f"Parquet cannot hold this table: {err}") from err
        return _footer_sidecar(collected[0])

    def write_stream(
        self, reader: pa.RecordBatchReader, sink: BinaryIO, settings: ArtifactSettings
    ) -> tuple[int, int, dict[str, Any]]:
        import pyarrow.parquet as pq

        rows = nbytes = 0
        with pq.ParquetWriter(
            sink, reader.schema, compression=self._compression(settings), write_page_checksum=True
        ) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
                nbytes += batch.nbytes
        return rows, nbytes, _footer_sidecar(writer.writer.metadata)

    def read(self, data: memoryview) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True).read(
            use_pandas_metadata=True
        )

    @contextlib.contextmanager
    def open(self, stored: StoredObject, *, pre_buffer: bool) -> Iterator[pq.ParquetFile]:
        """The Parquet file, its footer read from the sidecar copy when one matches its hash.

        Artifacts with chunk digests (or small enough to be checked whole) are read through
        :meth:`~StoredObject.open_verified`. Older ones rely on the recorded size and page checksums:
        without a footer copy the size is checked when opened; with it, a size lookup and footer
        read are saved and other bytes show up as a failed page checksum or structure.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        from airflow_mlops_provider.artifacts.chunks import CHUNK_BYTES

        footer = stored.sidecar(FOOTER_SIDECAR)
        metadata = None if footer is None else pq.read_metadata(pa.BufferReader(footer))
        reference = stored.reference
        verified = CHUNK_DIGESTS in (reference.details.get("sidecars") or {})
        try:
            if verified or reference.size_bytes <= CHUNK_BYTES:
                raw = stored.open_verified()
            else:
                raw = stored.open(trust_size=metadata is not None)
            with raw:
                yield pq.ParquetFile(
                    raw, metadata=metadata, page_checksum_verification=True, pre_buffer=pre_buffer
                )
        except (OSError, pa.ArrowException) as err:
            raise stored.read_failed(err, self.label) from err

    def schema(self, reader: pq.ParquetFile) -> pa.Schema:
        return reader.schema_arrow

    def read_columns(self, reader: pq.ParquetFile, columns: list[str]) -> pa.Table:
        return reader.read(columns=columns, use_pandas_metadata=True)

    def iter_batches(
        self, reader: pq.ParquetFile, batch_size: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        # Row group by row group: memory stays around one row group.
        yield from reader.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)

    def head(self, reader: pq.ParquetFile, columns: list[str], rows: int) -> tuple[pa.Table, dict[str, int]]:
        import pyarrow as pa

        head = reader.schema_arrow.empty_table().select(columns)
        groups = reader.metadata.num_row_groups
        if groups:
            batches = reader.iter_batches(batch_size=rows, row_groups=[0], columns=columns, use_threads=False)
            first = next(iter(batches), None)
            if first is not None:
                head = pa.Table.from_batches([first])
        return head, {"row_groups": groups}


def _footer_sidecar(metadata: pq.FileMetaData) -> dict[str, dict[str, bytes]]:
    out = io.BytesIO()
    metadata.write_metadata_file(out)
    return {SIDECARS: {FOOTER_SIDECAR: out.getvalue()}}


ARROW = ArrowIpcFormat()
PARQUET = ParquetFormat()
_FORMATS: dict[str, TableFormat] = {ARROW.name: ARROW, PARQUET.name: PARQUET}


def chosen(settings: ArtifactSettings) -> TableFormat:
    """The format new tables are written in (``[mlops] table_format``)."""
    return _FORMATS[settings.table_format]


def of(reference: Reference) -> TableFormat:
    """The format an artifact was written in."""
    try:
        return _FORMATS[reference.format]
    except KeyError:
        raise ArtifactError(
            f"The artifact {reference.uri} is in the table format {reference.format!r}, which this "
            f"version of airflow-mlops-provider cannot read ({', '.join(_FORMATS)}); upgrade it."
        ) from None
