"""bytes and bytearray: stored as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import Serializer

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference


class BytesSerializer(Serializer):
    name = "bytes"
    types = ("builtins.bytes", "builtins.bytearray")
    format = "raw"
    extension = ".bin"

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        sink.write(value)
        return {"bytes": len(value)}

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        return bytearray(data) if reference.type == "builtins.bytearray" else bytes(data)

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_mlops_provider.artifacts.previews import bytes_preview

        return bytes_preview(value)

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        return f"{value_type.rsplit('.', 1)[-1]}, {details.get('bytes', 0):,} bytes"
