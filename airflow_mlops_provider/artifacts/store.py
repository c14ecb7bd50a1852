"""The artifact store: one folder (or bucket prefix) reached through Airflow's ObjectStoragePath.

Writes are atomic from a reader's point of view: on object stores the object only appears when
its (multipart) upload completes, and a failed upload is aborted; on local disks bytes go to a
temporary name that is renamed into place. Readers also check size and content hash, so even a
torn write on an exotic filesystem is refused rather than returned. Uploads a killed worker could
not abort are listed by :meth:`ArtifactStore.pending_uploads` (a retry and ``airflow mlops gc``
abort them; a bucket lifecycle rule is the backstop).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import queue
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactStoreError,
    BucketNotFoundError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pyarrow as pa
    from fsspec import AbstractFileSystem

    from airflow_mlops_provider.artifacts.manifest import Producer

# S3 keys are limited to 1,024 bytes (layout.safe_component caps each id segment to fit).
MAX_KEY_BYTES = 1024
S3_SCHEMES = ("s3", "s3a", "s3n")
# Attempts per request on S3 (botocore's retries; s3fs's own retry loop is turned off so the two do
# not multiply), unless the connection's ``config_kwargs`` sets ``retries`` itself.
S3_ATTEMPTS = 3

_TIMEOUT_ERRORS = {"TimeoutError", "timeout", "ReadTimeoutError", "ConnectTimeoutError", "FSTimeoutError"}
_CONNECTION_ERRORS = {
    "ConnectionError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "ClientConnectionError",
    "ClientPayloadError",
    "ServerDisconnectedError",
    "IncompleteRead",
}
_DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the filesystem",
    errno.EROFS: "read-only filesystem",
}


@dataclass(frozen=True)
class ObjectInfo:
    """One object of the store: its path below the root, size and modification time (if known)."""

    relative: str
    size: int
    modified: datetime | None


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload begun below the root and never completed nor aborted: invisible to
    readers, but its parts are stored (and billed) until it is aborted."""

    relative: str
    key: str
    upload_id: str
    initiated: datetime | None


def _modified(details: dict[str, Any]) -> datetime | None:
    """The modification time in an fsspec ``info`` dict (each filesystem names it differently)."""
    for name in ("LastModified", "last_modified", "mtime", "updated", "modified", "created"):
        value = details.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


#: Bytes written before hashing moves to threads of its own (below it a thread costs more).
_HASH_IN_THREADS_FROM = 1 << 20


class _HashLane:
    """One hash pass in a thread of its own, fed in order, so the writer does not wait for it."""

    def __init__(self, update: Callable[[memoryview], Any]) -> None:
        self._update = update
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=16)  # bounds what is held
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlops-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._update(memoryview(item))
                except BaseException as err:  # re-raised by finish()
                    self._error = err

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


#: Local reads from this size on go into pyarrow's memory pool (see :meth:`ArtifactStore.get_bytes`).
_POOLED_READ_FROM = 1 << 20


def _immutable(data: Any) -> bool:
    """Whether the bytes of ``data`` cannot change after ``write`` returns: ``bytes``, and the
    immutable buffers pyarrow's writers hand over (Arrow IPC's compressed column buffers, 60 MB of
    a 1M-row frame not copied). The hash lane's reference keeps such a buffer alive."""
    if type(data) is bytes:
        return True
    pyarrow = sys.modules.get("pyarrow")  # not imported: data cannot be one of its buffers
    return pyarrow is not None and type(data) is pyarrow.Buffer and not data.is_mutable


class HashingWriter:
    """A write-only stream that hashes and counts what passes through it.

    ``hasher`` (a ``hashlib``-like ``update`` / ``hexdigest``) gives the content hash: the object's
    sha256 by default; for artifacts the manager passes
    :class:`~airflow_mlops_provider.artifacts.chunks.ChunkDigests`, whose one pass gives the chunk
    digests and the hash. Past the first MiB it runs in a thread of its own, in order, on copies of
    what was written: the serializer's next buffers are encoded meanwhile. :meth:`finish` waits.

    The first error the store's stream raises is kept in :attr:`failure`: a serializer may wrap it
    in its own error (or swallow it), and the store still reports it as the store fault it is.
    """

    def __init__(self, raw: BinaryIO, hasher: Any = None) -> None:
        self._raw = raw
        self._hasher = hashlib.sha256() if hasher is None else hasher
        self._lane: _HashLane | None = None
        self.size = 0
        self.closed = False
        self.failure: BaseException | None = None

    def write(self, data: Any) -> int:
        if self.failure is not None:  # never write past a failure: the object would have a hole
            raise OSError(f"The artifact store failed earlier in this write: {self.failure}")
        view = memoryview(data).cast("B")
        try:
            self._raw.write(view)
        except Exception as err:
            self.failure = err
            raise
        self.size += view.nbytes
        if self._lane is None and self.size >= _HASH_IN_THREADS_FROM:
            self._lane = _HashLane(self._hasher.update)
        if self._lane is None:
            self._hasher.update(view)
        else:
            # A copy unless immutable: a writer may reuse its buffer once write() returns.
            self._lane.put(data if _immutable(data) else view.tobytes())
        return view.nbytes

    def finish(self) -> None:
        """Wait for the hash pass if it still runs (idempotent)."""
        lane, self._lane = self._lane, None
        if lane is not None:
            lane.finish()

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:  # the store closes the underlying file when the write commits
        self.closed = True

    @property
    def sha256(self) -> str:
        """The content hash (see ``hasher``), once every byte is hashed."""
        self.finish()
        return self._hasher.hexdigest()


def _read_ranges(size: int, connections: int, part_bytes: int) -> int:
    """The range size of a whole read of ``size`` bytes through s3fs's concurrent ``cat_file``.

    s3fs fetches ranges in waves of ``connections``, each wave waiting for its slowest request and
    holding its ranges in memory beside the whole object. So: as few waves as keep a wave within
    ``4 * part_bytes`` per connection (64 MiB: at most 640 MiB held besides the object), each wave
    full, and ranges of at least ``part_bytes``. A 1 GB object is two waves of 10 ranges of 51 MiB,
    not seven waves of 16 MiB ranges, the last one partly idle.
    """
    waves = -(-size // (connections * 4 * part_bytes))
    return max(part_bytes, -(-size // (waves * connections)))


def _without_expect_continue(fs: Any) -> None:
    """Send uploads without ``Expect: 100-continue``: aiohttp waits for the ``100 Continue`` with no
    timeout at all, so a PUT to an endpoint that accepts the connection and never answers would hang
    whatever the read timeout."""
    from botocore.handlers import add_expect_header

    fs.s3.meta.events.unregister("before-call.s3", add_expect_header)


class ArtifactStore:
    """Reads and writes artifact objects under one root URL.

    :param root: ``s3://bucket/prefix``, ``file:///path`` or any ObjectStoragePath URL.
    :param conn_id: Airflow connection used to reach the root (ignored by the local filesystem).
    """

    def __init__(self, root: str, conn_id: str | None = None, timeout: float = 60.0) -> None:
        self.root = root.rstrip("/")
        self.conn_id = conn_id
        self.timeout = timeout
        self._warm_up_started = False

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r}, conn_id={self.conn_id!r})"

    @cached_property
    def _root_path(self) -> Any:
        from airflow.sdk import ObjectStoragePath

        conn_id = None if self.root.startswith("file://") else self.conn_id
        return ObjectStoragePath(self.root, conn_id=conn_id)

    @cached_property
    def fs(self) -> AbstractFileSystem:
        with self._errors("connect to", self.root):
            scheme = self.root.split("://", 1)[0]
            if scheme == "file":
                # Not through ObjectStoragePath: resolving a filesystem loads every provider's
                # filesystems first (the amazon provider's pulls in boto3: a tenth of a second).
                from fsspec.implementations.local import LocalFileSystem

                return LocalFileSystem()
            if scheme not in S3_SCHEMES:
                return self._root_path.fs
            from airflow.sdk.io.fs import get_fs

            # Bounded requests: botocore's connect and read timeouts, and a bounded number of attempts
            # (s3fs would otherwise retry botocore's retries: 25 attempts, for ever on a silent endpoint).
            fs = get_fs(scheme, self.conn_id, {"connect_timeout": self.timeout, "read_timeout": self.timeout})
            fs.config_kwargs.setdefault("retries", {"total_max_attempts": S3_ATTEMPTS, "mode": "standard"})
            fs.retries = 1
            # Other processes delete objects (gc, lifecycle rules): a listing cached by this one would
            # make a deleted object look present, with its old size.
            fs.dircache.use_listings_cache = False
            fs.dircache.clear()
            _without_expect_continue(fs)
            return fs

    def warm_up(self, *, connect: bool = False) -> None:
        """Import the remote store's client libraries on a background thread, once per process, and
        with ``connect`` resolve the connection and make the client there too.

        A task process imports s3fs, aiobotocore and the amazon provider's filesystem (about half a
        second) at its first store request, then makes a botocore session and an S3 client (about a
        third of a second more); started when the task starts, that overlaps with the task's own
        work. ``connect`` only where another thread may resolve connections (the caller knows).
        """
        if self.root.split("://", 1)[0] in S3_SCHEMES and not self._warm_up_started:
            self._warm_up_started = True  # once per process: later tasks of dag.test() find it done
            threading.Thread(target=self._warm_up, args=(connect,), name="mlops-warm-up", daemon=True).start()

    def _warm_up(self, connect: bool) -> None:
        with contextlib.suppress(Exception):  # a broken configuration is reported by the first real use
            import airflow.providers.amazon.aws.fs.s3  # noqa: F401
            import s3fs  # noqa: F401

            if connect:
                self.fs  # noqa: B018 (builds and caches the client)

    @cached_property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        return "file" in protocols or "local" in protocols

    @cached_property
    def _root_fs_path(self) -> str:
        if self.root.split("://", 1)[0] in (*S3_SCHEMES, "file"):
            # Not through ObjectStoragePath: it would resolve the connection and build a second
            # filesystem (half a second in a fresh task process) only to split the URL.
            return self.fs._strip_protocol(self.root).rstrip("/")
        return self._root_path.path.rstrip("/")

    # -- layout ---------------------------------------------------------------------------------

    def new_write_dir(self, producer: Producer) -> str:
        """A fresh folder URL for one XCom value: dag, run, task, map index, key and try apart."""
        url = self.url(layout.WriteFolder.of(producer, uuid.uuid4().hex[:12]).relative)
        key_bytes = len(self.fs_path(url).encode()) + 64  # room for file names
        if key_bytes > MAX_KEY_BYTES:
            raise ArtifactStoreError(
                f"Artifact keys under {self.root} would be {key_bytes} bytes, over the {MAX_KEY_BYTES}-byte "
                "limit of S3 keys. Use a shorter [mlops] artifact_root prefix."
            )
        return url

    def content_url(self, sha256: str, extension: str = "") -> str:
        """The content address of bytes with this hash (``[mlops] deduplicate``)."""
        return self.url(layout.SharedObject(sha256, extension).relative)

    def share(self, url: str, sha256: str, extension: str = "") -> str:
        """Move a freshly written object to its content address; return that address.

        A zero-byte link ``<n>.sha256-<hex>`` is written beside ``url`` first, so garbage collection
        sees the object as used before it moves. The move replaces an identical object written
        earlier, which also renews its modification time (gc keeps objects younger than its grace
        period): deduplication saves storage, not the upload.
        """
        self.put_bytes(layout.link(url, sha256), b"")
        target = self.content_url(sha256, extension)
        source_path, target_path = self.fs_path(url), self.fs_path(target)
        with self._errors("write", target):
            if self.is_local:
                self.fs.makedirs(posixpath.dirname(target_path), exist_ok=True)
                os.replace(source_path, target_path)  # atomic, even over an existing copy
            else:
                self.fs.mv(source_path, target_path)
        return target

    def url(self, relative: str) -> str:
        """The URL of a path below the root (as :mod:`.layout` builds them)."""
        return f"{self.root}/{relative}" if relative else self.root

    def fs_path(self, url: str) -> str:
        """The filesystem path of a URL under the root; refuses anything outside it."""
        url = url.rstrip("/")
        if url != self.root and not url.startswith(self.root + "/"):
            raise ArtifactError(f"{url} is outside the configured artifact root {self.root}.")
        relative = url[len(self.root) :].lstrip("/")
        if any(part in ("..", ".") for part in relative.split("/")):
            raise ArtifactError(f"{url} is outside the configured artifact root {self.root}.")
        return posixpath.join(self._root_fs_path, relative) if relative else self._root_fs_path

    # -- io -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, url: str) -> Iterator[None]:
        try:
            yield
        except ArtifactError:
            raise
        except FileNotFoundError as err:
            if self._no_bucket(err):
                raise self.bucket_missing(action, url) from err
            if action in ("read", "copy", "inspect"):
                raise ArtifactNotFoundError(f"No object at {url}.") from err
            raise ArtifactStoreError(
                f"Could not {action} {url}{self._via}: the folder does not exist ({err}). Create it, or "
                f"point [mlops] artifact_root (now {self.root}) at an existing one."
            ) from err
        except Exception as err:
            raise self.failed(action, url, err) from err

    @property
    def _via(self) -> str:
        return f" through connection {self.conn_id!r}" if self.conn_id and not self._maybe_local else ""

    @property
    def bucket(self) -> str:
        """The bucket of the root (its first path segment on local disks)."""
        return self.root.split("://", 1)[-1].split("/", 1)[0]

    def _no_bucket(self, err: BaseException) -> bool:
        """Whether a not-found error is about the bucket (S3's ``NoSuchBucket``), not an object."""
        if self._maybe_local:
            return False
        seen: BaseException | None = err
        for _ in range(10):
            if seen is None:
                return False
            code = (getattr(seen, "response", None) or {}).get("Error", {}).get("Code")
            if code == "NoSuchBucket" or "bucket does not exist" in str(seen).lower():
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    def bucket_missing(self, action: str, url: str) -> BucketNotFoundError:
        """The error for a root whose bucket does not exist (a typo, another account or region)."""
        return BucketNotFoundError(
            f"Could not {action} {url}{self._via}: the bucket {self.bucket!r} does not exist. The artifact "
            f"root {self.root} ([mlops] artifact_root) names a bucket this connection cannot see: create "
            "the bucket, or fix [mlops] artifact_root (or the connection's account, endpoint or region)."
        )

    def failed(self, action: str, url: str, err: BaseException) -> ArtifactStoreError:
        """The error for a store fault: the URL, the root, the connection and the cause."""
        cause = self._cause(err)
        cause = f"{cause}: " if cause else ""
        return ArtifactStoreError(
            f"Could not {action} {url}{self._via}: {cause}{type(err).__name__}: {err}. "
            f"Check that the artifact root {self.root} ([mlops] artifact_root) is reachable, has room, "
            "and that the connection's credentials may read and write there."
        )

    def _cause(self, err: BaseException) -> str:
        """What went wrong, in words (no space, timed out, connection lost), from the error chain."""
        seen: BaseException | None = err
        for _ in range(10):
            if seen is None:
                break
            if isinstance(seen, OSError) and seen.errno in _DISK_ERRNOS:
                return _DISK_ERRNOS[seen.errno]
            names = {cls.__name__ for cls in type(seen).__mro__}
            if names & _TIMEOUT_ERRORS:
                return f"timed out ([mlops] store_timeout_seconds = {self.timeout:g})"
            if names & _CONNECTION_ERRORS or isinstance(seen, ConnectionError):
                return "connection to the store lost or refused"
            seen = seen.__cause__ or seen.__context__
        return ""

    @property
    def _maybe_local(self) -> bool:
        return self.root.startswith("file://")

    @contextlib.contextmanager
    def open_write(self, url: str, hasher: Any = None) -> Iterator[HashingWriter]:
        """Stream bytes to ``url``; the object becomes visible only if the block exits cleanly.

        ``hasher`` gives the content hash (see :class:`HashingWriter`; the bytes' sha256 by default).

        The file is never used as a context manager: fsspec's ``__exit__`` (and ``__del__``) call
        ``close()``, which completes the upload, partial or not. On any failure the multipart upload
        is aborted and the file marked closed, so nothing can complete it later.
        """
        path = self.fs_path(url)
        with self._errors("write", url):
            fs = self.fs
            if self.is_local:
                target = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
                try:
                    raw = fs.open(target, "wb")
                except FileNotFoundError:  # the folder's first object (the others skip a mkdir)
                    fs.makedirs(posixpath.dirname(path), exist_ok=True)
                    raw = fs.open(target, "wb")
            elif self.has_multipart_uploads:
                from airflow_mlops_provider.artifacts.uploads import ConcurrentUpload

                target = path
                raw = ConcurrentUpload(fs, target)  # parts in parallel: s3fs sends one at a time
            else:
                target = path
                raw = fs.open(target, "wb")
        writer = HashingWriter(raw, hasher)
        try:
            yield writer
            writer.finish()
        except BaseException as err:
            with contextlib.suppress(Exception):
                writer.finish()
            self._abort(raw, target)
            if writer.failure is not None and not isinstance(err, ArtifactStoreError):
                # The sink failed: whatever the serializer made of it, it is a store fault.
                raise self.failed("write", url, writer.failure) from writer.failure
            raise
        if writer.failure is not None:  # the serializer swallowed the sink's error
            self._abort(raw, target)
            raise self.failed("write", url, writer.failure) from writer.failure
        try:
            with self._errors("write", url):
                raw.close()  # uploads the last part and completes the upload
                if target != path:
                    fs.mv(target, path)
        except BaseException:
            self._abort(raw, target)  # the last part or the completion failed: abort the upload
            raise

    def _abort(self, raw: Any, target: str) -> None:
        """Throw a failed write away: abort its multipart upload, never let anything complete it."""
        try:
            with contextlib.suppress(Exception):
                if hasattr(raw, "discard"):
                    raw.discard()  # aborts the multipart upload: nothing appears
                else:
                    raw.close()
        finally:
            # Even if the abort request failed (the upload then waits for a retry, gc or the
            # bucket's lifecycle rule): a file object that is not closed completes its upload
            # when garbage-collected.
            with contextlib.suppress(Exception):
                raw.buffer = None
            with contextlib.suppress(Exception):
                raw.closed = True
        with contextlib.suppress(Exception):
            if self.is_local:
                self.fs.rm(target)

    # -- unfinished multipart uploads -----------------------------------------------------------

    @property
    def has_multipart_uploads(self) -> bool:
        """Whether the store is S3, where a failed upload can leave parts behind."""
        return self.root.split("://", 1)[0] in S3_SCHEMES

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """The unfinished multipart uploads below ``prefix`` (relative to the root; none off S3).

        One request per 1,000 uploads (S3's ``ListMultipartUploads`` with a key prefix).
        """
        if not self.has_multipart_uploads:
            return []
        url = self.url(prefix.strip("/"))
        bucket, key, _ = self.fs.split_path(self.fs_path(url))  # type: ignore[attr-defined]
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{key}/" if key else ""}
        found: list[PendingUpload] = []
        with self._errors("list the unfinished uploads under", url):
            while True:
                page = self.fs.call_s3("list_multipart_uploads", **request)  # type: ignore[attr-defined]
                for upload in page.get("Uploads", []):
                    relative = self._relative(f"{bucket}/{upload['Key']}")
                    initiated = _modified({"created": upload.get("Initiated")})
                    found.append(PendingUpload(relative, upload["Key"], upload["UploadId"], initiated))
                if not page.get("IsTruncated"):
                    return found
                request["KeyMarker"] = page.get("NextKeyMarker", "")
                request["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    def upload_size(self, upload: PendingUpload) -> int | None:
        """Bytes of the parts an unfinished upload holds (``None`` if they cannot be listed)."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": upload.key, "UploadId": upload.upload_id}
        total = 0
        try:
            while True:
                page = self.fs.call_s3("list_parts", **request)  # type: ignore[attr-defined]
                total += sum(int(part.get("Size") or 0) for part in page.get("Parts", []))
                if not page.get("IsTruncated"):
                    return total
                request["PartNumberMarker"] = page["NextPartNumberMarker"]
        except Exception:
            return None

    def abort_upload(self, upload: PendingUpload) -> None:
        """Abort an unfinished upload; its parts are deleted (already gone: nothing to do)."""
        # Already completed or aborted (FileNotFoundError: NoSuchUpload): nothing left to abort.
        with (
            self._errors("abort the upload of", self.url(upload.relative)),
            contextlib.suppress(FileNotFoundError),
        ):
            self.fs.call_s3(  # type: ignore[attr-defined]
                "abort_multipart_upload", Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id
            )

    def copy(self, source: str, target: str) -> None:
        """Copy one object to a new URL under the root; the copy appears whole or not at all.

        Object stores copy server-side. A local store makes a hard link where it can: stored objects
        are never changed in place, so both names hold the same bytes without a second copy on disk
        (a cache hit or a returned handle costs no I/O), and deleting one name leaves the other.
        """
        source_path, target_path = self.fs_path(source), self.fs_path(target)
        with self._errors("copy", source):
            if self.is_local:
                self.fs.makedirs(posixpath.dirname(target_path), exist_ok=True)
                temporary = f"{target_path}.tmp-{uuid.uuid4().hex[:8]}"
                try:
                    try:
                        os.link(source_path, temporary)
                    except FileNotFoundError:
                        raise
                    except OSError:  # another device, or a filesystem without hard links
                        self.fs.copy(source_path, temporary)
                    os.replace(temporary, target_path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.remove(temporary)
                    raise
            else:
                self.fs.copy(source_path, target_path)

    def put_bytes(self, url: str, data: bytes) -> None:
        with self.open_write(url) as out:
            out.write(data)

    def put_many(self, objects: dict[str, bytes]) -> None:
        """Write small objects (an artifact's manifest, preview, sidecars). On an object store they
        go up together, one request each (s3fs's own concurrency), not one round trip after the
        other; each appears whole or not at all, and a failure of any raises."""
        if self.is_local or len(objects) < 2:
            for url, data in objects.items():
                self.put_bytes(url, data)
            return
        import asyncio

        fs = self.fs

        async def put_all() -> list[Any]:
            puts = (fs._pipe_file(self.fs_path(url), data) for url, data in objects.items())
            return await asyncio.gather(*puts, return_exceptions=True)

        outcomes = asyncio.run_coroutine_threadsafe(put_all(), fs.loop).result()
        for url, outcome in zip(objects, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                with self._errors("write", url):
                    raise outcome

    def get_bytes(self, url: str, size: int | None = None) -> bytes | pa.Buffer:
        """The whole object, in one request unless it is large: ``bytes``, or for a large local
        object a pyarrow buffer (both support ``len`` and ``memoryview``).

        Asked for the whole object, s3fs first looks its size up (a HEAD) to decide on a concurrent
        download in ranges, which only pays off for large objects; a read "from byte 0" skips that
        for manifests, previews and data objects known (``size``) to be small. A large object is read
        in ranges sized by :func:`_read_ranges`.

        A large local object is read into pyarrow's memory pool when pyarrow is loaded (it is with
        pandas): the pool reuses pages earlier reads freed, where a new ``bytes`` faults every page
        in afresh, which took three times as long as the copy itself (47 against 15 ms for 66 MB).
        """
        from airflow_mlops_provider.artifacts.uploads import PART_BYTES

        path = self.fs_path(url)
        with self._errors("read", url):
            if self.is_local:
                pyarrow = sys.modules.get("pyarrow")
                if pyarrow is not None and size is not None and size >= _POOLED_READ_FROM:
                    with pyarrow.OSFile(path) as source:
                        return source.read_buffer()
                return self.fs.cat_file(path)
            if size is not None and size > PART_BYTES:
                if self.has_multipart_uploads:
                    connections = max(1, getattr(self.fs, "max_concurrency", 1))
                    return self.fs.cat_file(path, chunksize=_read_ranges(size, connections, PART_BYTES))
                return self.fs.cat_file(path)
            return self.fs.cat_file(path, start=0)

    def open_read(self, url: str, size: int | None = None) -> BinaryIO:
        """A seekable binary stream for partial reads.

        On object stores every read is one ranged request (no read-ahead cache): table readers
        ask for exactly the column chunks they need and coalesce them, and the default 50 MB
        read-ahead would download most of the file for a one-column read. A known ``size`` saves
        the request that would look it up (a wrong one makes reads fail, never return other bytes).
        """
        path = self.fs_path(url)
        with self._errors("read", url):
            if self.is_local:
                return self.fs.open(path, "rb")
            if size is None:
                return self.fs.open(path, "rb", cache_type="none")
            raw = self.fs.open(path, "rb", cache_type="none", size=size)
            with contextlib.suppress(AttributeError):
                # s3fs looks the object up (a HEAD) before the first read unless its details are known.
                raw.details = {"name": path, "size": size, "type": "file"}
            return raw

    def size(self, url: str) -> int:
        path = self.fs_path(url)
        with self._errors("inspect", url):
            return int(self.fs.size(path))

    def exists(self, url: str) -> bool:
        path = self.fs_path(url)
        with self._errors("inspect", url):
            return bool(self.fs.exists(path))

    def info(self, url: str) -> ObjectInfo:
        """Size and modification time of one object, asked afresh (not from a listing cache).

        :raises ArtifactNotFoundError: there is no object at ``url``.
        """
        path = self.fs_path(url)
        with self._errors("inspect", url):
            self.fs.invalidate_cache(path)
            details = self.fs.info(path)
        return ObjectInfo(self._relative(path), int(details.get("size") or 0), _modified(details))

    def walk(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object below ``prefix`` (a path relative to the root; the whole store by default).

        The listing is fresh: other processes write and delete objects, and fsspec caches listings.
        """
        url = self.url(prefix.strip("/"))
        top = self.fs_path(url)
        with self._errors("list", url):
            self.fs.invalidate_cache(top)
            found = self.fs.find(top, detail=True) if self.fs.exists(top) else {}
        for name, details in sorted(found.items()):
            if details.get("type", "file") != "file":
                continue
            relative = self._relative(name)
            if relative:
                yield ObjectInfo(relative, int(details.get("size") or 0), _modified(details))

    def _relative(self, fs_path: str) -> str:
        """The path below the root of a filesystem path under it ('' for anything else)."""
        prefix = self._root_fs_path
        if prefix.startswith("/") and not fs_path.startswith("/"):
            fs_path = "/" + fs_path
        return fs_path[len(prefix) + 1 :] if fs_path.startswith(prefix + "/") else ""

    def delete_dir(self, url: str, *, prune_parents: bool = False) -> None:
        """Delete ``url`` and everything below it.

        :param prune_parents: also remove the folders above it that this leaves empty, up to the
            root (local disks only: object stores have no folders).
        """
        path = self.fs_path(url)
        if path == self._root_fs_path:
            raise ArtifactError(f"Refusing to delete the artifact root {self.root}.")
        with self._errors("delete", url):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        if prune_parents and self.is_local:
            parent = posixpath.dirname(path)
            while parent.startswith(self._root_fs_path + "/"):
                try:
                    os.rmdir(parent)
                except OSError:
                    return
                parent = posixpath.dirname(parent)

    def list_files(self, url: str) -> list[str]:
        """URLs of every object under ``url`` (recursively)."""
        path = self.fs_path(url)
        with self._errors("list", url):
            found = self.fs.find(path)
        return [self.url(relative) for relative in map(self._relative, found) if relative]
