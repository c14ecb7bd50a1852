"""Any other object (fitted models, custom classes): cloudpickle.

Unpickling runs code, so the artifact manager checks ``allow_pickle`` and the HMAC signature before
calling :meth:`CloudpickleSerializer.read`; previews and the web server never call it.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import platform
import reprlib
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts.serializers import Serializer, module_version, qualified_name

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200


class CloudpickleSerializer(Serializer):
    """Fallback for every object (registered for ``builtins.object``)."""

    name = "cloudpickle"
    types = ("builtins.object",)
    format = "cloudpickle"
    extension = ".pkl"
    media_type = "application/x-python-pickle"
    uses_pickle = True

    def accepts(self, value: Any, settings: ArtifactSettings) -> bool:
        return settings.allow_pickle

    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        _exact_pickler_class()(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        details: dict[str, Any] = {"class": qualified_name(type(value)), "repr": _safe_repr(value)}
        get_params = getattr(value, "get_params", None)
        if callable(get_params):  # scikit-learn estimators: hyperparameters are useful lineage
            with contextlib.suppress(Exception):
                details["params"] = {k: _safe_repr(v) for k, v in get_params(deep=False).items()}
        return details

    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        return pickle.loads(data)

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_mlops_provider.artifacts.previews import object_preview

        return object_preview(details)

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        return f"{value_type.rsplit('.', 1)[-1]} (pickled object)"

    def library_versions(self, value: Any) -> dict[str, str]:
        import cloudpickle

        return {
            "python": platform.python_version(),
            "cloudpickle": cloudpickle.__version__,
            **module_version(value),
        }


def _pendulum_datetime(fields: tuple[int, ...], tzinfo: Any, fold: int) -> Any:
    """Rebuild a pendulum ``DateTime`` with its ``fold`` (see :class:`_ExactPickler`)."""
    import pendulum

    return pendulum.DateTime(*fields, tzinfo=tzinfo, fold=fold)


@functools.cache
def _exact_pickler_class() -> type:
    import cloudpickle

    class ExactPickler(cloudpickle.Pickler):
        """cloudpickle, plus exactness where a library's own pickling loses information.

        pendulum ``DateTime`` pickles without ``fold``: at a wall time that happens twice (the end
        of daylight saving time) it would come back as the other instant, and still compare equal.
        """

        def reducer_override(self, obj: Any) -> Any:
            if type(obj).__module__.startswith("pendulum") and type(obj).__name__ == "DateTime":
                fields = (obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond)
                return _pendulum_datetime, (fields, obj.tzinfo, obj.fold)
            return super().reducer_override(obj)

    return ExactPickler


def _safe_repr(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception:
        return f"<{type(value).__qualname__}>"
