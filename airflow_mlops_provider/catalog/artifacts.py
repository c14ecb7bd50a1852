"""XCom rows -> artifact entries: the one listing behind the notebook API, the CLI and the ML view.

An XCom row holds an inline value or artifact references (possibly nested in lists, tuples and
dicts). Each reference becomes one entry with the manifest stored beside its object, or a status
saying why there is none; an inline value becomes one entry of its own. Nothing is loaded or
unpickled: only the small manifest and preview JSON objects are read, plus one metadata request
(HEAD) per data object, since the status says whether the *data* is there, not the manifest.

Anyone who may write a DAG's XComs can write a reference to any path, so a reference is shown only
when it is that DAG's own artifact: its write folder (the layout path) is under the row's DAG and
its manifest, when there is one, says the same DAG wrote the same bytes. Otherwise the entry is
``refused`` and nothing of the other artifact (manifest, preview, code) is read or returned.
"""

from __future__ import annotations

import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops_provider.artifacts import codec, layout
from airflow_mlops_provider.artifacts.manifest import Manifest, Reference
from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactStoreError,
    RefusedReferenceError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.catalog.records import XComEntry

#: XCom keys starting with this hold the provider's own records (checks, metrics, task records).
RESERVED_KEY_PREFIX = "mlops."
_MANIFEST_SUFFIX = ".manifest.json"

Status = Literal["ok", "missing", "outside_root", "unreadable", "unreachable", "refused", "inline"]


@dataclass(frozen=True)
class ArtifactEntry:
    """One stored artifact (or one inline value) found in an XCom row.

    :param xcom: the row it was found in.
    :param path: where it sits in the row's decoded value (``""`` for the value itself, ``[0]``,
        ``['model']``), as :func:`codec.iter_references` spells it.
    :param reference: the reference (``None`` for inline values and unreadable references).
    :param status: ``ok`` (the data object is there with the recorded size), ``missing`` (the data
        object was deleted from the store), ``outside_root`` (written before a change of
        ``[mlops] artifact_root``), ``unreadable`` (the reference cannot be parsed, or the data
        object has another size than recorded), ``unreachable`` (store errors, when not raised),
        ``refused`` (not the row's DAG's artifact: nothing of it is read) or ``inline``.
    :param error: why the status is not ``ok`` / ``inline``.
    :param manifest: the manifest stored beside the object, when ``ok`` and it could be read.
    :param preview: the stored preview JSON, when asked for and stored.
    :param preview_error: why there is no preview, when asked for.
    :param note: what is odd about an ``ok`` entry (its manifest is gone or unreadable: the fields
        then come from the XCom row's reference).
    :param points_to: for ``refused``, the DAG the reference points at (its path segment), or a
        description when it points at no DAG's write folder.
    """

    xcom: XComEntry
    path: str
    reference: Reference | None
    status: Status
    error: str | None = None
    manifest: Manifest | None = None
    preview: Any = None
    preview_error: str | None = None
    note: str | None = None
    points_to: str | None = None

    @property
    def inline(self) -> bool:
        return self.status == "inline"

    @property
    def inline_kind(self) -> str:
        """``int``, ``list``, ``dict``... or the tag of a value JSON cannot hold (``tuple``, ``datetime``)."""
        value = self.xcom.value
        tag = value.get(codec.TAG) if isinstance(value, dict) else None
        return tag if isinstance(tag, str) else type(value).__name__

    def refusal(self) -> RefusedReferenceError:
        """The error a face raises instead of loading a ``refused`` entry."""
        return RefusedReferenceError(
            f"Refusing to read the artifact of the XCom of {self.xcom.describe()}{_at(self.path)}: it "
            f"points at {self.points_to}, not at DAG {self.xcom.dag_id!r}. {self.error}"
        )

    def stored_fields(self) -> dict[str, Any]:
        """The manifest as stored beside the object; the reference's fields when it cannot be read."""
        if self.manifest is not None:
            return json.loads(self.manifest.to_json())
        if self.reference is not None:
            return {k: v for k, v in self.reference.to_row().items() if k not in (codec.TAG, "v")}
        return {}


def manifest_uri(uri: str) -> str:
    """The URI of the manifest stored beside a data object (``<folder>/<n>.manifest.json``)."""
    if uri.endswith(_MANIFEST_SUFFIX):
        return uri
    folder, name = posixpath.split(uri.rstrip("/"))
    stem = name.split(".", 1)[0]
    if not stem:
        raise ArtifactError(f"{uri} is not the URI of an artifact's data object.")
    return f"{folder}/{stem}{_MANIFEST_SUFFIX}"


def read_manifest(manager: ArtifactManager, uri: str) -> Manifest:
    """The manifest of a stored artifact, given the URI of its data object (or of the manifest).

    :raises ArtifactError: the URI is outside ``[mlops] artifact_root`` (nothing is read there), or
        the manifest cannot be parsed.
    :raises ArtifactNotFoundError: no manifest at that place (the artifact was deleted).
    :raises ArtifactStoreError: the store cannot be reached.
    """
    manager.store.fs_path(uri)  # refuses URIs outside the root, naming the one that was given
    location = manifest_uri(uri)
    try:
        raw = manager.store.get_bytes(location)
    except ArtifactNotFoundError as err:
        raise ArtifactNotFoundError(
            f"No artifact at {uri}: its manifest {location} is missing from the store (deleted, or the URI "
            "is wrong)."
        ) from err
    try:
        return Manifest.from_json(raw)
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"The manifest {location} cannot be read: {err}") from err


def artifact_entries(
    xcoms: Iterable[XComEntry],
    manager: ArtifactManager,
    *,
    include_records: bool = False,
    previews: bool = False,
    raise_store_errors: bool = True,
) -> list[ArtifactEntry]:
    """Entries for every artifact reference and inline value of ``xcoms``, in row order.

    :param include_records: also list the provider's ``mlops.*`` records (inline values).
    :param previews: also read each artifact's stored preview (the ML view shows them).
    :param raise_store_errors: raise :class:`ArtifactStoreError` when the store cannot be reached
        (a notebook wants to know); ``False`` marks the entries ``unreachable`` (a page still renders).
    """
    entries: list[ArtifactEntry | tuple[XComEntry, str, dict[str, Any]]] = []
    for xcom in xcoms:
        if not include_records and xcom.key.startswith(RESERVED_KEY_PREFIX):
            continue
        found = list(codec.iter_references(xcom.value))
        if not found:
            entries.append(ArtifactEntry(xcom, "", None, "inline"))
        entries.extend((xcom, path, row) for path, row in found)
    jobs = [e for e in entries if isinstance(e, tuple)]

    def read(job: tuple[XComEntry, str, dict[str, Any]]) -> ArtifactEntry:
        return _stored_entry(manager, *job, previews=previews, raise_store_errors=raise_store_errors)

    done = iter(_map(manager, read, jobs))
    return [next(done) if isinstance(e, tuple) else e for e in entries]


def _map(
    manager: ArtifactManager, fn: Callable[[Any], ArtifactEntry], items: list[Any]
) -> list[ArtifactEntry]:
    """``map`` for store reads: threads on object stores (latency-bound), a plain loop on disks."""
    if len(items) < 4 or manager.store.is_local:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(fn, items))


def _at(path: str) -> str:
    return f" (at {path})" if path else ""


def _refused(
    manager: ArtifactManager, xcom: XComEntry, reference: Reference, manifest: Manifest | None = None
) -> tuple[str, str] | None:
    """``(the DAG it points to, why)`` when the reference is not an artifact the row's DAG wrote.

    Legitimate references always sit in a write folder of the row's DAG, whether the task wrote the
    value or returned an :class:`ArtifactRef` it received (copied into its own folder), and name that
    DAG as producer; a deduplicated one keeps its bytes in the shared object of its content hash.
    Its manifest, when given, must say the same DAG wrote the same bytes.
    """
    own = layout.safe_component(xcom.dag_id)
    root = manager.store.root
    found = layout.parse(reference.uri[len(root) + 1 :])
    folder = getattr(found, "folder", None)
    if folder is None:
        return "no DAG's artifact", f"Its URI {reference.uri} is not in a write folder of the artifact store."
    points_to = f"DAG {folder.dag_id!r}"
    if folder.dag_id != own:
        return points_to, f"Its URI {reference.uri} is in a write folder of {points_to}."
    if reference.producer.dag_id != xcom.dag_id:
        return points_to, f"The reference names DAG {reference.producer.dag_id!r} as its producer."
    if reference.blob is not None:
        shared = layout.parse(reference.blob[len(root) + 1 :])
        if not isinstance(shared, layout.SharedObject) or shared.sha256 != reference.sha256:
            return points_to, f"Its bytes {reference.blob} are not the shared object of its content hash."
    if manifest is not None:
        recorded = manifest.reference
        if recorded.producer.dag_id != xcom.dag_id:
            return points_to, f"Its manifest says DAG {recorded.producer.dag_id!r} wrote it."
        if (recorded.sha256, recorded.size_bytes, recorded.blob) != (
            reference.sha256,
            reference.size_bytes,
            reference.blob,
        ):
            return points_to, "Its manifest records other bytes than the reference (hash, size or location)."
    return None


def _stored_entry(
    manager: ArtifactManager,
    xcom: XComEntry,
    path: str,
    row: dict[str, Any],
    *,
    previews: bool,
    raise_store_errors: bool,
) -> ArtifactEntry:
    try:
        reference = Reference.from_row(row)
    except (KeyError, TypeError, ValueError) as err:
        return ArtifactEntry(xcom, path, None, "unreadable", f"Unreadable reference: {err}")
    try:
        manager.store.fs_path(reference.uri)
        manager.store.fs_path(reference.data_uri)
    except ArtifactError as err:
        return ArtifactEntry(xcom, path, reference, "outside_root", str(err))

    def refused(found: tuple[str, str]) -> ArtifactEntry:
        return ArtifactEntry(xcom, path, reference, "refused", found[1], points_to=found[0])

    if found := _refused(manager, xcom, reference):
        return refused(found)
    manifest, note = None, None
    try:
        manifest = read_manifest(manager, reference.uri)
    except ArtifactStoreError as err:
        if raise_store_errors:
            raise
        return ArtifactEntry(xcom, path, reference, "unreachable", str(err))
    except ArtifactNotFoundError:
        note = f"The manifest {reference.manifest_uri} is missing from the store."
    except ArtifactError as err:  # unparseable: the data object still decides the status
        note = str(err)
    if found := _refused(manager, xcom, reference, manifest):
        return refused(found)
    if note is not None:
        note += " The fields come from the XCom row's reference."
    try:
        size = manager.store.info(reference.data_uri).size
    except ArtifactStoreError as err:
        if raise_store_errors:
            raise
        return ArtifactEntry(xcom, path, reference, "unreachable", str(err))
    except ArtifactNotFoundError:
        shared = f" {reference.blob}" if reference.blob else ""
        error = (
            f"The artifact {reference.uri} is missing from the store (its data object{shared} was deleted)."
        )
        return ArtifactEntry(xcom, path, reference, "missing", error, manifest, note=note)
    if size != reference.size_bytes:
        error = (
            f"The data object {reference.data_uri} has {size} bytes, not the {reference.size_bytes} "
            "recorded when it was written: it was modified or truncated in the store."
        )
        return ArtifactEntry(xcom, path, reference, "unreadable", error, manifest, note=note)
    return _ok(manager, xcom, path, reference, manifest, note, previews=previews)


def _ok(
    manager: ArtifactManager,
    xcom: XComEntry,
    path: str,
    reference: Reference,
    manifest: Manifest | None,
    note: str | None,
    *,
    previews: bool,
) -> ArtifactEntry:
    if not previews:
        return ArtifactEntry(xcom, path, reference, "ok", manifest=manifest, note=note)
    preview, preview_error = None, None
    try:
        preview = json.loads(manager.store.get_bytes(reference.preview_uri))
    except ArtifactNotFoundError:
        preview_error = "not stored"
    except ArtifactError as err:
        preview_error = str(err)
    except ValueError as err:
        preview_error = f"unreadable: {err}"
    return ArtifactEntry(xcom, path, reference, "ok", None, manifest, preview, preview_error, note)
