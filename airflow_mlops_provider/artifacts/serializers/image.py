"""PIL images: PNG (lossless)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import Serializer

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference

# Modes PNG stores without loss; anything else (CMYK, F...) falls back to the next serializer.
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


class PillowImageSerializer(Serializer):
    name = "pil.image"
    types = ("PIL.Image.Image",)
    format = "png"
    extension = ".png"
    media_type = "image/png"

    def accepts(self, value: Any, settings: ArtifactSettings) -> bool:
        return value.mode in _PNG_MODES

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        buffer = io.BytesIO()  # PIL seeks while writing PNG chunks; images are small next to tables
        value.save(buffer, format="PNG")
        sink.write(buffer.getbuffer())
        return {"width": value.width, "height": value.height, "mode": value.mode}

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        from PIL import Image

        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        return f"image {details.get('width')}x{details.get('height')} {details.get('mode')} (PNG)"

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_mlops_provider.artifacts.previews import image_preview

        return image_preview(value)

    def library_versions(self, value: Any) -> dict[str, str]:
        import PIL

        return {"pillow": PIL.__version__}
