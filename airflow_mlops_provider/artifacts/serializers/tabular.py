"""Tables (pandas, polars, pyarrow): Parquet with zstd and page checksums.

pyarrow keeps the pandas metadata (index, categoricals, tz-aware timestamps, nullable ints), so a
DataFrame comes back with the same dtypes. Row groups are sized so that a reader can stream them
(:meth:`~airflow_mlops_provider.artifacts.refs.ArtifactRef.iter_batches`) within a small memory
budget, and page checksums let partial reads detect corruption without hashing the whole file. A
copy of the footer, stored beside the data with its sha256 recorded, saves a column read on an
object store the size lookup and the footer read.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import SIDECARS, SerializerDeclined, TableSerializer
from airflow_mlops_provider.exceptions import ArtifactError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference
    from airflow_mlops_provider.artifacts.serializers import StoredObject

# Row groups: at most pyarrow's default of 1Mi rows and about 128 MB of Arrow memory (Parquet's
# customary block size). Each column chunk of a row group is one ranged read on an object store, and
# a streaming reader holds about one row group.
_TARGET_ROW_GROUP_BYTES = 128 * 1024 * 1024
# A copy of the Parquet footer stored beside the data: a column read on an object store then needs
# one ranged request for the column chunks instead of a size lookup, a footer read, then the chunks.
# Artifacts written before it existed (no sidecar recorded) are read through their own footer.
FOOTER_SIDECAR = "footer.parquet"
_MAX_DTYPES_IN_SUMMARY = 100
_THREADED_CELLS = 1_000_000  # from this many cells pyarrow converts a DataFrame with threads
_SERIES_NAME_KEY = b"airflow_mlops.series_name"
_EMPTY_CATEGORIES_KEY = b"airflow_mlops.empty_categories"
# What the read restores so that a pandas value comes back exactly (see _exact_plan).
_EXACT_KEY = b"airflow_mlops.exact"
_OBJECT_HINT = (
    "give the column one type (e.g. df[col].astype(str)), or enable [mlops] allow_pickle to store the "
    "value as a pickle"
)
_TZ_HINT = "convert it to a zoneinfo timezone (tz_convert), or enable [mlops] allow_pickle"


def _row_group_size(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.nbytes // table.num_rows)
    return int(min(max(_TARGET_ROW_GROUP_BYTES // per_row, 1024), 1 << 20))


def _compression(settings: ArtifactSettings) -> str | None:
    codec = settings.parquet_compression.lower()
    return None if codec in ("none", "") else codec


def write_parquet(table: pa.Table, sink: BinaryIO, settings: ArtifactSettings) -> pq.FileMetaData:
    """Write ``table`` as Parquet; returns the file's metadata (its footer)."""
    import pyarrow.parquet as pq

    collected: list[pq.FileMetaData] = []
    pq.write_table(
        table,
        sink,
        compression=_compression(settings),
        row_group_size=_row_group_size(table),
        write_page_checksum=True,
        metadata_collector=collected,
    )
    return collected[0]


def footer_sidecar(metadata: pq.FileMetaData) -> dict[str, dict[str, bytes]]:
    """The footer as a small stand-alone Parquet metadata file, for :data:`SIDECARS`."""
    import io

    out = io.BytesIO()
    metadata.write_metadata_file(out)
    return {SIDECARS: {FOOTER_SIDECAR: out.getvalue()}}


def read_parquet(data: Any, columns: list[str] | None = None) -> pa.Table:
    """Read a whole Parquet file held in memory (or a seekable stream), verifying page checksums."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = data if not isinstance(data, (bytes, memoryview)) else pa.BufferReader(data)
    return pq.ParquetFile(source, page_checksum_verification=True).read(
        columns=columns, use_pandas_metadata=True
    )


class _ParquetSerializer(TableSerializer):
    format = "parquet"
    extension = ".parquet"
    media_type = "application/vnd.apache.parquet"
    # Summary statistics of a large table take a while; pyarrow encodes without holding the GIL.
    preview_from_value = True

    def to_arrow(self, value: Any) -> pa.Table:
        raise NotImplementedError

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        raise NotImplementedError

    def dtypes(self, value: Any, table: pa.Table) -> dict[str, str]:
        return {field.name: str(field.type) for field in table.schema}

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import pyarrow as pa

        try:
            table = self.to_arrow(value)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
            raise SerializerDeclined(f"Parquet cannot hold this {type(value).__name__}: {err}") from err
        try:
            metadata = write_parquet(table, sink, settings)
        except pa.ArrowNotImplementedError as err:  # e.g. a struct without fields (empty dicts)
            raise SerializerDeclined(f"Parquet cannot hold this {type(value).__name__}: {err}") from err
        dtypes = self.dtypes(value, table)
        return {
            "rows": table.num_rows,
            "columns": len(dtypes),
            "dtypes": dict(list(dtypes.items())[:_MAX_DTYPES_IN_SUMMARY]),
            "memory_bytes": int(table.nbytes),
            **footer_sidecar(metadata),
        }

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        return self.from_arrow(read_parquet(data), reference)

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        kind = value_type.rsplit(".", 1)[-1]
        return f"{kind} {details.get('rows', 0):,} rows x {details.get('columns', 0):,} columns (Parquet)"

    def library_versions(self, value: Any) -> dict[str, str]:
        import pyarrow as pa

        return {"pyarrow": pa.__version__}

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_mlops_provider.artifacts.previews import table_preview

        return table_preview(self.to_frame(value))

    def to_frame(self, value: Any) -> Any:
        """A pandas view of (the start of) the value, for previews."""
        return self.to_arrow(value).slice(0, 10_000).to_pandas()

    # -- partial reads ----------------------------------------------------------------------------

    def read_columns(self, stored: StoredObject, columns: Sequence[str]) -> Any:
        # pre_buffer coalesces the column chunks into few ranged requests on object stores.
        with _parquet(stored, pre_buffer=True) as parquet:
            available = parquet.schema_arrow.names
            missing = [c for c in columns if c not in available]
            if missing:
                reference = stored.reference
                raise ArtifactError(
                    f"Column(s) {missing} are not in {reference.uri} ({reference.summary}); "
                    f"available: {available[:50]}"
                )
            table = parquet.read(columns=list(columns), use_pandas_metadata=True)
        return self.from_arrow(table, stored.reference)

    def iter_batches(
        self, stored: StoredObject, batch_size: int, columns: Sequence[str] | None
    ) -> Iterator[pa.RecordBatch]:
        # Row group by row group: memory stays around one row group.
        with _parquet(stored, pre_buffer=False) as parquet:
            yield from parquet.iter_batches(
                batch_size=batch_size, columns=list(columns) if columns else None, use_threads=False
            )

    def read_preview(self, stored: StoredObject) -> dict[str, Any] | None:
        """Schema, row and row-group counts from the footer and the first rows (first row group only).

        No statistics: they would describe the rows read, not the table.
        """
        import pyarrow as pa

        from airflow_mlops_provider.artifacts.previews import MAX_COLUMNS, MAX_ROWS, table_preview

        with _parquet(stored, pre_buffer=False) as parquet:
            metadata, schema = parquet.metadata, parquet.schema_arrow
            shown = schema.names[:MAX_COLUMNS]
            head = schema.empty_table().select(shown)
            if metadata.num_row_groups:
                batches = parquet.iter_batches(
                    batch_size=MAX_ROWS, row_groups=[0], columns=shown, use_threads=False
                )
                first = next(iter(batches), None)
                if first is not None:
                    head = pa.Table.from_batches([first])
        preview = table_preview(head.to_pandas(), stats=False)
        preview.update(
            rows=metadata.num_rows,
            columns=len(schema.names),
            row_groups=metadata.num_row_groups,
            schema=[{"name": name, "dtype": str(schema.field(name).type)} for name in shown],
            truncated_columns=len(schema.names) > MAX_COLUMNS,
        )
        return preview


class ArrowTableSerializer(_ParquetSerializer):
    name = "arrow.table"
    types = ("pyarrow.lib.Table",)

    def to_arrow(self, value: Any) -> pa.Table:
        return value

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        return table


class PandasDataFrameSerializer(_ParquetSerializer):
    name = "pandas.dataframe"
    types = ("pandas.core.frame.DataFrame",)

    def to_arrow(self, value: Any) -> pa.Table:
        import pyarrow as pa

        if not value.columns.is_unique:
            raise ValueError("column names are not unique")
        if not all(isinstance(c, str) for c in value.columns):
            raise ValueError("column names are not all strings")
        plan = _exact_plan(value)
        # pyarrow converts columns in a thread pool it starts per call: not worth it for small frames.
        threads = None if value.size >= _THREADED_CELLS else 1
        table = pa.Table.from_pandas(value, preserve_index=None, nthreads=threads)
        if plan:
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), _EXACT_KEY: json.dumps(plan).encode()}
            )
        if len(value) == 0:
            # Parquet keeps categories in the data's dictionary pages: an empty frame has none.
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), _EMPTY_CATEGORIES_KEY: _categories_of(value)}
            )
        return table

    def to_frame(self, value: Any) -> Any:
        return value

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        metadata = table.schema.metadata or {}
        raw_categories = metadata.get(_EMPTY_CATEGORIES_KEY)
        # Free each Arrow column as soon as it is converted: peak memory stays near one copy.
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        if raw_categories:
            frame = _restore_categories(frame, raw_categories)
        return _restore_exact(frame, json.loads(metadata[_EXACT_KEY])) if _EXACT_KEY in metadata else frame

    def dtypes(self, value: Any, table: pa.Table) -> dict[str, str]:
        return {str(name): str(dtype) for name, dtype in value.dtypes.items()}

    def library_versions(self, value: Any) -> dict[str, str]:
        import pandas as pd

        return super().library_versions(value) | {"pandas": pd.__version__}


class PandasSeriesSerializer(PandasDataFrameSerializer):
    name = "pandas.series"
    types = ("pandas.core.series.Series",)

    def to_arrow(self, value: Any) -> pa.Table:
        from airflow_mlops_provider.artifacts import codec

        try:
            table = super().to_arrow(value.to_frame(name="value"))
        except SerializerDeclined as err:
            raise SerializerDeclined(str(err).replace("column 'value'", "the series' values", 1)) from err
        try:
            name = json.dumps(codec.encode(value.name)).encode()
        except codec.NotEncodable as err:
            raise SerializerDeclined(f"the series name {value.name!r} is not JSON-encodable") from err
        return table.replace_schema_metadata({**(table.schema.metadata or {}), _SERIES_NAME_KEY: name})

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        from airflow_mlops_provider.artifacts import codec

        metadata = table.schema.metadata or {}
        raw_name = metadata.get(_SERIES_NAME_KEY, b"null")
        frame = table.to_pandas()
        if _EXACT_KEY in metadata:
            frame = _restore_exact(frame, json.loads(metadata[_EXACT_KEY]))
        series = frame.iloc[:, 0]
        series.name = codec.decode(json.loads(raw_name), lambda ref: None)
        return series

    def dtypes(self, value: Any, table: pa.Table) -> dict[str, str]:
        return {str(value.name): str(value.dtype)}

    def to_frame(self, value: Any) -> Any:
        return value.to_frame(name=str(value.name) if value.name is not None else "value")


class PolarsDataFrameSerializer(_ParquetSerializer):
    name = "polars.dataframe"
    types = ("polars.dataframe.frame.DataFrame",)

    def to_arrow(self, value: Any) -> pa.Table:
        return value.to_arrow()

    def to_frame(self, value: Any) -> Any:
        return value.head(10_000).to_pandas()

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        import polars as pl

        return pl.from_arrow(table)

    def dtypes(self, value: Any, table: pa.Table) -> dict[str, str]:
        return {name: str(dtype) for name, dtype in value.schema.items()}

    def library_versions(self, value: Any) -> dict[str, str]:
        import polars as pl

        return super().library_versions(value) | {"polars": pl.__version__}


class ArrowStreamSerializer(_ParquetSerializer):
    """A ``pyarrow.RecordBatchReader``: written batch by batch, so a task can emit a table larger
    than its memory. It reads back as a ``pyarrow.Table`` (or stream it with an ``ArtifactRef``)."""

    name = "arrow.stream"
    types = ("pyarrow.lib.RecordBatchReader",)
    preview_from_value = False  # write() consumes the stream

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import pyarrow.parquet as pq

        rows = nbytes = 0
        with pq.ParquetWriter(
            sink, value.schema, compression=_compression(settings), write_page_checksum=True
        ) as writer:
            for batch in value:
                writer.write_batch(batch)
                rows += batch.num_rows
                nbytes += batch.nbytes
        dtypes = {field.name: str(field.type) for field in value.schema}
        return {
            "rows": rows,
            "columns": len(dtypes),
            "dtypes": dict(list(dtypes.items())[:_MAX_DTYPES_IN_SUMMARY]),
            "memory_bytes": nbytes,
            **footer_sidecar(writer.writer.metadata),
        }

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        return table

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        return f"Table {details.get('rows', 0):,} rows x {details.get('columns', 0):,} columns (Parquet)"

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        return None  # write() consumed the stream; read_preview() reads the stored table back


@contextlib.contextmanager
def _parquet(stored: StoredObject, *, pre_buffer: bool) -> Iterator[pq.ParquetFile]:
    """The Parquet file, its footer read from the sidecar copy when one matches its recorded hash.

    Without the copy the object's size is checked when it is opened; with it, size lookup and footer
    read are skipped and other bytes show up as a failed page checksum or structure, explained by
    ``stored.read_failed``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    footer = stored.sidecar(FOOTER_SIDECAR)
    metadata = None if footer is None else pq.read_metadata(pa.BufferReader(footer))
    try:
        with stored.open(trust_size=metadata is not None) as raw:
            yield pq.ParquetFile(
                raw, metadata=metadata, page_checksum_verification=True, pre_buffer=pre_buffer
            )
    except (OSError, pa.ArrowException) as err:
        raise stored.read_failed(err, "Parquet") from err


def _categories_of(frame: Any) -> bytes:
    from airflow_mlops_provider.artifacts import codec

    found = {}
    for name, dtype in frame.dtypes.items():
        if str(dtype) == "category":
            try:
                categories = codec.encode(dtype.categories.tolist())
            except codec.NotEncodable:
                continue
            found[name] = {
                "categories": categories,
                "dtype": str(dtype.categories.dtype),
                "ordered": bool(dtype.ordered),
            }
    return json.dumps(found).encode()


def _restore_categories(frame: Any, raw: bytes) -> Any:
    import pandas as pd

    from airflow_mlops_provider.artifacts import codec

    for name, spec in json.loads(raw).items():
        if name in frame.columns:
            categories = pd.Index(codec.decode(spec["categories"], lambda ref: None), dtype=spec["dtype"])
            frame[name] = frame[name].astype(pd.CategoricalDtype(categories, ordered=spec["ordered"]))
    return frame


# -- exactness: what Parquet (through Arrow) cannot give back by itself ------------------------------
#
# pyarrow's pandas metadata keeps dtypes, index and categories, but not everything: an object column
# comes back as ``str`` (or int64, float64, lists...), its missing values as NaN whatever marker the
# user had, a DatetimeIndex without its ``freq`` and some timezones as another tzinfo type. At write
# time each such thing is either recorded (under _EXACT_KEY) so that the read restores it, or the
# value is declined with the reason, so the manager falls back to the next serializer (cloudpickle
# where allowed): a value comes back exactly as it was, or it is not written as Parquet.


def _decline(what: str, why: str, todo: str = _OBJECT_HINT) -> SerializerDeclined:
    return SerializerDeclined(f"{what} {why}, so Parquet would not give it back exactly; {todo}")


def _label(name: Any, index: bool = False) -> str:
    return f"index level {name!r}" if index else f"column {name!r}"


def _null_marker(values: Any, mask: Any, what: str) -> str | None:
    """The one kind of missing value an object array holds (``None`` if it holds none)."""
    kinds = {type(v) for v in values[mask]}
    if not kinds:
        return None
    markers = {_NULL_MARKERS.get(kind.__name__) for kind in kinds}
    if None in markers or len(markers) > 1:
        names = ", ".join(sorted(kind.__name__ for kind in kinds))
        raise _decline(what, f"holds missing values of the types {names}")
    (marker,) = markers
    return marker


_NULL_MARKERS = {"NoneType": "none", "float": "nan", "NAType": "na", "NaTType": "nat"}


def _marker_value(marker: str) -> Any:
    import pandas as pd

    return {"none": None, "nan": float("nan"), "na": pd.NA, "nat": pd.NaT}[marker]


def _restore_objects(values: Any, marker: str | None) -> Any:
    """A column or index level read back from Arrow (a pandas Series or Index) as the object array
    it was written from."""
    import numpy as np

    mask = np.asarray(values.isna())  # vectorized on what Arrow read (str, numbers), unlike on objects
    out = values.to_numpy(dtype=object, copy=values.dtype == object)
    if marker is not None and mask.any():
        out[mask] = _marker_value(marker)
    return out


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are the same value of the same type (recursively, NaN equal to NaN)."""
    import datetime as dt
    import math

    from airflow_mlops_provider.artifacts import codec

    if type(a) is not type(b):
        return False
    if a is b:
        return True
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        return codec.same_datetime(a, b)
    if isinstance(a, dt.time):
        return a == b and a.fold == b.fold and codec.same_tz(a.tzinfo, b.tzinfo)
    try:
        return bool(a == b)
    except Exception:
        return False


def _tz_spec(tz: Any, what: str) -> dict[str, Any]:
    """How to rebuild ``tz`` exactly; declined when it cannot be."""
    from airflow_mlops_provider.artifacts import codec

    spec = codec.tz_spec(tz)
    if spec is None:
        raise _decline(what, f"has the timezone {tz!r} ({type(tz).__qualname__})", _TZ_HINT)
    return spec


def _exact_plan(frame: Any) -> dict[str, Any]:
    """What the read must restore to give ``frame`` back exactly; declines what it cannot."""
    import pandas as pd

    plan: dict[str, Any] = {}
    objects: dict[str, str | None] = {}
    zones: dict[str, dict[str, Any]] = {}
    for position, name in enumerate(frame.columns):
        series = frame.iloc[:, position]
        what = _label(name)
        if series.dtype == object:
            objects[name] = _check_objects(series.to_numpy(), what)
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            zones[name] = _tz_spec(series.dtype.tz, what)
    if objects:
        plan["objects"] = objects
    if zones:
        plan["tz"] = zones
    index = _index_plan(frame.index)
    if index:
        plan["index"] = index
    return plan


def _check_objects(values: Any, what: str) -> str | None:
    """The missing-value marker of an object array, after checking that Arrow gives it back exactly."""
    import pandas as pd
    import pyarrow as pa

    mask = pd.isna(values)
    marker = _null_marker(values, mask, what)
    present = values[~mask] if marker is not None else values
    kinds = set(map(type, present))
    if kinds <= {str}:
        return marker  # Arrow strings: known to read back as the same str values
    try:
        table = pa.Table.from_pandas(pd.DataFrame({"v": values}, dtype=object), preserve_index=False)
        back = _restore_objects(table.to_pandas()["v"], marker)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
        raise _decline(what, f"holds values Arrow cannot convert ({type(err).__name__}: {err})") from err
    if _has_empty_struct(table.schema.field(0).type):
        raise _decline(what, "holds empty dicts, which Parquet cannot store (a struct without fields)")
    for position, (old, new) in enumerate(zip(values, back, strict=True)):
        if not mask[position] and not _same(old, new):
            raise _decline(
                what,
                f"holds values of the types {', '.join(sorted(k.__qualname__ for k in kinds))}: its value "
                f"{_short(old)} at row {position} would read back as {_short(new)}",
            )
    return marker


def _has_empty_struct(arrow_type: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        fields = [arrow_type.field(i).type for i in range(arrow_type.num_fields)]
        return not fields or any(_has_empty_struct(f) for f in fields)
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    ):
        return _has_empty_struct(arrow_type.value_type)
    if pa.types.is_map(arrow_type):
        return _has_empty_struct(arrow_type.key_type) or _has_empty_struct(arrow_type.item_type)
    return False


def _short(value: Any) -> str:
    text = f"{value!r} ({type(value).__qualname__})"
    return text if len(text) <= 120 else text[:117] + "..."


def _index_plan(index: Any) -> dict[str, Any]:
    import pandas as pd

    plan: dict[str, Any] = {}
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    objects: dict[str, str | None] = {}
    zones: dict[str, dict[str, Any]] = {}
    for position, level in enumerate(levels):
        what = _label(level.name if level.name is not None else position, index=True)
        if level.dtype == object:
            objects[str(position)] = _check_objects(level.to_numpy(), what)
        elif isinstance(level.dtype, pd.DatetimeTZDtype):
            zones[str(position)] = _tz_spec(level.dtype.tz, what)
    if objects:
        plan["objects"] = objects
    if zones:
        plan["tz"] = zones
    freq = getattr(index, "freq", None)
    if freq is not None and not isinstance(index, pd.PeriodIndex):
        plan["freq"] = freq.freqstr
        try:
            pd.tseries.frequencies.to_offset(plan["freq"])
        except ValueError as err:
            raise _decline("the index", f"has the frequency {freq!r}", "enable [mlops] allow_pickle") from err
    return plan


def _restore_exact(frame: Any, plan: dict[str, Any]) -> Any:
    """Undo what Arrow changed (see :func:`_exact_plan`) in a frame read back."""
    import pandas as pd

    from airflow_mlops_provider.artifacts import codec

    restored = {}
    for name, marker in (plan.get("objects") or {}).items():
        if name in frame.columns:
            restored[name] = _restore_objects(frame[name], marker)
    for name, spec in (plan.get("tz") or {}).items():
        if name in frame.columns and isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            tz = codec.tz_from_spec(spec)
            if not codec.same_tz(frame[name].dtype.tz, tz):
                frame[name] = frame[name].dt.tz_convert(tz)
    for name, values in restored.items():
        frame[name] = pd.Series(values, index=frame.index, dtype=object, name=frame[name].name)
    index_plan = plan.get("index")
    if index_plan:
        frame.index = _restore_index(frame.index, index_plan)
    return frame


def _restore_index(index: Any, plan: dict[str, Any]) -> Any:
    import pandas as pd

    from airflow_mlops_provider.artifacts import codec

    objects, zones = plan.get("objects") or {}, plan.get("tz") or {}
    if objects or zones:
        levels = []
        for position in range(index.nlevels):
            level = index.get_level_values(position)
            key = str(position)
            if key in objects:
                level = pd.Index(_restore_objects(level, objects[key]), dtype=object, name=level.name)
            elif key in zones and isinstance(level.dtype, pd.DatetimeTZDtype):
                tz = codec.tz_from_spec(zones[key])
                if not codec.same_tz(level.dtype.tz, tz):
                    level = level.tz_convert(tz)
            levels.append(level)
        single = index.nlevels == 1
        index = levels[0] if single else pd.MultiIndex.from_arrays(levels, names=index.names)
    freq = plan.get("freq")
    if freq is not None and isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        index = type(index)(index, freq=freq, name=index.name)
    return index
