"""Bounded previews of values, computed at write time (see ``Serializer.preview``).

Every preview is plain JSON with a ``kind`` and stays small: tables show at most ``MAX_ROWS`` rows
and ``MAX_COLUMNS`` columns with cells cut at ``MAX_CELL`` characters, texts are truncated, images
become thumbnails. Nothing here is HTML: whoever renders a preview must escape it.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
import json
import math
from typing import Any

MAX_ROWS = 50
MAX_COLUMNS = 100
MAX_CELL = 200
MAX_TEXT = 20_000
MAX_PREVIEW_BYTES = 300_000
THUMBNAIL_PIXELS = 256
TOP_VALUES = 5
HISTOGRAM_BINS = 10
#: Above this many rows, the histogram of a numeric column and the top values (and distinct count)
#: of a text, object or categorical column are counted on a stratified sample of this many rows
#: (recorded as ``sampled_rows``): counting a million distinct strings costs more than writing them.
#: Every other statistic (nulls, min, max, mean, std, the histogram's range) covers all rows.
SAMPLE_ROWS = 100_000
# Values per block of the variance's deviations (512 KiB: they stay in the core's cache).
_VARIANCE_BLOCK = 1 << 16
_SAMPLE_SEED = 20_261_130


def _cell(value: Any) -> Any:
    kind = type(value)
    if kind is str:  # the common cases first: a preview has hundreds of cells
        return value if len(value) <= MAX_CELL else value[: MAX_CELL - 1] + "…"
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            return _cell(item())
        except (TypeError, ValueError):
            pass
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _histogram(finite: Any, low: float, high: float) -> dict[str, list[Any]]:
    """``HISTOGRAM_BINS`` equal-width bins between the finite minimum and maximum (``low``, ``high``)
    of the column: ``edges`` (one more than ``counts``); each bin holds ``edges[i] <= x <
    edges[i + 1]``, the last one its upper edge too: ``numpy.histogram``'s bins, counted as the
    values below each inner edge (vectorized comparisons: a fifth of a binary search's time, and no
    float estimate to correct). A constant column gets one bin."""
    import numpy as np

    if not (math.isfinite(high - low)):  # the range overflows float64: no histogram
        return {}
    if low == high:
        # One bin of width 1 (as numpy's), or of the value's own spacing where 1 is below it.
        upper = low + max(1.0, float(np.spacing(low)))
        return {"histogram": {"edges": [_number(low), _number(upper)], "counts": [int(finite.size)]}}
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)  # its first and last are low and high exactly
    below = [0, *(int(np.count_nonzero(finite < edge)) for edge in edges[1:-1]), int(finite.size)]
    counts = [above - under for under, above in itertools.pairwise(below)]
    return {"histogram": {"edges": [_number(e) for e in edges], "counts": counts}}


@functools.lru_cache(maxsize=4)
def _sample_positions(length: int, size: int) -> Any:
    """``size`` increasing positions in ``length`` rows, one drawn at random in each of ``size``
    equal strata. Evenly spaced rows alias with periodic data (every 12th row of hourly readings is
    the same two hours of the day; an alternating column reads 60/40); a draw per stratum does not,
    and still covers the whole table. Seeded: the same table always gets the same preview. Kept per
    length: a frame's columns share them."""
    import numpy as np

    bounds = np.arange(size + 1, dtype=np.int64) * length // size  # strata of 1 row or more
    widths = np.diff(bounds)
    positions = bounds[:-1] + (np.random.default_rng(_SAMPLE_SEED).random(size) * widths).astype(np.int64)
    positions.flags.writeable = False
    return positions


def _sample(values: Any) -> Any:
    """:data:`SAMPLE_ROWS` rows of a numpy array, pandas Series or Arrow array, in order, one from
    each of as many equal strata."""
    positions = _sample_positions(len(values), SAMPLE_ROWS)
    return values.iloc[positions] if hasattr(values, "iloc") else values.take(positions)


def _first_largest(counts: Any, k: int) -> list[int]:
    """Positions of the ``k`` largest counts, largest first; ties keep their position order."""
    import numpy as np

    if len(counts) <= k:
        return sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    kth = np.partition(counts, len(counts) - k)[len(counts) - k]
    above = np.flatnonzero(counts > kth)
    tied = np.flatnonzero(counts == kth)[: k - len(above)]
    return sorted(map(int, [*above, *tied]), key=lambda i: (-counts[i], i))


def _arrow_top_values(arrow: Any) -> dict[str, Any]:
    """:func:`_top_values` of an Arrow string array (pandas 3's ``str``, ``string[pyarrow]``),
    counted by pyarrow, which releases the GIL while the table encodes."""
    import pyarrow.compute as pc

    counted = pc.value_counts(arrow)  # in order of first appearance
    if arrow.null_count:
        counted = counted.filter(counted.field("values").is_valid())
    values, counts = counted.field("values"), counted.field("counts").to_numpy()
    top = [[_cell(values[i].as_py()), int(counts[i])] for i in _first_largest(counts, TOP_VALUES)]
    return {"distinct": len(counts), "top": top}


def _top_values(series: Any) -> dict[str, Any]:
    """The most frequent values of a text or object column, and its distinct count.

    Ties keep the order in which values first appear; object columns whose values pandas cannot
    count get no top values.
    """
    try:
        counted = series.value_counts(dropna=True, sort=False)  # in order of first appearance
    except TypeError:
        return {}
    counts = counted.to_numpy()
    labels = counted.index
    top = [[_cell(labels[i]), int(counts[i])] for i in _first_largest(counts, TOP_VALUES)]
    return {"distinct": len(counts), "top": top}


def table_preview(frame: Any, *, stats: bool = True) -> dict[str, Any]:
    """Schema, row count, per-column summary statistics and the first rows of a pandas DataFrame.

    Statistics: nulls for every column; min/max/mean/std and a ``HISTOGRAM_BINS``-bin histogram for
    numbers; the ``TOP_VALUES`` most frequent values with their counts for categorical, bool, text
    and object columns (text and object columns also get their ``distinct`` count). In tables of
    more than :data:`SAMPLE_ROWS` rows, histogram counts, and the top values and distinct counts of
    all but bool columns, come from a sample of that many rows. ``stats=False`` leaves them out,
    for a frame that holds only part of the table.
    """
    columns = list(frame.columns[:MAX_COLUMNS])
    summaries: dict[str, dict[str, Any]] = {}
    cells: list[list[Any]] = []  # the first rows, column by column
    # One pass of ``items()``, and ``tolist()``: positional ``iloc`` per column and per-value
    # iteration cost more than the statistics of a small frame.
    for name, series in itertools.islice(frame.items(), MAX_COLUMNS):
        if stats:
            summaries[str(name)] = _column_stats(series)
        cells.append([_cell(v) for v in _first_values(series)])
    index = frame.index[:MAX_ROWS]
    index_names = [str(n) if n is not None else "" for n in index.names]
    rows = [
        [_cell(i) for i in (idx if isinstance(idx, tuple) else (idx,))] + [column[r] for column in cells]
        for r, idx in enumerate(index)
    ]
    preview = {
        "kind": "table",
        "rows": len(frame),
        "columns": len(frame.columns),
        "index": index_names,
        "schema": [{"name": str(n), "dtype": str(t)} for n, t in zip(columns, frame.dtypes, strict=False)],
        "stats": summaries,
        "head": rows,
        "truncated_columns": len(frame.columns) > MAX_COLUMNS,
    }
    return preview


def _first_values(series: Any) -> list[Any]:
    """The first :data:`MAX_ROWS` values of a column as ``Series.tolist()`` gives them (Python
    scalars), sliced from its array: a Series per column cost more than the values of a small one."""
    import numpy as np

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcO":
        # A view, whose ``tolist()`` gives Python scalars (the pandas array's gives numpy ones).
        return series.to_numpy()[:MAX_ROWS].tolist()
    return series.array[:MAX_ROWS].tolist()  # datetimes as Timestamps, extension types as pandas has them


def encode(preview: dict[str, Any]) -> bytes:
    """A preview as stored: JSON of at most :data:`MAX_PREVIEW_BYTES`, halving a table's first rows
    until it fits. Encoded by msgspec (Airflow's own dependency), a tenth of ``json``'s time on a
    table preview; values JSON cannot hold become their ``str``, NaN and infinities ``null``."""
    import msgspec

    encoder = msgspec.json.Encoder(enc_hook=str)
    data = encoder.encode(preview)
    while len(data) > MAX_PREVIEW_BYTES and preview.get("head"):
        preview = {**preview, "head": preview["head"][: len(preview["head"]) // 2]}
        data = encoder.encode(preview)
    return data


def _column_stats(series: Any) -> dict[str, Any]:
    """The statistics of one column (see :func:`table_preview`)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")  # numpy's code; pandas' extension dtypes have one too
    if kind in "iuf" and not isinstance(dtype, pd.CategoricalDtype):
        if isinstance(dtype, np.dtype):  # no missing-value conversion to ask for: a view or a cast
            values = series.to_numpy().astype("float64", copy=False)
        else:
            values = series.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: stats become None
            total = float(np.add.reduce(values))
            if math.isfinite(total):  # no NaN, no infinity: one pass instead of a mask and a copy
                finite, nulls = values, 0
            else:
                mask = np.isfinite(values)
                finite, nulls = (values, 0) if mask.all() else (values[mask], int(np.isnan(values).sum()))
                total = float(np.add.reduce(finite))
        entry: dict[str, Any] = {"dtype": str(dtype), "nulls": nulls}
        if finite.size:
            low, high = float(np.minimum.reduce(finite)), float(np.maximum.reduce(finite))
            entry.update(min=_number(low), max=_number(high), **_mean_and_std(finite, total))
            if finite.size > SAMPLE_ROWS:  # the bins span all rows, the counts a sample
                finite = _sample(finite)
                entry["sampled_rows"] = SAMPLE_ROWS
            entry.update(_histogram(finite, low, high))
        return entry
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        arrow = series.array.__arrow_array__()
        entry = {"dtype": str(dtype), "nulls": arrow.null_count}
        if len(arrow) > SAMPLE_ROWS:
            arrow = _sample(arrow)
            entry["sampled_rows"] = SAMPLE_ROWS
        return {**entry, **_arrow_top_values(arrow)}
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()  # -1 for a null
        entry = {"dtype": str(dtype), "nulls": int(np.count_nonzero(codes < 0))}
        if codes.size > SAMPLE_ROWS:
            codes = _sample(codes)
            entry["sampled_rows"] = SAMPLE_ROWS
        counts = np.bincount(codes[codes >= 0], minlength=len(dtype.categories))
        labels = dtype.categories
        entry["top"] = [[_cell(labels[i]), int(counts[i])] for i in _first_largest(counts, TOP_VALUES)]
        return entry
    entry = {"dtype": str(dtype), "nulls": int(series.isna().sum())}
    if kind == "b":
        counts = series.value_counts(dropna=True).head(TOP_VALUES)
        entry["top"] = [[_cell(k), int(v)] for k, v in counts.items()]
    elif isinstance(dtype, pd.StringDtype) or kind == "O":
        if len(series) > SAMPLE_ROWS:
            series = _sample(series)
            entry["sampled_rows"] = SAMPLE_ROWS
        entry.update(_top_values(series))
    return entry


def _mean_and_std(finite: Any, total: float) -> dict[str, float | None]:
    """The mean and standard deviation of finite float64 values whose sum is ``total`` (summed
    once). The variance is numpy's two passes (the squared deviations summed pairwise), done in
    blocks of :data:`_VARIANCE_BLOCK` values through one small buffer: the same bits as
    ``numpy.std()`` up to one block, and within rounding beyond, without the deviations' full copy
    whose page faults made numpy's own 5 times slower on large columns."""
    import numpy as np

    size = finite.size
    mean = total / size
    if not math.isfinite(mean):  # the sum overflowed
        return {"mean": None, "std": None}
    buffer = np.empty(min(size, _VARIANCE_BLOCK))
    squares = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, size, _VARIANCE_BLOCK):
            block = finite[start : start + _VARIANCE_BLOCK]
            deviations = np.subtract(block, mean, out=buffer[: block.size])
            squares += float(np.add.reduce(np.multiply(deviations, deviations, out=deviations)))
    return {"mean": _number(mean), "std": _number(math.sqrt(squares / size))}  # overflowed: None


def array_preview(array: Any) -> dict[str, Any]:
    import numpy as np

    preview: dict[str, Any] = {"kind": "array", "shape": list(array.shape), "dtype": str(array.dtype)}
    flat = array.reshape(-1)
    preview["sample"] = [_cell(v) for v in flat[:20].tolist()]
    if array.dtype.kind in "biuf" and flat.size:
        values = flat.astype("float64")
        finite = values[np.isfinite(values)]
        if finite.size:
            with np.errstate(over="ignore", invalid="ignore"):
                preview["stats"] = {
                    "min": _number(finite.min()),
                    "max": _number(finite.max()),
                    "mean": _number(finite.mean()),
                    "std": _number(finite.std()),
                }
    return preview


def text_preview(encoded_json: Any) -> dict[str, Any]:
    text = json.dumps(encoded_json, indent=2, ensure_ascii=False, allow_nan=False)
    return {"kind": "json", "text": text[:MAX_TEXT], "truncated": len(text) > MAX_TEXT, "chars": len(text)}


def image_preview(image: Any) -> dict[str, Any]:
    thumbnail = image.copy()
    thumbnail.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    if thumbnail.mode not in ("RGB", "RGBA", "L", "LA"):
        thumbnail = thumbnail.convert("RGBA")
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="PNG")
    return {
        "kind": "image",
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
        "thumbnail_png_base64": base64.b64encode(buffer.getvalue()).decode(),
    }


def bytes_preview(data: bytes) -> dict[str, Any]:
    return {"kind": "bytes", "size": len(data), "head_hex": bytes(data[:64]).hex()}


def object_preview(details: dict[str, Any]) -> dict[str, Any]:
    """Pickled objects are shown by what was recorded when they were written, never unpickled."""
    return {"kind": "object", **{k: details[k] for k in ("class", "repr", "params") if k in details}}


def _null_rate(entry: dict[str, Any], rows: int) -> float | None:
    return round(entry["nulls"] / rows, 6) if rows and "nulls" in entry else None


def compare_tables(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed between two table previews (of one artifact in two runs), from their recorded
    statistics alone: rows, added / removed / retyped columns, and per column the null rate, mean,
    distinct count and top values when they differ. Both previews are ``table_preview`` results."""
    schema_a = {c["name"]: c["dtype"] for c in before.get("schema", [])}
    schema_b = {c["name"]: c["dtype"] for c in after.get("schema", [])}
    rows_a, rows_b = before.get("rows"), after.get("rows")
    stats_a, stats_b = before.get("stats") or {}, after.get("stats") or {}
    columns: dict[str, dict[str, Any]] = {}
    for name in (n for n in schema_b if n in schema_a):
        a, b = stats_a.get(name, {}), stats_b.get(name, {})
        changes: dict[str, Any] = {}
        pairs = {
            "null_rate": (_null_rate(a, rows_a or 0), _null_rate(b, rows_b or 0)),
            "mean": (a.get("mean"), b.get("mean")),
            "distinct": (a.get("distinct"), b.get("distinct")),
        }
        for stat, (x, y) in pairs.items():
            if x != y and (x is not None or y is not None):
                changes[stat] = {"before": x, "after": y}
                if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                    changes[stat]["delta"] = _number(y - x)
        top_a = [v for v, _ in a.get("top", [])]
        top_b = [v for v, _ in b.get("top", [])]
        if top_a != top_b:
            changes["top"] = {
                "before": top_a,
                "after": top_b,
                "new": [v for v in top_b if v not in top_a],
                "gone": [v for v in top_a if v not in top_b],
            }
        if changes:
            columns[name] = changes
    delta = None if rows_a is None or rows_b is None else rows_b - rows_a
    return {
        "rows": {"before": rows_a, "after": rows_b, "delta": delta},
        "added": [{"name": n, "dtype": t} for n, t in schema_b.items() if n not in schema_a],
        "removed": [{"name": n, "dtype": t} for n, t in schema_a.items() if n not in schema_b],
        "retyped": [
            {"name": n, "before": schema_a[n], "after": t}
            for n, t in schema_b.items()
            if n in schema_a and schema_a[n] != t
        ],
        "columns": columns,
    }
