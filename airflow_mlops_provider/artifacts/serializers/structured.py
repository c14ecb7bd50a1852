"""JSON values too large for the XCom row: zstd-compressed JSON text."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import Serializer

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference


class JsonSerializer(Serializer):
    """Stores an already-encoded JSON value (see :mod:`~airflow_mlops_provider.artifacts.codec`).

    It is picked by the artifact manager for JSON-able values above the inline threshold, never by
    MRO dispatch, and ``read`` returns the encoded form for the manager to decode.
    """

    name = "json"
    format = "json+zstd"
    extension = ".json.zst"
    media_type = "application/json"
    returns_encoded = True

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import pyarrow as pa

        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        with pa.CompressedOutputStream(pa.PythonFile(sink, mode="w"), "zstd") as out:
            out.write(text)
        return summarize_json(value) | {"json_bytes": len(text)}

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        import pyarrow as pa

        with pa.CompressedInputStream(pa.BufferReader(data), "zstd") as stream:
            return json.loads(stream.read())

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_mlops_provider.artifacts.previews import text_preview

        return text_preview(value)

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        kind = details.get("kind", value_type.rsplit(".", 1)[-1])
        if "length" in details:
            return f"{kind} of {details['length']:,} items (JSON, {details.get('json_bytes', 0):,} bytes)"
        return f"{kind} (JSON, {details.get('json_bytes', 0):,} bytes)"


def summarize_json(encoded: Any) -> dict[str, Any]:
    from airflow_mlops_provider.artifacts.codec import TAG

    if isinstance(encoded, dict) and encoded.get(TAG) in ("tuple", "set", "frozenset", "dict"):
        kind, items = encoded[TAG], encoded["items"]
    else:
        kind, items = type(encoded).__name__, encoded
    out: dict[str, Any] = {"kind": kind}
    if isinstance(items, (list, dict)):
        out["length"] = len(items)
    if isinstance(items, dict):
        out["keys"] = list(items)[:20]
    return out
