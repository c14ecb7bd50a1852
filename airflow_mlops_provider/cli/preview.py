"""Bounded, safe previews of stored artifacts for ``airflow mlops artifacts show``.

Rules:

* Nothing is ever unpickled: pickle artifacts (and formats this module does not know, which might
  be pickles in disguise) are described from their manifest only: the class, the ``repr`` and the
  parameters recorded when they were written.
* Tables: the Parquet footer (schema, row count) and at most :data:`TABLE_ROWS` rows of at most
  :data:`TABLE_COLUMNS` columns, read from the first row group only, through a buffered reader
  (on object stores: a few ranged requests, never the whole object).
* Arrays and images: shape/dtype/sample and size/mode from the manifest (no read).
* JSON: at most :data:`JSON_BYTES` of decompressed text is read, pretty-printed and cut to
  :data:`JSON_LINES` lines.
* Bytes: the size and the first :data:`HEX_BYTES` bytes in hex.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.exceptions import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ArtifactStoreError,
)

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Manifest, Reference

TABLE_ROWS = 20
TABLE_COLUMNS = 50
JSON_BYTES = 64 * 1024
JSON_LINES = 60
JSON_RAW_CHARS = 2000
HEX_BYTES = 64
_CELL = 40


def preview_kind(reference: Reference) -> str:
    """``pickle``, ``table``, ``array``, ``json``, ``image``, ``bytes`` or ``other``."""
    fmt, serializer = reference.format.lower(), reference.serializer
    if "pickle" in fmt or serializer == "cloudpickle":
        return "pickle"
    if fmt == "parquet":
        return "table"
    if fmt == "npy":
        return "array"
    if fmt.startswith("json"):
        return "json"
    if fmt == "png" or serializer == "pil.image":
        return "image"
    if fmt == "raw" or serializer == "bytes":
        return "bytes"
    return "other"


def _missing(reference: Reference) -> ArtifactNotFoundError:
    return ArtifactNotFoundError(
        f"The artifact {reference.uri} ({reference.summary}) written by {reference.producer.describe()} "
        "is missing from the store (its manifest is still there). It was deleted after the task ran; "
        "clear and re-run the producing task to write it again."
    )


def _check_object(manager: ArtifactManager, reference: Reference) -> None:
    """The data object exists and has the recorded size (one metadata request, no download)."""
    try:
        size = manager.store.size(reference.data_uri)
    except (ArtifactNotFoundError, ArtifactStoreError) as err:
        if isinstance(err, ArtifactNotFoundError) or isinstance(err.__cause__, FileNotFoundError):
            raise _missing(reference) from err
        raise
    if size != reference.size_bytes:
        raise ArtifactIntegrityError(
            f"The artifact {reference.uri} written by {reference.producer.describe()} is {size} bytes in the "
            f"store but {reference.size_bytes} bytes were recorded when it was written. It was modified or "
            "truncated; re-run the producing task."
        )


def _read(manager: ArtifactManager, reference: Reference, reader: Any) -> Any:
    """Run ``reader(stream)`` on the object, mapping I/O failures to the provider's errors."""
    import pyarrow as pa

    try:
        with manager.store.open_read(reference.data_uri) as raw:
            return reader(raw)
    except ArtifactNotFoundError as err:
        raise _missing(reference) from err
    except FileNotFoundError as err:
        raise _missing(reference) from err
    except pa.ArrowException as err:
        raise ArtifactIntegrityError(
            f"The artifact {reference.uri} cannot be read as {reference.format}: {err}"
        ) from err
    except (ArtifactStoreError, ArtifactIntegrityError):
        raise
    except OSError as err:
        raise ArtifactStoreError(f"Could not read {reference.uri}: {type(err).__name__}: {err}") from err


def _cell(value: Any) -> str:
    if isinstance(value, bytes):
        text = value[:16].hex() + ("..." if len(value) > 16 else "")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= _CELL else text[: _CELL - 3] + "..."


def _table(manager: ArtifactManager, reference: Reference) -> dict[str, Any]:
    import pyarrow.parquet as pq

    def read(raw: Any) -> dict[str, Any]:
        parquet = pq.ParquetFile(raw, buffer_size=1 << 20, pre_buffer=False)
        meta, schema = parquet.metadata, parquet.schema_arrow
        shown = schema.names[:TABLE_COLUMNS]
        rows: list[dict[str, Any]] = []
        if meta.num_row_groups and meta.row_group(0).num_rows:
            batches = parquet.iter_batches(
                batch_size=TABLE_ROWS, row_groups=[0], columns=shown, use_threads=False
            )
            batch = next(iter(batches), None)
            if batch is not None:
                rows = batch.slice(0, TABLE_ROWS).to_pylist()
        return {
            "rows": meta.num_rows,
            "columns": len(schema.names),
            "row_groups": meta.num_row_groups,
            "schema": [{"name": f.name, "type": str(f.type)} for f in schema][:TABLE_COLUMNS],
            "head_columns": shown,
            "head": [{k: _cell(v) for k, v in row.items()} for row in rows],
        }

    return _read(manager, reference, read)


def _json(manager: ArtifactManager, reference: Reference) -> dict[str, Any]:
    import pyarrow as pa

    def read(raw: Any) -> bytes:
        source: Any = pa.PythonFile(raw, mode="r")
        if "zstd" in reference.format:
            source = pa.CompressedInputStream(source, "zstd")
        return source.read(JSON_BYTES + 1)

    data: bytes = _read(manager, reference, read)
    if len(data) <= JSON_BYTES:
        try:
            lines = json.dumps(json.loads(data), indent=2, ensure_ascii=False).splitlines()
        except ValueError:
            lines = data.decode(errors="replace").splitlines()
        return {"text": "\n".join(lines[:JSON_LINES]), "truncated": len(lines) > JSON_LINES}
    return {"text": data[:JSON_RAW_CHARS].decode(errors="replace"), "truncated": True}


def _bytes(manager: ArtifactManager, reference: Reference) -> dict[str, Any]:
    head: bytes = _read(manager, reference, lambda raw: raw.read(HEX_BYTES))
    return {"size_bytes": reference.size_bytes, "head_hex": head.hex(" ")}


def build_preview(manager: ArtifactManager, manifest: Manifest) -> dict[str, Any]:
    """A JSON-able preview of one artifact (see the module docstring for what is read)."""
    reference = manifest.reference
    details = reference.details or {}
    kind = preview_kind(reference)
    _check_object(manager, reference)
    out: dict[str, Any] = {"kind": kind}
    if kind == "pickle":
        out.update(
            {
                "class": details.get("class", reference.type),
                "repr": details.get("repr"),
                "params": details.get("params"),
                "note": "not unpickled: class, repr and params were recorded when the object was written",
            }
        )
    elif kind == "table":
        out.update(_table(manager, reference))
    elif kind == "array":
        out.update({k: details.get(k) for k in ("shape", "dtype", "sample")})
    elif kind == "json":
        out.update(_json(manager, reference))
    elif kind == "image":
        out.update({k: details.get(k) for k in ("width", "height", "mode")})
    elif kind == "bytes":
        out.update(_bytes(manager, reference))
    else:
        out.update({"details": details, "note": f"no preview for format {reference.format!r}"})
    return out


def render_preview(preview: dict[str, Any]) -> list[str]:
    """Human-readable lines for :func:`build_preview`'s result."""
    from airflow_mlops_provider.cli._common import render_table

    kind = preview["kind"]
    if kind == "pickle":
        lines = ["Preview (pickled object; never unpickled, from the manifest):"]
        lines.append(f"  class:  {preview.get('class')}")
        lines.append(f"  repr:   {preview.get('repr')}")
        params = preview.get("params")
        if params:
            lines.append("  params: " + ", ".join(f"{k}={v}" for k, v in params.items()))
        return lines
    if kind == "table":
        lines = [
            f"Preview (table): {preview['rows']:,} rows x {preview['columns']:,} columns, "
            f"{preview['row_groups']} row group(s)",
            "  schema:",
        ]
        width = max((len(f["name"]) for f in preview["schema"]), default=0)
        lines += [f"    {f['name'].ljust(width)}  {f['type']}" for f in preview["schema"]]
        if preview["columns"] > len(preview["schema"]):
            lines.append(f"    ... {preview['columns'] - len(preview['schema'])} more columns")
        if preview["head"]:
            lines.append(f"  first {len(preview['head'])} rows (first row group):")
            headers = preview["head_columns"]
            table = render_table(headers, [[row.get(h) for h in headers] for row in preview["head"]])
            lines += ["    " + line for line in table.splitlines()]
        return lines
    if kind == "array":
        shape = " x ".join(str(n) for n in preview.get("shape") or []) or "scalar"
        lines = [f"Preview (array): shape {shape}, dtype {preview.get('dtype')}"]
        if preview.get("sample") is not None:
            lines.append(f"  first values: {preview['sample']}")
        return lines
    if kind == "json":
        lines = ["Preview (JSON" + (", truncated):" if preview["truncated"] else "):")]
        lines += ["  " + line for line in preview["text"].splitlines()]
        if preview["truncated"]:
            lines.append("  ...")
        return lines
    if kind == "image":
        size = f"{preview.get('width')} x {preview.get('height')}"
        return [f"Preview (image): {size} pixels, mode {preview.get('mode')}"]
    if kind == "bytes":
        return [
            f"Preview (bytes): {preview['size_bytes']:,} bytes",
            f"  first bytes: {preview['head_hex']}",
        ]
    return [
        f"Preview: {preview.get('note')}",
        f"  details: {json.dumps(preview.get('details'), default=str)}",
    ]
