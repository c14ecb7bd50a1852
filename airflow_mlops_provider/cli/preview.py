"""Text rendering of artifact previews for ``airflow mlops artifacts show``.

The preview is the one the ML view shows: written beside the artifact by its serializer (see
``Serializer.preview``), or read back by the serializer when none was stored
(``ArtifactManager.preview``). This module only lays out its ``kind``: the built-in kinds of
:mod:`airflow_mlops_provider.artifacts.previews` get their own layout, any other kind (a user
serializer's) is printed field by field. Nothing here reads the store or knows a format.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.cli._common import render_table

if TYPE_CHECKING:
    from collections.abc import Callable

TABLE_ROWS = 20
JSON_LINES = 60
_CELL = 40
_FIELD = 200


def _printable(text: str) -> str:
    """``text`` with control characters replaced: a preview is data, never terminal escapes."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _text(value: Any, limit: int) -> str:
    """One printable line, cut at ``limit`` characters."""
    text = _printable(" ".join(str(value).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> str:
    return _text(_number(value), _CELL)


def _column_summary(stats: dict[str, Any]) -> str:
    facts = [f"{k} {_number(stats[k])}" for k in ("min", "max", "mean", "std") if stats.get(k) is not None]
    if "distinct" in stats:
        sample = f" in a sample of {stats['sampled_rows']:,} rows" if stats.get("sampled_rows") else ""
        facts.append(f"{stats['distinct']:,} distinct{sample}")
    if stats.get("top"):
        facts.append("top " + ", ".join(f"{_cell(v)} ({n:,})" for v, n in stats["top"]))
    return "; ".join(facts)


def _table(preview: dict[str, Any]) -> list[str]:
    shape = f"{preview.get('rows', 0):,} rows x {preview.get('columns', 0):,} columns"
    if "row_groups" in preview:
        shape += f", {preview['row_groups']} row group(s)"
    elif "batches" in preview:
        shape += f", {preview['batches']} record batch(es)"
    schema = preview.get("schema") or []
    stats = preview.get("stats") or {}
    headers = ["NAME", "DTYPE", *(["NULLS", "SUMMARY"] if stats else [])]
    rows = []
    for field in schema:
        row = [_cell(field["name"]), _cell(field["dtype"])]
        if stats:
            column = stats.get(field["name"]) or {}
            row += [column.get("nulls"), _column_summary(column)]
        rows.append(row)
    lines = [f"Preview (table): {shape}", "  columns:"]
    lines += ["    " + line for line in render_table(headers, rows, max_width=120).splitlines()]
    if preview.get("columns", 0) > len(schema):
        lines.append(f"    ... {preview['columns'] - len(schema)} more columns")
    head = (preview.get("head") or [])[:TABLE_ROWS]
    if head:
        index = preview.get("index") or []
        lines.append(f"  first {len(head)} of {preview.get('rows', len(head)):,} rows:")
        headers = [_cell(name) for name in [*index, *(f["name"] for f in schema)]]
        table = render_table(headers, [[_cell(v) for v in row] for row in head])
        lines += ["    " + line for line in table.splitlines()]
    return lines


def _array(preview: dict[str, Any]) -> list[str]:
    shape = " x ".join(str(n) for n in preview.get("shape") or []) or "scalar"
    lines = [f"Preview (array): shape {shape}, dtype {preview.get('dtype')}"]
    if preview.get("sample") is not None:
        lines.append(f"  first values: {_text(preview['sample'], _FIELD)}")
    if preview.get("stats"):
        lines.append("  " + _column_summary(preview["stats"]))
    return lines


def _json(preview: dict[str, Any]) -> list[str]:
    text = str(preview.get("text", ""))
    shown = text.splitlines()[:JSON_LINES]
    truncated = bool(preview.get("truncated")) or len(text.splitlines()) > JSON_LINES
    lines = ["Preview (JSON" + (", truncated):" if truncated else "):")]
    lines += ["  " + _printable(line) for line in shown]
    if truncated:
        lines.append("  ...")
    return lines


def _image(preview: dict[str, Any]) -> list[str]:
    size = f"{preview.get('width')} x {preview.get('height')}"
    return [f"Preview (image): {size} pixels, mode {preview.get('mode')} (thumbnail in the ML view)"]


def _bytes(preview: dict[str, Any]) -> list[str]:
    head = str(preview.get("head_hex", ""))
    return [
        f"Preview (bytes): {preview.get('size', 0):,} bytes",
        f"  first bytes: {' '.join(head[i : i + 2] for i in range(0, len(head), 2))}",
    ]


def _object(preview: dict[str, Any]) -> list[str]:
    lines = ["Preview (object; recorded when it was written, never unpickled):"]
    lines.append(f"  class:  {_text(preview.get('class'), _FIELD)}")
    lines.append(f"  repr:   {_text(preview.get('repr'), _FIELD)}")
    params = preview.get("params")
    if isinstance(params, dict) and params:
        lines.append("  params: " + _text(", ".join(f"{k}={v}" for k, v in params.items()), 2000))
    return lines


_LAYOUTS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "table": _table,
    "array": _array,
    "json": _json,
    "image": _image,
    "bytes": _bytes,
    "object": _object,
}


def render_preview(preview: dict[str, Any] | None, serializer: str) -> list[str]:
    """Human-readable lines for an artifact's preview (``None``: its serializer wrote none)."""
    if preview is None:
        return [f"Preview: none (the serializer {serializer!r} stores no preview for this artifact)"]
    kind = str(preview.get("kind", ""))
    layout = _LAYOUTS.get(kind)
    if layout is not None:
        try:
            return layout(preview)
        except (AttributeError, KeyError, TypeError, ValueError):
            pass  # a built-in kind's name with other fields: show them as they are
    lines = [f"Preview ({_text(kind or 'no kind', _CELL)}):"]
    for key, value in preview.items():
        if key != "kind":
            lines.append(f"  {_text(key, _CELL)}: {_text(json.dumps(value, default=str), _FIELD)}")
    return lines
