"""Serializers: one per type family, chosen by walking the value's MRO.

Serializers declare the classes they handle by fully qualified name, so registering one never
imports an optional library (polars, PIL...). Each serializer names its format and format version;
both are recorded with the bytes, and ``read`` receives the recorded version so a serializer can keep
reading what older versions of itself wrote.

Third-party packages add serializers through the ``airflow_mlops_provider.serializers`` entry point
group (each entry point names a :class:`Serializer` subclass); code in a DAG can call
:func:`register_serializer`.
"""

from __future__ import annotations

import logging
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, TypeVar

from airflow_mlops_provider import _compat

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa

    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manifest import Reference

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "airflow_mlops_provider.serializers"

_BUILTINS = (
    "airflow_mlops_provider.artifacts.serializers.structured:JsonSerializer",
    "airflow_mlops_provider.artifacts.serializers.objects:CloudpickleSerializer",
    "airflow_mlops_provider.artifacts.serializers.raw:BytesSerializer",
    "airflow_mlops_provider.artifacts.serializers.numpy:NumpySerializer",
    "airflow_mlops_provider.artifacts.serializers.tabular:ArrowTableSerializer",
    "airflow_mlops_provider.artifacts.serializers.tabular:PandasDataFrameSerializer",
    "airflow_mlops_provider.artifacts.serializers.tabular:PandasSeriesSerializer",
    "airflow_mlops_provider.artifacts.serializers.tabular:PolarsDataFrameSerializer",
    "airflow_mlops_provider.artifacts.serializers.tabular:ArrowStreamSerializer",
    "airflow_mlops_provider.artifacts.serializers.image:PillowImageSerializer",
)


class SerializerDeclined(Exception):
    """Raised by :meth:`Serializer.write` when it finds it cannot hold this value exactly.

    The artifact manager then discards what was written and tries the next serializer in the
    value's MRO (usually the pickle fallback).
    """


SIDECARS = "_sidecars"


@dataclass(frozen=True)
class Format:
    """A storage format as recorded with the bytes (see :meth:`Serializer.format_for`)."""

    name: str
    version: int
    extension: str
    media_type: str


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Serializer(ABC):
    """Writes values of one type family to bytes and reads them back.

    Subclass it and pass the class to :func:`register_serializer` (or an entry point).

    :cvar name: unique registry name, recorded in every manifest (e.g. ``"pandas.dataframe"``).
    :cvar types: fully qualified names (or classes) this serializer handles; subclasses match too.
    :cvar format: storage format recorded in the manifest (e.g. ``"parquet"``).
    :cvar format_version: bump when the bytes change; ``read`` gets the version that wrote them.
    :cvar extension: file name suffix of the data object.
    :cvar media_type: MIME type of the data object.
    :cvar uses_pickle: True if reading runs pickle (subject to ``allow_pickle`` and signing).
    :cvar preview_from_value: True if :meth:`preview` needs only the value, not ``write``'s
        summary; the manager then computes the preview on a second thread while ``write`` runs
        (when :meth:`preview_aside` says the value is large enough for that to pay off).
    """

    name: ClassVar[str]
    types: ClassVar[tuple[str | type, ...]] = ()
    format: ClassVar[str]
    format_version: ClassVar[int] = 1
    extension: ClassVar[str] = ".bin"
    media_type: ClassVar[str] = "application/octet-stream"
    uses_pickle: ClassVar[bool] = False
    preview_from_value: ClassVar[bool] = False

    def accepts(self, value: Any, settings: ArtifactSettings) -> bool:
        """Finer check after the MRO matched (e.g. refuse object-dtype arrays)."""
        return True

    def preview_aside(self, value: Any) -> bool:
        """Whether to compute the preview on a second thread while :meth:`write` runs: only for a
        value whose preview does not need ``write``'s summary and takes long enough to be worth
        handing to a thread."""
        return self.preview_from_value

    def format_for(self, value: Any, settings: ArtifactSettings) -> Format:
        """The format :meth:`write` will use for ``value``: the class's own unless the serializer
        offers a choice (tables: ``[mlops] table_format``). :meth:`read` gets it back from the
        reference (``reference.format``), so artifacts keep the format they were written in."""
        return Format(self.format, self.format_version, self.extension, self.media_type)

    @abstractmethod
    def write(self, value: Any, sink: BinaryIO, settings: ArtifactSettings) -> dict[str, Any]:
        """Stream ``value`` to ``sink`` and return its summary (JSON-able, small).

        The summary may also hold, under :data:`SIDECARS`, small objects to store beside the data
        (``{suffix: bytes}``, e.g. a Parquet footer); the manager stores each as ``<n>.<suffix>``
        and records its sha256 in ``details["sidecars"]``.
        """

    @abstractmethod
    def read(self, data: memoryview, reference: Reference, settings: ArtifactSettings) -> Any:
        """Rebuild the value from the bytes written by ``write`` (at ``reference.format_version``)."""

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        """One line for people, shown in Airflow's XCom tab."""
        return value_type.rsplit(".", 1)[-1]

    def preview(self, value: Any, details: dict[str, Any]) -> dict[str, Any] | None:
        """A small, JSON-only view of the value for people (the ML view, ``airflow mlops artifacts show``).

        Computed when the artifact is written and stored beside it, so readers never download a
        large artifact and never unpickle anything. Keep it bounded (a few hundred KB at most), with
        a ``kind``: the built-in kinds are in :mod:`~airflow_mlops_provider.artifacts.previews`.
        """
        return None

    def read_preview(self, stored: StoredObject) -> dict[str, Any] | None:
        """A preview read back from the stored object, for artifacts that have none stored.

        ``preview`` could not make one (a stream was consumed by ``write``) or the artifact predates
        previews. Read a bounded part only, and never run code from the bytes (no unpickling).
        """
        return None

    def library_versions(self, value: Any) -> dict[str, str]:
        """Versions of the libraries needed to read the bytes back, recorded in the manifest."""
        return {}


class StoredObject(Protocol):
    """Checked access to one stored artifact, handed to a serializer's partial readers.

    The manager implements it; the serializer decides what to read, the manager how to check it.
    """

    @property
    def reference(self) -> Reference: ...

    def open(self, *, trust_size: bool = False) -> BinaryIO:
        """The data object as a seekable stream (ranged reads), refused if its size differs.

        ``trust_size`` skips the size lookup, for formats that detect other bytes themselves.
        """
        ...

    def open_verified(self) -> BinaryIO:
        """The data object as a seekable stream that returns only bytes checked against a hash:
        chunk by chunk where chunk digests were recorded, else the whole object (read at once)."""
        ...

    def sidecar(self, suffix: str) -> bytes | None:
        """A sidecar written with the data, or ``None`` if absent or its sha256 does not match."""
        ...

    def read_failed(self, error: Exception, what: str) -> Exception:
        """The error to raise when reading the object as ``what`` failed: missing, other bytes than
        were written, or unreadable (its structure or a checksum failed)."""
        ...


class TableSerializer(Serializer):
    """A serializer whose format can be read column by column and streamed in record batches.

    Its artifacts support ``ArtifactRef.load(columns=...)``, ``ArtifactRef.iter_batches()`` and
    ``Annotated[..., Columns(...)]`` parameters. Neither method should read the whole object: the
    manager records a sha256 per chunk of its data objects, and
    :meth:`StoredObject.open_verified` checks each chunk a partial read fetches.
    """

    @abstractmethod
    def read_columns(self, stored: StoredObject, columns: Sequence[str]) -> Any:
        """The value with only ``columns`` (and its index), reading nothing else where possible.

        :raises ArtifactError: a column is not in the table.
        """

    @abstractmethod
    def iter_batches(
        self, stored: StoredObject, batch_size: int, columns: Sequence[str] | None
    ) -> Iterator[pa.RecordBatch]:
        """The rows as ``pyarrow.RecordBatch`` objects, holding about one batch in memory."""


S = TypeVar("S", bound=type[Serializer])


class SerializerRegistry:
    """Maps class names to serializers; dispatches on a value's MRO."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Serializer]] = {}
        self._by_name: dict[str, Serializer] = {}
        self._aliases: dict[type, set[str]] = {}
        self._unresolved: set[str] = set()
        self._loaded = False

    def register(self, serializer: type[Serializer] | Serializer) -> None:
        instance = serializer() if isinstance(serializer, type) else serializer
        for attr in ("name", "format"):
            if not getattr(instance, attr, None):
                raise TypeError(f"Serializer {type(instance).__qualname__} must define {attr!r}.")
        self._by_name[instance.name] = instance
        for handled in instance.types:
            key = handled if isinstance(handled, str) else qualified_name(handled)
            bucket = self._by_type.setdefault(key, [])
            bucket[:] = [s for s in bucket if s.name != instance.name]
            bucket.insert(0, instance)  # the latest registration wins
            self._unresolved.add(key)

    def _names_of(self, cls: type) -> list[str]:
        """Registered names matching ``cls``: its own dotted name, or a public alias of it.

        Libraries re-export classes (``pandas.DataFrame`` is ``pandas.core.frame.DataFrame``), so
        registered names are also resolved to classes once their library has been imported.
        """
        for name in list(self._unresolved):
            if name.split(".", 1)[0] in sys.modules:
                self._unresolved.discard(name)
                module, _, attr = name.rpartition(".")
                try:
                    target = getattr(__import__(module, fromlist=[attr]), attr)
                except Exception:
                    continue
                if isinstance(target, type):
                    self._aliases.setdefault(target, set()).add(name)
        own = qualified_name(cls)
        return [own, *sorted(self._aliases.get(cls, set()) - {own})]

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from airflow.sdk.module_loading import import_string

        for path in _BUILTINS:
            self.register(import_string(path.replace(":", ".")))
        for ep in _compat.entry_points(ENTRY_POINT_GROUP):
            try:
                self.register(ep.load())
            except Exception:
                log.exception("Could not load serializer entry point %s = %s", ep.name, ep.value)

    def candidates(self, value: Any, settings: ArtifactSettings) -> Iterator[Serializer]:
        """Serializers that accept ``value``, most specific class first."""
        self._ensure_loaded()
        seen: set[str] = set()
        for cls in type(value).__mro__:
            for name in self._names_of(cls):
                for serializer in self._by_type.get(name, ()):
                    if serializer.name not in seen and serializer.accepts(value, settings):
                        seen.add(serializer.name)
                        yield serializer

    def declining(self, value: Any, settings: ArtifactSettings) -> list[str]:
        """Names of serializers registered for the value's classes whose ``accepts`` said no."""
        self._ensure_loaded()
        names: list[str] = []
        for cls in type(value).__mro__:
            for name in self._names_of(cls):
                for serializer in self._by_type.get(name, ()):
                    if serializer.name not in names and not serializer.accepts(value, settings):
                        names.append(serializer.name)
        return names

    def by_name(self, name: str) -> Serializer:
        self._ensure_loaded()
        try:
            return self._by_name[name]
        except KeyError:
            raise LookupError(
                f"No serializer named {name!r} is registered here. It was written by a serializer that "
                "this machine does not have: install the package that provides it (entry point group "
                f"{ENTRY_POINT_GROUP!r})."
            ) from None

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._by_name)


registry = SerializerRegistry()


def register_serializer(serializer: S) -> S:
    """Register a :class:`Serializer` subclass (usable as a class decorator).

    Example::

        @register_serializer
        class TorchModuleSerializer(Serializer):
            name = "torch.module"
            types = ("torch.nn.modules.module.Module",)
            format = "torch.save"
            ...
    """
    registry.register(serializer)
    return serializer


def module_version(obj: Any) -> dict[str, str]:
    """``{top-level package: version}`` for the package that defines ``type(obj)``."""
    top = type(obj).__module__.split(".", 1)[0]
    version = getattr(sys.modules.get(top), "__version__", None)
    return {top: str(version)} if version and top != "builtins" else {}
