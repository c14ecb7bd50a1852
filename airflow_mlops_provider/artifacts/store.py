"""The artifact store: one folder (or bucket prefix) reached through Airflow's ObjectStoragePath.

Writes are atomic from a reader's point of view: on object stores the object only appears when
its (multipart) upload completes, and a failed upload is aborted; on local disks bytes go to a
temporary name that is renamed into place. Readers also check size and content hash, so even a
torn write on an exotic filesystem is refused rather than returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactStoreError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fsspec import AbstractFileSystem

    from airflow_mlops_provider.artifacts.manifest import Producer

# S3 keys are limited to 1,024 bytes; each id component is capped so the whole key fits.
MAX_KEY_BYTES = 1024
_COMPONENT_MAX = 120
# Shared, content-addressed data objects ([mlops] deduplicate) live under <root>/_cas/sha256/.
CONTENT_PREFIX = "_cas/sha256"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


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


class HashingWriter:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._sha.update(view)
        self._raw.write(view)
        self.size += view.nbytes
        return view.nbytes

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
        return self._sha.hexdigest()


class ArtifactStore:
    """Reads and writes artifact objects under one root URL.

    :param root: ``s3://bucket/prefix``, ``file:///path`` or any ObjectStoragePath URL.
    :param conn_id: Airflow connection used to reach the root (ignored by the local filesystem).
    """

    def __init__(self, root: str, conn_id: str | None = None) -> None:
        self.root = root.rstrip("/")
        self.conn_id = conn_id

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
            return self._root_path.fs

    @cached_property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        return "file" in protocols or "local" in protocols

    @cached_property
    def _root_fs_path(self) -> str:
        return self._root_path.path.rstrip("/")

    # -- layout ---------------------------------------------------------------------------------

    def new_write_dir(self, producer: Producer) -> str:
        """A fresh folder URL for one XCom value: dag, run, task, map index, key and try apart."""
        parts = [
            f"dag_id={safe_component(producer.dag_id)}",
            f"run_id={safe_component(producer.run_id)}",
            f"task_id={safe_component(producer.task_id)}",
            f"map_index={producer.map_index}",
            f"key={safe_component(producer.key)}",
            f"try={producer.try_number}-{uuid.uuid4().hex[:12]}",
        ]
        url = "/".join([self.root, *parts])
        key_bytes = len(self.fs_path(url).encode()) + 64  # room for file names
        if key_bytes > MAX_KEY_BYTES:
            raise ArtifactStoreError(
                f"Artifact keys under {self.root} would be {key_bytes} bytes, over the {MAX_KEY_BYTES}-byte "
                "limit of S3 keys. Use a shorter [mlops] artifact_root prefix."
            )
        return url

    def content_url(self, sha256: str, extension: str = "") -> str:
        """The content address of bytes with this hash (``[mlops] deduplicate``)."""
        return f"{self.root}/{CONTENT_PREFIX}/{sha256[:2]}/{sha256}{extension}"

    def share(self, url: str, sha256: str, extension: str = "") -> str:
        """Move a freshly written object to its content address; return that address.

        A zero-byte link ``<n>.sha256-<hex>`` is written beside ``url`` first, so garbage collection
        sees the object as used before it moves. The move replaces an identical object written
        earlier, which also renews its modification time (gc keeps objects younger than its grace
        period): deduplication saves storage, not the upload.
        """
        folder, _, name = url.rpartition("/")
        self.put_bytes(f"{folder}/{name.split('.', 1)[0]}.sha256-{sha256}", b"")
        target = self.content_url(sha256, extension)
        source_path, target_path = self.fs_path(url), self.fs_path(target)
        with self._errors("write", target):
            if self.is_local:
                self.fs.makedirs(posixpath.dirname(target_path), exist_ok=True)
                os.replace(source_path, target_path)  # atomic, even over an existing copy
            else:
                self.fs.mv(source_path, target_path)
        return target

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
            if action == "read":
                raise ArtifactNotFoundError(f"No object at {url}.") from err
            raise ArtifactStoreError(
                f"Could not {action} {url}: the bucket or folder does not exist ({err}). Create it, or "
                f"point [mlops] artifact_root (now {self.root}) at an existing one."
            ) from err
        except Exception as err:
            via = f" through connection {self.conn_id!r}" if self.conn_id and not self._maybe_local else ""
            raise ArtifactStoreError(
                f"Could not {action} {url}{via}: {type(err).__name__}: {err}. Check that the artifact "
                f"root {self.root} ([mlops] artifact_root) is reachable and that the connection's "
                "credentials may read and write there."
            ) from err

    @property
    def _maybe_local(self) -> bool:
        return self.root.startswith("file://")

    @contextlib.contextmanager
    def open_write(self, url: str) -> Iterator[HashingWriter]:
        """Stream bytes to ``url``; the object becomes visible only if the block exits cleanly."""
        path = self.fs_path(url)
        with self._errors("write", url):
            fs = self.fs
            if self.is_local:
                fs.makedirs(posixpath.dirname(path), exist_ok=True)
                target = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            else:
                target = path
            raw = fs.open(target, "wb")
        writer = HashingWriter(raw)
        try:
            yield writer
        except BaseException:
            self._abort(raw, target)
            raise
        with self._errors("write", url):
            raw.close()
            if target != path:
                fs.mv(target, path)

    def _abort(self, raw: Any, target: str) -> None:
        with contextlib.suppress(Exception):
            if hasattr(raw, "discard"):
                raw.discard()  # aborts the multipart upload: nothing appears
                raw.closed = True  # so that garbage collection does not try to complete it
            else:
                raw.close()
        with contextlib.suppress(Exception):
            if self.is_local:
                self.fs.rm(target)

    def put_bytes(self, url: str, data: bytes) -> None:
        with self.open_write(url) as out:
            out.write(data)

    def get_bytes(self, url: str, size: int | None = None) -> bytes:
        """The whole object, in one request unless it is large.

        Asked for the whole object, s3fs first looks its size up (a HEAD) to decide on a concurrent
        chunked download, which only pays off for large objects; a read "from byte 0" skips that
        for manifests, previews and data objects known (``size``) to be small.
        """
        path = self.fs_path(url)
        with self._errors("read", url):
            chunk = getattr(self.fs, "default_block_size", None) or 0
            if self.is_local or (size is not None and size > chunk):
                return self.fs.cat_file(path)
            return self.fs.cat_file(path, start=0)

    def open_read(self, url: str, size: int | None = None) -> BinaryIO:
        """A seekable binary stream for partial reads.

        On object stores every read is one ranged request (no read-ahead cache): Parquet readers
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

    def delete_dir(self, url: str) -> None:
        path = self.fs_path(url)
        if path == self._root_fs_path:
            raise ArtifactError(f"Refusing to delete the artifact root {self.root}.")
        with self._errors("delete", url):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

    def list_files(self, url: str) -> list[str]:
        """URLs of every object under ``url`` (recursively)."""
        path = self.fs_path(url)
        with self._errors("list", url):
            found = self.fs.find(path)
        prefix = self._root_fs_path
        out = []
        for item in found:
            item = item if item.startswith("/") or not prefix.startswith("/") else "/" + item.lstrip("/")
            out.append(self.root + item[len(prefix) :])
        return out
