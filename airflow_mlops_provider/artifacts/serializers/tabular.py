"""Tables (pandas, polars, pyarrow), stored as Arrow IPC or Parquet (``[mlops] table_format``).

Each serializer converts its values to an Arrow table and back; the bytes are the business of a
:class:`~airflow_mlops_provider.artifacts.serializers.table_formats.TableFormat`. pyarrow keeps the
pandas metadata (index, categoricals, tz-aware timestamps, nullable ints), and what it cannot give
back by itself is recorded and restored here (see :func:`_exact_plan`), so a DataFrame comes back
exactly as it was, in either format.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import (
    Format,
    SerializerDeclined,
    TableSerializer,
    table_formats,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa

    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference
    from airflow_mlops_provider.artifacts.serializers import StoredObject

_MAX_DTYPES_IN_SUMMARY = 100
_THREADED_CELLS = 1_000_000  # from this many cells pyarrow converts a DataFrame with threads
# From this size a one-chunk table read back is copied by consolidation, below by views and a deep
# copy (see arrow_to_pandas; the two cost about the same at 25-30 MB).
_CONSOLIDATE_FROM = 16 << 20
_SERIES_NAME_KEY = b"airflow_mlops.series_name"
_EMPTY_CATEGORIES_KEY = b"airflow_mlops.empty_categories"
# What the read restores so that a pandas value comes back exactly (see _exact_plan).
_EXACT_KEY = b"airflow_mlops.exact"
_OBJECT_HINT = (
    "give the column one type (e.g. df[col].astype(str)), or enable [mlops] allow_pickle to store the "
    "value as a pickle"
)
_TZ_HINT = "convert it to a zoneinfo timezone (tz_convert), or enable [mlops] allow_pickle"


class _ArrowTableFamily(TableSerializer):
    """A serializer of values that convert to an Arrow table (``to_arrow`` / ``from_arrow``)."""

    # The class defaults; each artifact records the format it was written in (format_for).
    format = table_formats.ARROW.name
    extension = table_formats.ARROW.extension
    media_type = table_formats.ARROW.media_type
    # Summary statistics of a large table take a while; pyarrow encodes without holding the GIL.
    preview_from_value = True

    def to_arrow(self, value: Any) -> pa.Table:
        raise NotImplementedError

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        raise NotImplementedError

    def dtypes(self, value: Any, table: pa.Table) -> dict[str, str]:
        return {field.name: str(field.type) for field in table.schema}

    def format_for(self, value: Any, settings: ArtifactSettings) -> Format:
        return table_formats.chosen(settings).format

    def preview_aside(self, value: Any) -> bool:
        # A small table's statistics take less than handing them to a thread (and hold the GIL).
        return self.preview_from_value and math.prod(getattr(value, "shape", None) or (0,)) >= _THREADED_CELLS

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import pyarrow as pa

        file_format = table_formats.chosen(settings)
        try:
            table = self.to_arrow(value)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
            raise SerializerDeclined(
                f"{file_format.label} cannot hold this {type(value).__name__}: {err}"
            ) from err
        extra = file_format.write(table, sink, settings)
        dtypes = self.dtypes(value, table)
        return {
            "rows": table.num_rows,
            "columns": len(dtypes),
            "dtypes": dict(list(dtypes.items())[:_MAX_DTYPES_IN_SUMMARY]),
            "memory_bytes": int(table.nbytes),
            **extra,
        }

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        return self.from_arrow(table_formats.of(reference).read(data), reference)

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        kind = value_type.rsplit(".", 1)[-1]
        return f"{kind} {details.get('rows', 0):,} rows x {details.get('columns', 0):,} columns"

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
        file_format = table_formats.of(stored.reference)
        with file_format.open(stored, pre_buffer=True) as reader:
            names = table_formats.checked_columns(file_format.schema(reader), columns, stored.reference)
            table = file_format.read_columns(reader, names)
        return self.from_arrow(table, stored.reference)

    def iter_batches(
        self, stored: StoredObject, batch_size: int, columns: Sequence[str] | None
    ) -> Iterator[pa.RecordBatch]:
        file_format = table_formats.of(stored.reference)
        with file_format.open(stored, pre_buffer=False) as reader:
            yield from file_format.iter_batches(reader, batch_size, list(columns) if columns else None)

    def read_preview(self, stored: StoredObject) -> dict[str, Any] | None:
        """Schema and row count, and the first rows (read from the first part of the table only).

        No statistics: they would describe the rows read, not the table.
        """
        from airflow_mlops_provider.artifacts.previews import MAX_COLUMNS, MAX_ROWS, table_preview

        file_format = table_formats.of(stored.reference)
        with file_format.open(stored, pre_buffer=False) as reader:
            schema = file_format.schema(reader)
            shown = schema.names[:MAX_COLUMNS]
            head, parts = file_format.head(reader, shown, MAX_ROWS)
            rows = stored.reference.details.get("rows")
        preview = table_preview(head.to_pandas(), stats=False)
        preview.update(
            rows=rows,
            columns=len(schema.names),
            **parts,
            schema=[{"name": name, "dtype": str(schema.field(name).type)} for name in shown],
            truncated_columns=len(schema.names) > MAX_COLUMNS,
        )
        return preview


class ArrowTableSerializer(_ArrowTableFamily):
    name = "arrow.table"
    types = ("pyarrow.lib.Table",)

    def to_arrow(self, value: Any) -> pa.Table:
        return value

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        return table


class PandasDataFrameSerializer(_ArrowTableFamily):
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
            # A file keeps a column's categories with its values: an empty frame has none.
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), _EMPTY_CATEGORIES_KEY: _categories_of(value)}
            )
        return table

    def to_frame(self, value: Any) -> Any:
        return value

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        metadata = table.schema.metadata or {}
        raw_categories = metadata.get(_EMPTY_CATEGORIES_KEY)
        frame = arrow_to_pandas(table)
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
        frame = arrow_to_pandas(table)
        del table
        if _EXACT_KEY in metadata:
            frame = _restore_exact(frame, json.loads(metadata[_EXACT_KEY]))
        series = frame.iloc[:, 0]
        series.name = codec.decode(json.loads(raw_name), lambda ref: None)
        return series

    def dtypes(self, value: Any, table: pa.Table) -> dict[str, str]:
        return {str(value.name): str(value.dtype)}

    def to_frame(self, value: Any) -> Any:
        return value.to_frame(name=str(value.name) if value.name is not None else "value")


class PolarsDataFrameSerializer(_ArrowTableFamily):
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


class ArrowStreamSerializer(_ArrowTableFamily):
    """A ``pyarrow.RecordBatchReader``: written batch by batch, so a task can emit a table larger
    than its memory. It reads back as a ``pyarrow.Table`` (or stream it with an ``ArtifactRef``)."""

    name = "arrow.stream"
    types = ("pyarrow.lib.RecordBatchReader",)
    preview_from_value = False  # write() consumes the stream

    def format_for(self, value: Any, settings: ArtifactSettings) -> Format:
        return self._format(value, settings).format

    @staticmethod
    def _format(value: Any, settings: ArtifactSettings) -> table_formats.TableFormat:
        """Arrow IPC unless a dictionary sits inside a nested column: its dictionaries cannot be
        grown batch by batch (:class:`~.table_formats._GrowingDictionaries` handles top-level ones)."""
        chosen = table_formats.chosen(settings)
        if chosen is table_formats.ARROW and any(_nested_dictionary(f.type) for f in value.schema):
            return table_formats.PARQUET
        return chosen

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        rows, nbytes, extra = self._format(value, settings).write_stream(value, sink, settings)
        dtypes = {field.name: str(field.type) for field in value.schema}
        return {
            "rows": rows,
            "columns": len(dtypes),
            "dtypes": dict(list(dtypes.items())[:_MAX_DTYPES_IN_SUMMARY]),
            "memory_bytes": nbytes,
            **extra,
        }

    def from_arrow(self, table: pa.Table, reference: Reference) -> Any:
        return table

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        return f"Table {details.get('rows', 0):,} rows x {details.get('columns', 0):,} columns"

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        return None  # write() consumed the stream; read_preview() reads the stored table back


def arrow_to_pandas(data: pa.Table | pa.RecordBatch) -> Any:
    """A pandas DataFrame of Arrow data that can be changed in place, as the frame written could.

    pyarrow turns a column of one chunk (a table of one record batch or row group, a batch) into a
    read-only view of Arrow memory when it is numeric, datetime or categorical (with
    ``split_blocks``; without, categorical codes only), and pandas refuses to assign into it
    ("assignment destination is read-only"): a frame read back must not break
    ``df.loc[mask, col] = value`` in the task that reads it. So such data is copied once:

    * below :data:`_CONSOLIDATE_FROM` bytes, views and then a deep copy, cheapest for small frames;
    * from there, pyarrow's consolidation, which copies the columns into the frame's own blocks in
      one pass (the deep copy of views consolidates them too: two copies, 40 against 16 ms for
      1M x 10 floats); categorical codes are then copied alone.

    Columns of several chunks are concatenated into new arrays, which are the frame's own already:
    they are converted column by column, each Arrow column freed as soon as it is converted.
    """
    import pandas as pd
    import pyarrow as pa

    if not isinstance(data, pa.RecordBatch) and all(column.num_chunks != 1 for column in data.columns):
        return data.to_pandas(split_blocks=True, self_destruct=True)
    if data.nbytes < _CONSOLIDATE_FROM:
        return data.to_pandas(split_blocks=True, self_destruct=True).copy(deep=True)
    frame = data.to_pandas()
    for position, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            frame.isetitem(position, frame.iloc[:, position].copy())
    return frame


def _nested_dictionary(arrow_type: Any) -> bool:
    """A dictionary type inside a nested type (list, struct, map)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return False  # top level: handled
    return any(
        pa.types.is_dictionary(arrow_type.field(i).type) or _nested_dictionary(arrow_type.field(i).type)
        for i in range(getattr(arrow_type, "num_fields", 0))
    )


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


# -- exactness: what Arrow (so Parquet and Arrow IPC) cannot give back by itself ---------------------
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
    for position, (name, dtype) in enumerate(zip(frame.columns, frame.dtypes, strict=True)):
        if pd.api.types.is_object_dtype(dtype):  # only these need the column (selecting one: ~20 us)
            objects[name] = _check_objects(frame.iloc[:, position].to_numpy(), _label(name))
        elif isinstance(dtype, pd.DatetimeTZDtype):
            zones[name] = _tz_spec(dtype.tz, _label(name))
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
