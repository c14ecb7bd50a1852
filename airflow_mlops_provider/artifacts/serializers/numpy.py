"""numpy arrays: the ``.npy`` format, never with pickle (object arrays go to the pickle serializer)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import Serializer

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference


class NumpySerializer(Serializer):
    name = "numpy.ndarray"
    types = ("numpy.ndarray",)
    format = "npy"
    extension = ".npy"
    media_type = "application/x-npy"

    def accepts(self, value: Any, settings: ArtifactSettings) -> bool:
        # Object arrays need pickle; subclasses (masked arrays, matrices) would lose state in .npy.
        import numpy as np

        return type(value) is np.ndarray and not value.dtype.hasobject

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        import numpy as np

        np.lib.format.write_array(sink, value, allow_pickle=False)
        details: dict[str, Any] = {"shape": list(value.shape), "dtype": str(value.dtype)}
        if value.dtype.kind in "biuf" and value.size > 0:
            flat = value.reshape(-1)
            details["sample"] = flat[:10].tolist()
        return details

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        import numpy as np

        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        shape = " x ".join(str(n) for n in details.get("shape", [])) or "scalar"
        return f"ndarray {shape} {details.get('dtype', '')}"

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_mlops_provider.artifacts.previews import array_preview

        return array_preview(value)

    def library_versions(self, value: Any) -> dict[str, str]:
        import numpy as np

        return {"numpy": np.__version__}
