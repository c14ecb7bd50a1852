"""The layout of the artifact store, both ways: every path below the root is built and parsed here.

Writers ask this module where an object goes; garbage collection and the read side ask it what a
path they found is. Paths are relative to the artifact root (``/``-separated, no leading slash)::

    dag_id=<dag>/run_id=<run>/task_id=<task>/map_index=<n>/key=<key>/try=<try>-<write id>/
        <n><ext>                  the data object (absent when deduplicated)
        <n>.manifest.json         its manifest
        <n>.preview.json          its preview
        <n>.footer.parquet        a copy of a Parquet footer (and other ``<n>.<suffix>`` sidecars, e.g.
                                  ``<n>.chunks.sha256``, the chunk digests of a table)
        <n>.sha256-<hex>          zero-byte link to the shared object holding the bytes
    _cas/sha256/<hex[:2]>/<hex><ext>                     shared objects ([mlops] deduplicate)
    _snapshots/dag_id=<dag>/<snapshot id>.json           DAG structure snapshots
    _snapshots/dag_id=<dag>/runs/run_id=<run>.json       which snapshot a run was created with
    _runs/dag_id=<dag>/run_id=<run>.json                 the runs before a run (catalog.history)
    _cache/task_id=<task>/key=<cache key>/dag_id=<dag>.json   a cached task's outputs (caching)
    _scratch/replays/<replay id>/...                     replays saved with ``ml.replay(save=True)``

Ids become path segments through :func:`safe_component`, which escapes them irreversibly (it adds a
hash), so a parsed path gives back each id *as a segment*: equal to the id whenever the id was safe.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.manifest import Producer

SHARED_DIR = "_cas/sha256"
SNAPSHOTS_DIR = "_snapshots"
HISTORY_DIR = "_runs"
CACHE_DIR = "_cache"
SCRATCH_DIR = "_scratch"  # values written outside any run: replays saved with ``save=True``
MANIFEST = "manifest.json"
PREVIEW = "preview.json"
FOOTER = "footer.parquet"

_COMPONENT_MAX = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SEGMENT = r"[^/]+"
_FOLDER = re.compile(
    rf"dag_id=({_SEGMENT})/run_id=({_SEGMENT})/task_id=({_SEGMENT})/map_index=(-?\d+)/key=({_SEGMENT})"
    r"/try=(\d+)-([0-9a-f]+)"
)
# <n>, then any dotted suffixes: <n>.<ext>, <n>.manifest.json, <n>.npy.tmp-<hex> (a local write).
_OBJECT_NAME = re.compile(r"(\d+)((?:\.[A-Za-z0-9_\-]+)*)")
_LINK_SUFFIX = re.compile(r"\.sha256-([0-9a-f]{64})")
_SHARED = re.compile(rf"{SHARED_DIR}/([0-9a-f]{{2}})/(\1[0-9a-f]{{62}})((?:\.[A-Za-z0-9_\-]+)*)")
_SNAPSHOT = re.compile(rf"{SNAPSHOTS_DIR}/dag_id=({_SEGMENT})/([^/]+)\.json")
_SNAPSHOT_RUN = re.compile(rf"{SNAPSHOTS_DIR}/dag_id=({_SEGMENT})/runs/run_id=({_SEGMENT})\.json")
_HISTORY = re.compile(rf"{HISTORY_DIR}/dag_id=({_SEGMENT})/run_id=({_SEGMENT})\.json")
_CACHE_ENTRY = re.compile(rf"{CACHE_DIR}/task_id=({_SEGMENT})/key=([0-9a-f]{{64}})/dag_id=({_SEGMENT})\.json")


def safe_component(value: str) -> str:
    """Make an id usable as one path segment, readably and without collisions.

    Unsafe characters become ``-``; whenever the text had to change (or is too long) a short hash of
    the original is appended, so two different ids never share a folder.
    """
    cleaned = _UNSAFE.sub("-", value)
    if cleaned == value and len(value) <= _COMPONENT_MAX and value not in ("", ".", ".."):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{cleaned[: _COMPONENT_MAX - 13]}~{digest}"


class Area(enum.Enum):
    """The top-level part of the store a path belongs to."""

    WRITE_FOLDERS = "write folders"
    SHARED = "shared objects"
    SNAPSHOTS = "snapshots"
    RUN_HISTORY = "run history"
    CACHE = "cache index"
    SCRATCH = "scratch"
    OTHER = "other"


class ObjectKind(enum.Enum):
    """What an object in a write folder is, by its name."""

    DATA = "data"  # the data object, or a serializer's sidecar other than the footer copy
    MANIFEST = "manifest"
    PREVIEW = "preview"
    FOOTER = "footer"
    LINK = "link"
    TEMPORARY = "temporary"  # a local write not yet renamed into place


# -- paths, as types ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteFolder:
    """The folder of one XCom value: every object of the value lives in it.

    Ids are path segments (see :func:`safe_component`); ``write_id`` is random, so two writes of the
    same try never share a folder.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    try_number: int
    write_id: str
    area: ClassVar[Area] = Area.WRITE_FOLDERS

    @classmethod
    def of(cls, producer: Producer, write_id: str) -> WriteFolder:
        return cls(
            safe_component(producer.dag_id),
            safe_component(producer.run_id),
            safe_component(producer.task_id),
            producer.map_index,
            safe_component(producer.key),
            producer.try_number,
            write_id,
        )

    @property
    def task_instance_prefix(self) -> str:
        """The folder of every write of this task instance (all keys, all tries)."""
        return f"dag_id={self.dag_id}/run_id={self.run_id}/task_id={self.task_id}/map_index={self.map_index}"

    @property
    def relative(self) -> str:
        return f"{self.task_instance_prefix}/key={self.key}/try={self.try_number}-{self.write_id}"


@dataclass(frozen=True)
class FolderObject:
    """An object the provider writes into a write folder: ``<index><suffix>``."""

    folder: WriteFolder
    index: int
    suffix: str
    area: ClassVar[Area] = Area.WRITE_FOLDERS

    @property
    def name(self) -> str:
        return f"{self.index}{self.suffix}"

    @property
    def relative(self) -> str:
        return f"{self.folder.relative}/{self.name}"

    @property
    def kind(self) -> ObjectKind:
        if ".tmp-" in self.suffix:
            return ObjectKind.TEMPORARY
        if _LINK_SUFFIX.fullmatch(self.suffix):
            return ObjectKind.LINK
        return _SIBLING_KINDS.get(self.suffix, ObjectKind.DATA)

    @property
    def linked_sha256(self) -> str | None:
        """The hash of the shared object a link names (``None`` for other objects)."""
        match = _LINK_SUFFIX.fullmatch(self.suffix)
        return match.group(1) if match else None


_SIBLING_KINDS = {
    f".{MANIFEST}": ObjectKind.MANIFEST,
    f".{PREVIEW}": ObjectKind.PREVIEW,
    f".{FOOTER}": ObjectKind.FOOTER,
}


@dataclass(frozen=True)
class SharedObject:
    """A content-addressed object of ``[mlops] deduplicate``: its name is its SHA-256."""

    sha256: str
    extension: str = ""
    area: ClassVar[Area] = Area.SHARED

    @property
    def relative(self) -> str:
        return f"{SHARED_DIR}/{self.sha256[:2]}/{self.sha256}{self.extension}"


@dataclass(frozen=True)
class SnapshotPath:
    """A DAG structure snapshot, named by its content hash (fields are path segments)."""

    dag_id: str
    snapshot_id: str
    area: ClassVar[Area] = Area.SNAPSHOTS

    @classmethod
    def of(cls, dag_id: str, snapshot_id: str) -> SnapshotPath:
        return cls(safe_component(dag_id), safe_component(snapshot_id))

    @property
    def relative(self) -> str:
        return f"{SNAPSHOTS_DIR}/dag_id={self.dag_id}/{self.snapshot_id}.json"


@dataclass(frozen=True)
class SnapshotRunPath:
    """A run's pointer to the snapshot it was created with (fields are path segments)."""

    dag_id: str
    run_id: str
    area: ClassVar[Area] = Area.SNAPSHOTS

    @classmethod
    def of(cls, dag_id: str, run_id: str) -> SnapshotRunPath:
        return cls(safe_component(dag_id), safe_component(run_id))

    @property
    def relative(self) -> str:
        return f"{SNAPSHOTS_DIR}/dag_id={self.dag_id}/runs/run_id={self.run_id}.json"


@dataclass(frozen=True)
class RunHistoryPath:
    """The runs before a run (:mod:`airflow_mlops_provider.catalog.history`; fields are path segments)."""

    dag_id: str
    run_id: str
    area: ClassVar[Area] = Area.RUN_HISTORY

    @classmethod
    def of(cls, dag_id: str, run_id: str) -> RunHistoryPath:
        return cls(safe_component(dag_id), safe_component(run_id))

    @property
    def relative(self) -> str:
        return f"{HISTORY_DIR}/dag_id={self.dag_id}/run_id={self.run_id}.json"


@dataclass(frozen=True)
class CacheEntryPath:
    """The outputs a cached task's try recorded under a cache key (fields are path segments).

    Keyed by task, then key, then the DAG that wrote it: a DAG-scoped lookup reads one object, a
    global one lists the key's folder.
    """

    task_id: str
    key: str
    dag_id: str
    area: ClassVar[Area] = Area.CACHE

    @classmethod
    def of(cls, task_id: str, key: str, dag_id: str) -> CacheEntryPath:
        return cls(safe_component(task_id), key, safe_component(dag_id))

    @property
    def relative(self) -> str:
        return f"{cache_key_dir(self.task_id, self.key, escaped=True)}/dag_id={self.dag_id}.json"


@dataclass(frozen=True)
class Unknown:
    """A path the provider does not write; ``folder`` is set when it lies inside a write folder."""

    relative: str
    area: Area
    folder: WriteFolder | None = None


StorePath = (
    FolderObject | SharedObject | SnapshotPath | SnapshotRunPath | RunHistoryPath | CacheEntryPath | Unknown
)


# -- building -----------------------------------------------------------------------------------


def sibling(name: str, suffix: str) -> str:
    """The name of the object stored beside ``name`` (a file name or URL): ``<n>.<suffix>``.

    ``suffix`` is :data:`MANIFEST`, :data:`PREVIEW`, :data:`FOOTER` or a serializer's sidecar.
    """
    folder, slash, base = name.rpartition("/")
    return f"{folder}{slash}{base.split('.', 1)[0]}.{suffix}"


def link(name: str, sha256: str) -> str:
    """The zero-byte link beside ``name`` (a file name or URL) to the shared object ``sha256``."""
    return sibling(name, f"sha256-{sha256}")


def snapshots_dir(dag_id: str) -> str:
    """The folder of a DAG's snapshots (its run pointers are in ``runs/`` below it)."""
    return f"{SNAPSHOTS_DIR}/dag_id={safe_component(dag_id)}"


def cache_dir(task_id: str | None = None) -> str:
    """The cache index (of one task's entries, with ``task_id``)."""
    return CACHE_DIR if task_id is None else f"{CACHE_DIR}/task_id={safe_component(task_id)}"


def cache_key_dir(task_id: str, key: str, *, escaped: bool = False) -> str:
    """The folder of every DAG's entry for one task and cache key."""
    task = task_id if escaped else safe_component(task_id)
    return f"{CACHE_DIR}/task_id={task}/key={key}"


# -- parsing ------------------------------------------------------------------------------------


def parse(relative: str) -> StorePath:
    """What the object at ``relative`` (a path below the root) is."""
    head = relative.split("/", 1)[0]
    if head == SHARED_DIR.split("/", 1)[0]:
        if (match := _SHARED.fullmatch(relative)) and ".tmp-" not in match.group(3):
            return SharedObject(match.group(2), match.group(3))
        return Unknown(relative, Area.SHARED)
    if head == SNAPSHOTS_DIR:
        if match := _SNAPSHOT_RUN.fullmatch(relative):
            return SnapshotRunPath(*match.groups())
        if match := _SNAPSHOT.fullmatch(relative):
            return SnapshotPath(*match.groups())
        return Unknown(relative, Area.SNAPSHOTS)
    if head == HISTORY_DIR:
        if match := _HISTORY.fullmatch(relative):
            return RunHistoryPath(*match.groups())
        return Unknown(relative, Area.RUN_HISTORY)
    if head == CACHE_DIR:
        if match := _CACHE_ENTRY.fullmatch(relative):
            return CacheEntryPath(*match.groups())
        return Unknown(relative, Area.CACHE)
    if head == SCRATCH_DIR:
        return Unknown(relative, Area.SCRATCH)
    match = _FOLDER.match(relative)
    if match is None or relative[match.end() : match.end() + 1] != "/":
        return Unknown(relative, Area.OTHER)
    dag, run, task, map_index, key, try_number, write_id = match.groups()
    folder = WriteFolder(dag, run, task, int(map_index), key, int(try_number), write_id)
    name = relative[match.end() + 1 :]
    if (found := _OBJECT_NAME.fullmatch(name)) is None:
        return Unknown(relative, Area.WRITE_FOLDERS, folder)
    return FolderObject(folder, int(found.group(1)), found.group(2))


def write_folder_of(uri: str) -> WriteFolder | None:
    """The write folder an artifact URI points into, whatever root it was written under.

    Matching on the layout below the root (which includes a random write id) means a root spelled
    differently elsewhere (another mount point, a trailing slash) still names the same folder.
    """
    parts = uri.split("/")
    parsed = parse("/".join(parts[-7:])) if len(parts) >= 7 else None
    return parsed.folder if isinstance(parsed, (FolderObject, Unknown)) else None


# -- scratch ------------------------------------------------------------------------------------


def replay_root(replay_id: str) -> str:
    """The root a saved replay writes under (its write folders, built as usual, go below it).

    It lies outside every run's folders, so no XCom row, gc sweep of a run or purge ever takes it
    for a run's artifact.
    """
    return f"{SCRATCH_DIR}/replays/{safe_component(replay_id)}"
