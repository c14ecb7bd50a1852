"""Turns Python values into XCom rows plus stored artifacts, and back.

This is the one place that decides, for every value a task returns, what stays inline in the XCom
row and what goes to the store in which format. The XCom backend, the notebook API and the CLI all
go through :class:`ArtifactManager`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import platform
import posixpath
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import lru_cache
from threading import Lock
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts import chunks, codec, layout, lineage, prefetch, previews
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manifest import Manifest, Producer, Reference
from airflow_mlops_provider.artifacts.refs import ArtifactRef
from airflow_mlops_provider.artifacts.serializers import (
    SIDECARS,
    Serializer,
    SerializerDeclined,
    TableSerializer,
    qualified_name,
    registry,
)
from airflow_mlops_provider.artifacts.serializers.structured import JsonSerializer
from airflow_mlops_provider.artifacts.store import ArtifactStore
from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ArtifactStoreError,
    BucketNotFoundError,
    PickleNotAllowedError,
    UnsupportedTypeError,
)
from airflow_mlops_provider.version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from airflow_mlops_provider.artifacts.serializers import SerializerRegistry

log = logging.getLogger(__name__)

_HOW_TO_REGISTER = (
    "Register a serializer for it: subclass airflow_mlops_provider.Serializer and decorate it with "
    "@airflow_mlops_provider.register_serializer (or expose it through the "
    "'airflow_mlops_provider.serializers' entry point group)."
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def sign(key: bytes, sha256: str) -> str:
    return hmac.new(key, sha256.encode(), hashlib.sha256).hexdigest()


class ArtifactManager:
    """Writes and reads artifacts for one configuration.

    :param settings: the ``[mlops]`` settings; read from Airflow's config when omitted.
    :param serializers: the serializer registry (the global one by default).
    """

    def __init__(
        self, settings: ArtifactSettings | None = None, serializers: SerializerRegistry | None = None
    ) -> None:
        self.settings = settings or ArtifactSettings.from_airflow_config()
        self.registry = serializers or registry
        self.store = ArtifactStore(
            self.settings.artifact_root, self.settings.conn_id, self.settings.store_timeout_seconds
        )
        self._swept: set[tuple[str, str, str, int]] = set()  # task instances whose earlier tries were
        self._swept_lock = Lock()  # cleaned up by this process (abort_earlier_uploads)
        self._prefetcher = prefetch.Prefetcher(self._get_bytes)

    def __reduce__(self) -> Any:
        # The settings hold the signing key: a manager must never end up in a pickle (or the store).
        raise TypeError(
            "An ArtifactManager holds the [mlops] settings, secrets included, and is never pickled; "
            "pickle ArtifactRef handles (they pickle as references) or the values themselves."
        )

    @classmethod
    def configured(cls) -> ArtifactManager:
        """The manager for the current ``[mlops]`` config, shared per distinct config."""
        return _configured(ArtifactSettings.current())

    # -- writing --------------------------------------------------------------------------------

    def dump(self, value: Any, producer: Producer) -> Any:
        """Store ``value`` and return the JSON value for its XCom row.

        JSON-able values below ``inline_threshold_bytes`` come back as themselves (encoded by
        :mod:`codec`); everything else is written to the store and replaced by a reference.
        """
        writer = _ValueWriter(self, producer)
        try:
            encoded = codec.encode(value, leaf=writer.write_leaf)
            text = json.dumps(encoded, allow_nan=False, separators=(",", ":"))
            # PostgreSQL's JSONB cannot hold NUL characters, so such strings never go inline.
            if len(text) < self.settings.inline_threshold_bytes and "\\u0000" not in text:
                return encoded
            return writer.write(
                encoded, self.registry.by_name(JsonSerializer.name), qualified_name(type(value))
            )
        except BaseException:
            writer.rollback()
            raise

    def dump_record(self, value: Any, producer: Producer) -> Any:
        """A JSON document that must stay in its XCom row whatever its size (the provider's own
        check, metric and task records, which readers query in the metadata DB).

        NUL characters, which PostgreSQL's JSONB refuses, become U+FFFD.
        """
        try:
            encoded = codec.encode(value)
        except codec.NotEncodable as err:
            raise UnsupportedTypeError(
                f"The record {producer.key!r} of {producer.describe()} is not JSON: {err}"
            ) from err
        text = json.dumps(encoded, allow_nan=False, separators=(",", ":"))
        return json.loads(text.replace("\\u0000", "\\ufffd")) if "\\u0000" in text else encoded

    # -- reading --------------------------------------------------------------------------------

    def load(self, row: Any) -> Any:
        """The value an XCom row stands for, with every referenced artifact loaded and verified."""
        return codec.decode(row, self._load_row)

    def load_lazy(self, row: Any) -> Any:
        """Like :meth:`load`, but every stored artifact becomes an :class:`ArtifactRef`."""
        if not any(True for _ in codec.iter_references(row)):
            return ArtifactRef.from_value(self.load(row))

        def handle(ref_row: dict[str, Any]) -> ArtifactRef[Any]:
            reference = Reference.from_row(ref_row)
            lineage.record_read(reference)
            return ArtifactRef(reference, self)

        return codec.decode(row, handle)

    def _load_row(self, ref_row: dict[str, Any]) -> Any:
        return self.load_reference(Reference.from_row(ref_row))

    def load_reference(self, reference: Reference) -> Any:
        lineage.record_read(reference)
        serializer = self.serializer(reference)
        if serializer.uses_pickle:
            self.check_pickle_allowed(reference)
            value = serializer.read(memoryview(self.fetch(reference)), reference, self.settings)
        else:
            value = self._read_verifying(serializer, reference)
        if getattr(serializer, "returns_encoded", False):
            value = codec.decode(value, self._load_row)
        lineage.note_loaded(value, reference)
        return value

    def serializer(self, reference: Reference) -> Serializer:
        """The serializer that wrote the artifact (:class:`LookupError` if not installed here)."""
        return self.registry.by_name(reference.serializer)

    def open_raw(self, reference: Reference) -> BinaryIO:
        """The data object as a seekable stream, unchecked (for callers that hash it themselves)."""
        with self.reading(reference):
            return self.store.open_read(reference.data_uri)

    def fetch(self, reference: Reference) -> bytes | pa.Buffer:
        """The verified bytes of an artifact."""
        data = self._fetch_unverified(reference)
        self.verify(reference, data)
        return data

    def prefetch(self, rows: list[Any]) -> int:
        """Start fetching the data objects of these XCom rows in the background (bounded, see
        :mod:`~airflow_mlops_provider.artifacts.prefetch`): loading them later waits for those bytes
        instead of a request each. Returns how many fetches started."""
        references = []
        for row in rows:
            for _, ref_row in codec.iter_references(row):
                with contextlib.suppress(KeyError, TypeError, ValueError):  # a malformed row: read as usual
                    references.append(Reference.from_row(ref_row))
        return self._prefetcher.start(references)

    def _fetch_unverified(self, reference: Reference) -> bytes | pa.Buffer:
        data = self._prefetcher.take(reference)
        return self._get_bytes(reference) if data is None else data

    def _get_bytes(self, reference: Reference) -> bytes | pa.Buffer:
        with self.reading(reference):
            return self.store.get_bytes(reference.data_uri, size=reference.size_bytes)

    def _read_verifying(self, serializer: Serializer, reference: Reference) -> Any:
        """Decode data formats while a second thread checks the content hash.

        Only for formats whose decoding runs no code (never pickles): the value is returned only
        once the hash matched, and a decoding error on other bytes becomes the integrity error.
        """
        data = self._fetch_unverified(reference)
        # Below _OVERLAP_BYTES hashing takes less than handing it to another thread.
        digest = chunks.content_sha256(
            data, reference.chunk_bytes, _helpers(), inline=len(data) < _OVERLAP_BYTES
        )
        try:
            value = serializer.read(memoryview(data), reference, self.settings)
        except Exception:
            self.verify(reference, data, digest())
            raise
        self.verify(reference, data, digest())
        return value

    def stored(self, reference: Reference) -> StoredArtifact:
        """Checked access to the artifact's objects, for partial reads by its serializer."""
        return StoredArtifact(self, reference)

    def preview(self, reference: Reference) -> dict[str, Any] | None:
        """The preview stored when the artifact was written (the one the ML view shows) or, if none
        was, one its serializer reads back from a bounded part of the object.

        Never unpickles: a serializer that uses pickle is not asked.
        """
        try:
            preview = json.loads(self.store.get_bytes(reference.preview_uri))
        except ArtifactNotFoundError:
            preview = None
        except BucketNotFoundError as err:
            raise self.bucket_missing(reference, err) from err
        except ValueError:
            log.warning("Ignoring the unreadable preview of %s.", reference.uri)
            preview = None
        if isinstance(preview, dict):
            return preview
        try:
            serializer = self.serializer(reference)
        except LookupError:
            return None
        if serializer.uses_pickle:
            return None
        preview = serializer.read_preview(self.stored(reference))
        return None if preview is None else json.loads(previews.encode(preview))

    @contextlib.contextmanager
    def reading(self, reference: Reference) -> Iterator[None]:
        """Name the artifact and its producer when its object (or its whole bucket) is missing."""
        try:
            yield
        except ArtifactNotFoundError as err:
            raise self.missing(reference) from err
        except BucketNotFoundError as err:
            raise self.bucket_missing(reference, err) from err

    @staticmethod
    def bucket_missing(reference: Reference, err: BucketNotFoundError) -> BucketNotFoundError:
        """The error for an artifact whose bucket is gone: the root is wrong, nothing was deleted."""
        return BucketNotFoundError(
            f"The artifact {reference.data_uri} ({reference.summary}) written by "
            f"{reference.producer.describe()} cannot be read: {err}"
        )

    @staticmethod
    def missing(reference: Reference) -> ArtifactNotFoundError:
        """The error for an artifact whose object is gone from the store."""
        return ArtifactNotFoundError(
            f"The artifact {reference.data_uri} ({reference.summary}) written by "
            f"{reference.producer.describe()} is missing from the store. It was deleted after the "
            "task ran (a lifecycle rule, garbage collection or a manual delete); clear and re-run "
            "the producing task to write it again."
        )

    @staticmethod
    def verify(reference: Reference, data: bytes | pa.Buffer, sha256: str | None = None) -> None:
        """Refuse bytes whose size or content hash (``sha256`` if already computed) differ from
        the record."""
        actual = sha256 or chunks.content_sha256(data, reference.chunk_bytes, _helpers())()
        if len(data) != reference.size_bytes or actual != reference.sha256:
            raise ArtifactIntegrityError(
                f"The artifact {reference.uri} written by {reference.producer.describe()} does not match "
                f"the content hash recorded when it was written (expected {reference.size_bytes} bytes "
                f"with {reference.hash_description}, found {len(data)} bytes). It was modified or "
                "truncated in the store; re-run the producing task."
            )

    def check_pickle_allowed(self, reference: Reference) -> None:
        """Refuse to unpickle unless pickles are allowed and, with a signing key, correctly signed."""
        where = f"{reference.uri} (written by {reference.producer.describe()})"
        if not self.settings.allow_pickle:
            raise PickleNotAllowedError(
                f"Refusing to unpickle {where}: [mlops] allow_pickle is False on this machine. "
                "Enable it, or have the producing task return a data type (DataFrame, array, JSON)."
            )
        key = self.settings.signing_key
        if key is None:
            return
        if not reference.signature:
            raise PickleNotAllowedError(
                f"Refusing to unpickle {where}: it is not signed and [mlops] signing_key is set. It was "
                "written without a signing key (or by someone else); re-run the producing task with the "
                "signing key configured."
            )
        if not hmac.compare_digest(reference.signature, sign(key, reference.sha256)):
            raise PickleNotAllowedError(
                f"Refusing to unpickle {where}: its signature does not match [mlops] signing_key. The "
                "artifact was tampered with or signed with another key."
            )

    # -- deleting -------------------------------------------------------------------------------

    def abort_earlier_uploads(self, producer: Producer) -> int:
        """Abort the multipart uploads earlier tries of this task instance left unfinished.

        A worker killed mid-upload (SIGKILL, OOM) aborts nothing: its parts stay in the bucket,
        invisible and billed. A retry knows where they are (its task instance's prefix, tries below
        its own), so it aborts them. Only on S3, only from the second try, once per task instance
        and process (one listing request); failures are logged, never fail the task (``airflow
        mlops gc`` and the bucket's lifecycle rule are the backstops). Returns the number aborted.
        """
        ti = (producer.dag_id, producer.run_id, producer.task_id, producer.map_index)
        if producer.try_number <= 1 or not self.store.has_multipart_uploads:
            return 0
        with self._swept_lock:
            if ti in self._swept:
                return 0
            self._swept.add(ti)
        prefix = layout.WriteFolder.of(producer, "0").task_instance_prefix
        aborted = 0
        try:
            for upload in self.store.pending_uploads(prefix):
                path = layout.parse(upload.relative)
                folder = getattr(path, "folder", None)
                if folder is not None and folder.try_number < producer.try_number:
                    self.store.abort_upload(upload)
                    aborted += 1
        except ArtifactError as err:
            log.warning(
                "Could not abort the unfinished uploads of earlier tries of %s: %s", producer.describe(), err
            )
        if aborted:
            log.info(
                "Aborted %d unfinished upload(s) left by earlier tries of %s.", aborted, producer.describe()
            )
        return aborted

    def purge(self, row: Any) -> None:
        """Delete the stored objects an XCom row refers to (all of them live in one write folder).

        Shared content-addressed objects (``[mlops] deduplicate``) may be linked from other folders;
        they stay, and ``airflow mlops gc`` deletes them once no folder links to them.
        """
        folders = {posixpath.dirname(ref["uri"]) for _, ref in codec.iter_references(row)}
        for folder in sorted(folders):
            if posixpath.basename(folder).startswith("try="):
                self.store.delete_dir(folder)
            else:
                log.warning("Not purging %s: it does not look like an artifact folder.", folder)


class StoredArtifact:
    """The :class:`~airflow_mlops_provider.artifacts.serializers.StoredObject` of one artifact:
    its serializer chooses what to read, this checks it against what was recorded at write time."""

    def __init__(self, manager: ArtifactManager, reference: Reference) -> None:
        self._manager = manager
        self._reference = reference

    @property
    def reference(self) -> Reference:
        return self._reference

    def open(self, *, trust_size: bool = False) -> BinaryIO:
        """The data object as a seekable stream, refused if its size differs from the recorded one.

        ``trust_size`` skips the size lookup (one request on object stores) for readers that detect
        other bytes themselves (Parquet artifacts of earlier versions: a footer copy plus page checksums).
        """
        reference, store = self._reference, self._manager.store
        with self._manager.reading(reference):
            if trust_size:
                return store.open_read(reference.data_uri, size=reference.size_bytes)
            raw = store.open_read(reference.data_uri)
        size = getattr(raw, "size", None)
        if size is None:
            size = self._size()
        if size != reference.size_bytes:
            raw.close()
            raise self._wrong_size(size)
        return raw

    def open_verified(self) -> BinaryIO:
        """The data object as a seekable stream that returns only bytes checked against a hash.

        With chunk digests (recorded for table artifacts above one chunk) each chunk a read touches
        is fetched and checked on its own; without them (small objects, or digests gone or
        damaged) the whole object is read and checked against its sha256.
        """
        import io

        reference = self._reference
        sidecar = self.sidecar(chunks.SIDECAR)
        if sidecar is not None:
            try:
                algorithm, chunk_bytes, digests = chunks.parse_sidecar(sidecar, reference.size_bytes)
            except ValueError as err:
                log.warning("Ignoring the chunk digests of %s: %s", reference.uri, err)
            else:
                return chunks.VerifiedReader(
                    lambda: self.open(trust_size=True),
                    reference.size_bytes,
                    chunk_bytes,
                    digests,
                    self._bad_chunk,
                    algorithm,
                )
        return io.BytesIO(self._manager.fetch(reference))

    def _bad_chunk(self, index: int) -> ArtifactIntegrityError:
        return self._changed(f"hash recorded for its chunk {index} when it was written")

    def check(self) -> None:
        """The data object exists with the recorded size (one metadata request, nothing downloaded)."""
        size = self._size()
        if size != self._reference.size_bytes:
            raise self._wrong_size(size)

    def sidecar(self, suffix: str) -> bytes | None:
        """A sidecar written with the data, or ``None`` if absent or its sha256 does not match."""
        reference = self._reference
        expected = (reference.details.get("sidecars") or {}).get(suffix)
        if not expected:
            return None
        try:
            data = self._manager.store.get_bytes(reference.sibling(suffix))
        except ArtifactNotFoundError:
            return None
        except BucketNotFoundError as err:
            raise self._manager.bucket_missing(reference, err) from err
        if hashlib.sha256(data).hexdigest() != expected:
            log.warning("Ignoring the %s of %s: its hash does not match.", suffix, reference.uri)
            return None
        return data

    def read_failed(self, error: Exception, what: str) -> ArtifactError:
        """Explain a failed read: the object is gone, has another size, or other bytes of that size."""
        if isinstance(error, ArtifactError):
            return error
        reference = self._reference
        try:
            size = self._size()
        except ArtifactError as err:
            return err
        if size != reference.size_bytes:
            return self._wrong_size(size)
        return ArtifactIntegrityError(
            f"The artifact {reference.data_uri} written by {reference.producer.describe()} cannot be read "
            f"as {what}: {type(error).__name__}: {error}. Its bytes differ from what was written (a "
            "checksum or the file structure failed); re-run the producing task."
        )

    def _size(self) -> int:
        with self._manager.reading(self._reference):
            return self._manager.store.size(self._reference.data_uri)

    def _wrong_size(self, size: int) -> ArtifactIntegrityError:
        recorded = self._reference.size_bytes
        return self._changed(
            f"size recorded when it was written: it is {size} bytes in the store, {recorded} bytes were "
            "recorded"
        )

    def _changed(self, what: str) -> ArtifactIntegrityError:
        reference = self._reference
        return ArtifactIntegrityError(
            f"The artifact {reference.uri} written by {reference.producer.describe()} does not match the "
            f"{what}. It was modified or truncated in the store; re-run the producing task."
        )


class _ValueWriter:
    """Writes the artifacts of one XCom value into one fresh folder; removes them on failure."""

    def __init__(self, manager: ArtifactManager, producer: Producer) -> None:
        self.manager = manager
        self.producer = producer
        self.folder: str | None = None
        self.count = 0

    def write_leaf(self, value: Any) -> Any:
        if isinstance(value, ArtifactRef):
            return self.write_handle(value)
        settings = self.manager.settings
        declined: list[str] = []
        for serializer in self.manager.registry.candidates(value, settings):
            try:
                return self.write(value, serializer, qualified_name(type(value)))
            except SerializerDeclined as err:
                declined.append(f"{serializer.name}: {err}")
                log.warning("Serializer %s declined %s; trying the next one.", serializer.name, err)
        value_type = qualified_name(type(value))
        refused = [n for n in self.manager.registry.declining(value, settings) if n != "cloudpickle"]
        if refused:
            declined.append(f"the serializer(s) {', '.join(refused)} do not accept this particular value")
        reason = "; ".join(declined) or "no serializer is registered for it or its base classes"
        if not settings.allow_pickle:
            reason += "; the pickle fallback is disabled ([mlops] allow_pickle = False)"
        raise UnsupportedTypeError(
            f"Cannot store a value of type {value_type} returned by {self.producer.describe()}: "
            f"{reason}. {_HOW_TO_REGISTER}"
        )

    def _new_folder(self) -> str:
        self.manager.abort_earlier_uploads(self.producer)
        return self.manager.store.new_write_dir(self.producer)

    def write(self, value: Any, serializer: Serializer, value_type: str) -> dict[str, Any]:
        store, settings = self.manager.store, self.manager.settings
        if self.folder is None:
            self.folder = self._new_folder()
        index = self.count
        self.count += 1
        fmt = serializer.format_for(value, settings)
        data_url = f"{self.folder}/{index}{fmt.extension}"
        early_preview = (
            _helpers().submit(self._preview, serializer, value, {})
            if serializer.preview_aside(value)
            else None
        )
        # One hash pass over the bytes gives the content hash (past one chunk, the sha256 of the
        # chunks' BLAKE3 digests) and, for tables, the digests their partial reads check.
        digests = chunks.ChunkDigests()
        try:
            with store.open_write(data_url, digests) as out:
                details = serializer.write(value, out, settings)
        except (ArtifactError, SerializerDeclined):
            if early_preview is not None:
                early_preview.cancel()
            raise
        except Exception as err:
            if early_preview is not None:
                early_preview.cancel()
            raise UnsupportedTypeError(
                f"Serializer {serializer.name!r} failed to write a value of type {value_type} returned "
                f"by {self.producer.describe()}: {type(err).__name__}: {err}. {_HOW_TO_REGISTER}"
            ) from err
        preview = early_preview.result() if early_preview else self._preview(serializer, value, details)
        sidecars: dict[str, bytes] = details.pop(SIDECARS, None) or {}
        chunk_bytes = digests.chunk_bytes if digests.chunked else None  # else: the bytes' sha256
        if chunk_bytes is not None and isinstance(serializer, TableSerializer):
            sidecars[chunks.SIDECAR] = digests.sidecar()
        # The small objects beside the data, written together once the manifest is known.
        objects = {f"{self.folder}/{index}.{suffix}": payload for suffix, payload in sidecars.items()}
        if sidecars:
            details["sidecars"] = {
                suffix: hashlib.sha256(payload).hexdigest() for suffix, payload in sidecars.items()
            }
        blob = store.share(data_url, out.sha256, fmt.extension) if settings.deduplicate else None
        signature = None
        if serializer.uses_pickle and settings.signing_key:
            signature = sign(settings.signing_key, out.sha256)
        reference = Reference(
            uri=data_url,
            type=value_type,
            serializer=serializer.name,
            format=fmt.name,
            format_version=fmt.version,
            size_bytes=out.size,
            sha256=out.sha256,
            producer=self.producer,
            summary=serializer.describe(value_type, details),
            details=details,
            signature=signature,
            blob=blob,
            chunk_bytes=chunk_bytes,
        )
        manifest = Manifest(
            artifact_id=uuid.uuid4().hex,
            reference=reference,
            media_type=fmt.media_type,
            created_at=_now(),
            versions={
                "python": platform.python_version(),
                "airflow_mlops_provider": __version__,
                **serializer.library_versions(value),
            },
            execution=lineage.execution(),
        )
        if preview is not None:
            objects[f"{self.folder}/{index}.preview.json"] = preview
        objects[f"{self.folder}/{index}.manifest.json"] = manifest.to_json()
        store.put_many(objects)
        if blob is not None and not store.exists(blob):
            raise ArtifactStoreError(
                f"The shared object {blob} for the artifact {data_url} returned by "
                f"{self.producer.describe()} was deleted while the task wrote it (an `airflow mlops gc` "
                "running at the same moment). Nothing refers to it yet; let the task retry."
            )
        lineage.report_asset(reference, output=True)
        return reference.to_row()

    def write_handle(self, handle: ArtifactRef[Any]) -> Any:
        """A task returns a handle it received: store a reference to the same bytes, never the handle.

        The data object (and its sidecars and preview) is copied into this value's write folder (a
        server-side copy on object stores), or, for a deduplicated artifact, linked to the same
        shared object: purging or garbage-collecting the upstream's folder leaves this one readable.
        JSON values that hold references of their own, and inline values, are written afresh.
        """
        reference = handle.reference
        if reference is None:
            return codec.encode(handle.load(), leaf=self.write_leaf)
        try:
            serializer: Serializer | None = self.manager.serializer(reference)
        except LookupError:  # not installed here: the bytes can still be copied
            serializer = None
        if getattr(serializer, "returns_encoded", False):  # its references live in the upstream's folder
            return codec.encode(handle.load(), leaf=self.write_leaf)
        store = self.manager.store
        if self.folder is None:
            self.folder = self._new_folder()
        index = self.count
        self.count += 1
        name = posixpath.basename(reference.uri)
        data_url = f"{self.folder}/{index}{name[len(name.split('.', 1)[0]) :]}"
        # ``copied_from`` names where the bytes first came from (a copy of a copy keeps it).
        details = {"copied_from": reference.uri, **reference.details}
        copy = dataclasses.replace(reference, uri=data_url, producer=self.producer, details=details)
        try:
            if reference.blob is not None:
                store.put_bytes(layout.link(data_url, reference.sha256), b"")
                if not store.exists(reference.blob):
                    raise self.manager.missing(reference)
            else:
                store.copy(reference.uri, data_url)
            for suffix in reference.details.get("sidecars") or {}:
                store.copy(reference.sibling(suffix), copy.sibling(suffix))
            with contextlib.suppress(ArtifactNotFoundError):
                store.copy(reference.preview_uri, copy.preview_uri)
        except ArtifactNotFoundError as err:
            raise self.manager.missing(reference) from err
        try:
            source = Manifest.from_json(store.get_bytes(reference.manifest_uri))
            media_type, versions = source.media_type, source.versions
        except (ArtifactNotFoundError, ValueError, KeyError, TypeError):
            media_type = serializer.media_type if serializer else Serializer.media_type
            versions = {}
        manifest = Manifest(
            artifact_id=uuid.uuid4().hex,
            reference=copy,
            media_type=media_type,
            created_at=_now(),
            versions={**versions, "airflow_mlops_provider": __version__},
            execution=lineage.execution(),
        )
        store.put_bytes(copy.manifest_uri, manifest.to_json())
        lineage.report_asset(copy, output=True)
        return copy.to_row()

    def _preview(self, serializer: Serializer, value: Any, details: dict[str, Any]) -> bytes | None:
        """The serializer's preview as JSON bytes; a failing preview never fails the task."""
        try:
            preview = serializer.preview(value, details)
            return None if preview is None else previews.encode(preview)
        except Exception:
            log.warning("Could not compute a preview with %s", serializer.name, exc_info=True)
            return None

    def rollback(self) -> None:
        if self.folder is not None:
            try:
                self.manager.store.delete_dir(self.folder)
            except Exception:
                log.warning("Could not remove the partial artifacts in %s", self.folder, exc_info=True)


@lru_cache(maxsize=4)
def _configured(settings: ArtifactSettings) -> ArtifactManager:
    return ArtifactManager(settings)


#: Below this many bytes a read hashes in its own thread: a hand-off costs more than the hash.
_OVERLAP_BYTES = 1 << 20


@lru_cache(maxsize=1)
def _helpers() -> ThreadPoolExecutor:
    """The threads that overlap previews and hashes with I/O, made once per process (not per
    value: starting threads cost more than a small value's whole write)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlops")


# A forked child (Celery prefork, Airflow's task supervisor) has none of its parent's threads.
os.register_at_fork(after_in_child=_helpers.cache_clear)
