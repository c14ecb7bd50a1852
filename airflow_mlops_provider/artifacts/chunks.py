"""Chunk digests: a digest per 1 MiB of a data object, so partial reads check every byte they use.

A column read or a streamed read fetches only part of the object: it checks each chunk it fetched
against the digest recorded for it when the object was written. The digests are stored beside the
data (a ``chunks.sha256`` sidecar) and :class:`VerifiedReader` serves reads from verified chunks only.

The chunks are hashed with BLAKE3 (about 3.5 times faster than SHA-256 here), and the SHA-256 of
the digest list (the sidecar's bytes) is the object's content hash (``Reference.sha256`` with
``Reference.chunk_bytes`` set), for every object above one chunk, table or not: a write hashes its
bytes once, not once for the object and once for its chunks, and a whole read checks the chunks on
all cores (:func:`content_sha256`). Objects of one chunk or less keep the plain sha256 of their
bytes. Sidecars written before BLAKE3 (a SHA-256 per chunk, for references whose
sha256 is that of the bytes) are still read: the sidecar's first line names its algorithm.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    import pyarrow as pa

#: Sidecar suffix of the digests (``<n>.chunks.sha256``).
SIDECAR = "chunks.sha256"
CHUNK_BYTES = 1 << 20
_DIGEST = hashlib.sha256().digest_size
# Chunks a reader keeps: a format reads a few small pieces (metadata, offsets) around each buffer.
_CACHED_CHUNKS = 8
# Threads a whole read's chunk hashes are spread over, at most (one per core below that).
_LANES = 4


#: Chunk sizes a reference may name (a forged or damaged row gets a clear error, not a huge loop).
MIN_CHUNK_BYTES, MAX_CHUNK_BYTES = 1 << 12, 1 << 30


#: Chunk digest algorithms: BLAKE3 for what this provider writes, SHA-256 for older sidecars.
BLAKE3, SHA256 = "blake3", "sha256"


def _new_hash(algorithm: str) -> Any:
    if algorithm == BLAKE3:
        import blake3  # releases the GIL while it hashes, as hashlib does

        return blake3.blake3()
    return hashlib.sha256()


def _digest(algorithm: str, data: Any) -> bytes:
    hasher = _new_hash(algorithm)
    hasher.update(data)
    return hasher.digest()


def _header(algorithm: str, chunk_bytes: int) -> bytes:
    """A sidecar's first line: the chunk size, after the algorithm unless it is the old SHA-256."""
    return b"%d\n" % chunk_bytes if algorithm == SHA256 else b"%s %d\n" % (algorithm.encode(), chunk_bytes)


class ChunkDigests:
    """Computes the digests of a byte stream as it is written (fed by the store's writer), and the
    content hash they give (:meth:`hexdigest`): a ``hashlib`` hash's interface, one pass.

    :param chunk_bytes: the chunk size (1 MiB by default).
    :param algorithm: the chunk digest, :data:`BLAKE3` (what the provider writes) or :data:`SHA256`.
    """

    def __init__(self, chunk_bytes: int | None = None, algorithm: str = BLAKE3) -> None:
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.algorithm = algorithm
        self._done: list[bytes] = []
        self._current = _new_hash(algorithm)
        self._whole: Any = hashlib.sha256()  # until a second chunk begins: a small object's content hash
        self._filled = 0

    @property
    def chunked(self) -> bool:
        """More than one chunk: the content hash is the sidecar's, not the bytes' own sha256."""
        return len(self._done) > 1 or (len(self._done) == 1 and self._filled > 0)

    def hexdigest(self) -> str:
        """The content hash: the sha256 of the sidecar, or of the bytes if they fit in one chunk."""
        if self.chunked:
            return hashlib.sha256(self.sidecar()).hexdigest()
        return self._whole.hexdigest()

    def update(self, view: memoryview) -> None:
        while view.nbytes:
            take = min(view.nbytes, self.chunk_bytes - self._filled)
            self._current.update(view[:take])
            if self._whole is not None:
                self._whole.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.chunk_bytes:
                self._done.append(self._current.digest())
                self._current, self._filled = _new_hash(self.algorithm), 0
            if self._whole is not None and self.chunked:
                self._whole = None  # more than one chunk: the sidecar's hash is the content hash

    def sidecar(self) -> bytes:
        """The stored form: the algorithm and chunk size on the first line, then the 32-byte digests
        in order."""
        last = [self._current.digest()] if self._filled else []
        return _header(self.algorithm, self.chunk_bytes) + b"".join(self._done + last)


def check_chunk_bytes(chunk_bytes: int) -> int:
    """``chunk_bytes`` if it is a chunk size a writer may have used, else ``ValueError``."""
    if not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk size {chunk_bytes} is outside {MIN_CHUNK_BYTES}..{MAX_CHUNK_BYTES} bytes")
    return chunk_bytes


def content_hasher(chunk_bytes: int | None) -> Any:
    """A streaming hasher of an object's content hash: its sha256 (``chunk_bytes`` ``None``) or the
    sha256 of its chunk digests. Feed it every byte with ``update``; compare ``hexdigest()``."""
    return hashlib.sha256() if chunk_bytes is None else _Root(chunk_bytes)


def content_sha256(
    data: bytes | memoryview | pa.Buffer,
    chunk_bytes: int | None,
    pool: Executor | None = None,
    *,
    inline: bool = True,
) -> Callable[[], str]:
    """The content hash of a whole object in memory, as a function that waits for it.

    A chunked object's chunks are hashed in up to one lane per core (BLAKE3 releases the GIL): the
    first lane in this thread unless ``inline`` is false (then all on ``pool``, and the caller gets
    on with decoding). ``pool`` tasks never wait on ``pool``: no lane can starve another.
    """
    if chunk_bytes is None:
        if inline or pool is None:
            digest = hashlib.sha256(data).hexdigest()
            return lambda: digest
        return pool.submit(lambda: hashlib.sha256(data).hexdigest()).result
    view = memoryview(data).cast("B")
    starts = range(0, view.nbytes, chunk_bytes)

    def digests(part: range) -> list[bytes]:
        return [_digest(BLAKE3, view[i : i + chunk_bytes]) for i in part]

    lanes = min(os.cpu_count() or 1, _LANES) if pool is not None else 1
    size = max(1, -(-len(starts) // lanes))
    parts = [starts[i : i + size] for i in range(0, len(starts), size)] or [starts]
    here = parts[0] if inline or pool is None else None
    pending = [pool.submit(digests, part) for part in parts if part is not here]  # type: ignore[union-attr]
    done = digests(here) if here is not None else []

    def result() -> str:
        found = done + [d for future in pending for d in future.result()]
        return hashlib.sha256(_header(BLAKE3, chunk_bytes) + b"".join(found)).hexdigest()

    return result


class _Root(ChunkDigests):
    """Checks a chunked reference: always the sidecar's hash, whatever the size of what was read
    (other bytes of one chunk never pass for the sidecar they would hash to)."""

    def __init__(self, chunk_bytes: int) -> None:
        super().__init__(chunk_bytes)
        self._whole = None  # never the content hash of a chunked reference

    def hexdigest(self) -> str:
        return hashlib.sha256(self.sidecar()).hexdigest()


def parse_sidecar(data: bytes, size: int) -> tuple[str, int, list[bytes]]:
    """``(algorithm, chunk_bytes, digests)`` from a sidecar, checked against the object's ``size``."""
    head, _, body = data.partition(b"\n")
    name, _, number = head.rpartition(b" ")
    algorithm = name.decode("ascii", "replace") or SHA256
    if algorithm not in (BLAKE3, SHA256):
        raise ValueError(f"unknown chunk digest {algorithm!r}")
    chunk_bytes = check_chunk_bytes(int(number))
    count = -(-size // chunk_bytes)
    if len(body) != count * _DIGEST:
        raise ValueError(f"{len(body)} bytes of digests for {count} chunks of {chunk_bytes} bytes")
    return algorithm, chunk_bytes, [body[i : i + _DIGEST] for i in range(0, len(body), _DIGEST)]


class VerifiedReader(io.RawIOBase):
    """A seekable read-only stream over ``raw`` that returns only bytes of verified chunks.

    Each read fetches the chunks it touches that are not cached (contiguous ones in one ranged
    request), hashes them and raises ``mismatch(chunk_index)`` on a digest that differs.
    :meth:`fork` gives another thread a reader of its own over the same object, so parts of it
    (record batches) can be fetched concurrently.

    :param open_raw: opens the data object, seekable (one ranged request per read on object stores);
        called at once (so a missing object fails here), and by each fork on its first read.
    :param size: its size as recorded at write time.
    :param chunk_bytes: the chunk size the digests were computed with.
    :param digests: one digest per chunk.
    :param mismatch: builds the error raised for a chunk whose bytes differ from the record.
    :param algorithm: the digest, :data:`BLAKE3` or :data:`SHA256` (sidecars written before BLAKE3).
    """

    def __init__(
        self,
        open_raw: Callable[[], BinaryIO],
        size: int,
        chunk_bytes: int,
        digests: list[bytes],
        mismatch: Callable[[int], Exception],
        algorithm: str = BLAKE3,
        *,
        _opened: bool = True,
    ) -> None:
        super().__init__()
        self._open_raw = open_raw
        self._raw: BinaryIO | None = open_raw() if _opened else None
        self._size, self._chunk = size, chunk_bytes
        self._digests, self._mismatch, self._algorithm = digests, mismatch, algorithm
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self._fetched = _Counter()

    @property
    def fetched_bytes(self) -> int:
        """What this reader and its forks read from the store (tests and benchmarks)."""
        return self._fetched.value

    def fork(self) -> VerifiedReader:
        """A reader of the same object for another thread: its own connection, position and cache
        (starting with a copy of this one's, e.g. the footer already read)."""
        other = VerifiedReader(
            self._open_raw,
            self._size,
            self._chunk,
            self._digests,
            self._mismatch,
            self._algorithm,
            _opened=False,
        )
        other._cache = OrderedDict(self._cache)
        other._fetched = self._fetched
        return other

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        end = min(self._pos + out.nbytes, self._size)
        if end <= self._pos:
            return 0
        first, last = self._pos // self._chunk, (end - 1) // self._chunk
        chunks = self._chunks(first, last)
        written = 0
        for index in range(first, last + 1):
            chunk = chunks[index]
            start = max(self._pos, index * self._chunk) - index * self._chunk
            stop = min(end, (index + 1) * self._chunk) - index * self._chunk
            out[written : written + stop - start] = chunk[start:stop]
            written += stop - start
        self._pos = end
        return written

    def _chunks(self, first: int, last: int) -> dict[int, bytes]:
        found = {i: self._cache[i] for i in range(first, last + 1) if i in self._cache}
        missing = [i for i in range(first, last + 1) if i not in found]
        while missing:  # one ranged request per run of consecutive missing chunks
            run_end = 0
            while run_end + 1 < len(missing) and missing[run_end + 1] == missing[run_end] + 1:
                run_end += 1
            start, stop = missing[0] * self._chunk, min((missing[run_end] + 1) * self._chunk, self._size)
            if self._raw is None:
                self._raw = self._open_raw()
            self._raw.seek(start)
            data = self._raw.read(stop - start)
            self._fetched.add(len(data))
            for offset, index in zip(
                range(0, stop - start, self._chunk), missing[: run_end + 1], strict=False
            ):
                piece = data[offset : offset + self._chunk]
                expected = min(self._chunk, self._size - index * self._chunk)
                if len(piece) != expected or _digest(self._algorithm, piece) != self._digests[index]:
                    raise self._mismatch(index)
                found[index] = piece
            missing = missing[run_end + 1 :]
        # Keep the last few: formats read small pieces (metadata, offsets) around large buffers.
        for index in range(max(first, last - _CACHED_CHUNKS + 1), last + 1):
            self._cache[index] = found[index]
            self._cache.move_to_end(index)
        while len(self._cache) > _CACHED_CHUNKS:
            self._cache.popitem(last=False)
        return found

    def close(self) -> None:
        if not self.closed:
            if self._raw is not None:
                self._raw.close()
            self._cache.clear()
        super().close()


class _Counter:
    """A total shared by a reader and its forks."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, amount: int) -> None:
        with self._lock:
            self.value += amount
