"""XCom rows -> artifact entries: the one listing behind the notebook API, the CLI and the ML view.

An XCom row holds an inline value or artifact references (possibly nested in lists, tuples and
dicts). Each reference becomes one entry with the manifest stored beside its object, or a status
saying why there is none; an inline value becomes one entry of its own. Nothing is loaded or
unpickled: only the small manifest and preview JSON objects are read.
"""

from __future__ import annotations

import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.artifacts.manifest import Manifest, Reference
from airflow_mlops_provider.exceptions import ArtifactError, ArtifactNotFoundError, ArtifactStoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.catalog.records import XComEntry

#: XCom keys starting with this hold the provider's own records (checks, metrics, task records).
RESERVED_KEY_PREFIX = "mlops."
_MANIFEST_SUFFIX = ".manifest.json"

Status = Literal["ok", "missing", "outside_root", "unreadable", "unreachable", "inline"]


@dataclass(frozen=True)
class ArtifactEntry:
    """One stored artifact (or one inline value) found in an XCom row.

    :param xcom: the row it was found in.
    :param path: where it sits in the row's decoded value (``""`` for the value itself, ``[0]``,
        ``['model']``), as :func:`codec.iter_references` spells it.
    :param reference: the reference (``None`` for inline values and unreadable references).
    :param status: ``ok`` (manifest read), ``missing`` (deleted from the store), ``outside_root``
        (written before a change of ``[mlops] artifact_root``), ``unreadable`` (reference or
        manifest), ``unreachable`` (store errors, when not raised) or ``inline``.
    :param error: why the status is not ``ok`` / ``inline``.
    :param manifest: the manifest stored beside the object, when ``ok``.
    :param preview: the stored preview JSON, when asked for and stored.
    :param preview_error: why there is no preview, when asked for.
    """

    xcom: XComEntry
    path: str
    reference: Reference | None
    status: Status
    error: str | None = None
    manifest: Manifest | None = None
    preview: Any = None
    preview_error: str | None = None

    @property
    def inline(self) -> bool:
        return self.status == "inline"

    @property
    def inline_kind(self) -> str:
        """``int``, ``list``, ``dict``... or the tag of a value JSON cannot hold (``tuple``, ``datetime``)."""
        value = self.xcom.value
        tag = value.get(codec.TAG) if isinstance(value, dict) else None
        return tag if isinstance(tag, str) else type(value).__name__

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
    except ArtifactError as err:
        return ArtifactEntry(xcom, path, reference, "outside_root", str(err))
    try:
        manifest = read_manifest(manager, reference.uri)
    except ArtifactStoreError as err:
        if raise_store_errors:
            raise
        return ArtifactEntry(xcom, path, reference, "unreachable", str(err))
    except ArtifactNotFoundError:
        error = f"The artifact {reference.uri} is missing from the store."
        return ArtifactEntry(xcom, path, reference, "missing", error)
    except ArtifactError as err:
        return ArtifactEntry(xcom, path, reference, "unreadable", str(err))
    if not previews:
        return ArtifactEntry(xcom, path, reference, "ok", manifest=manifest)
    preview, preview_error = None, None
    try:
        preview = json.loads(manager.store.get_bytes(reference.preview_uri))
    except ArtifactNotFoundError:
        preview_error = "not stored"
    except ArtifactError as err:
        preview_error = str(err)
    except ValueError as err:
        preview_error = f"unreadable: {err}"
    return ArtifactEntry(xcom, path, reference, "ok", None, manifest, preview, preview_error)
