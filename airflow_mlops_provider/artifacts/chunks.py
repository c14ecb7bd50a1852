"""Chunk digests: a sha256 per 1 MiB of a data object, so partial reads check every byte they use.

A whole read checks the object's own sha256. A column read or a streamed read fetches only part of
the object, so it cannot: it checks each chunk it fetched against the digest recorded for it when
the object was written. The digests are stored beside the data (a ``chunks.sha256`` sidecar whose
own sha256 is in the reference), and :class:`VerifiedReader` serves reads from verified chunks only.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable

#: Sidecar suffix of the digests (``<n>.chunks.sha256``).
SIDECAR = "chunks.sha256"
CHUNK_BYTES = 1 << 20
_DIGEST = hashlib.sha256().digest_size
# Chunks a reader keeps: a format reads a few small pieces (metadata, offsets) around each buffer.
_CACHED_CHUNKS = 8


class ChunkDigests:
    """Computes the digests of a byte stream as it is written (fed by the store's writer)."""

    def __init__(self, chunk_bytes: int | None = None) -> None:
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self._done: list[bytes] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, view: memoryview) -> None:
        while view.nbytes:
            take = min(view.nbytes, self.chunk_bytes - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.chunk_bytes:
                self._done.append(self._current.digest())
                self._current, self._filled = hashlib.sha256(), 0

    def sidecar(self) -> bytes:
        """The stored form: the chunk size on the first line, then the 32-byte digests in order."""
        last = [self._current.digest()] if self._filled else []
        return b"%d\n" % self.chunk_bytes + b"".join(self._done + last)


def parse_sidecar(data: bytes, size: int) -> tuple[int, list[bytes]]:
    """``(chunk_bytes, digests)`` from a sidecar, checked against the object's ``size``."""
    head, _, body = data.partition(b"\n")
    chunk_bytes = int(head)
    count = -(-size // chunk_bytes)
    if chunk_bytes <= 0 or len(body) != count * _DIGEST:
        raise ValueError(f"{len(body)} bytes of digests for {count} chunks of {chunk_bytes} bytes")
    return chunk_bytes, [body[i : i + _DIGEST] for i in range(0, len(body), _DIGEST)]


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
    :param digests: one sha256 digest per chunk.
    :param mismatch: builds the error raised for a chunk whose bytes differ from the record.
    """

    def __init__(
        self,
        open_raw: Callable[[], BinaryIO],
        size: int,
        chunk_bytes: int,
        digests: list[bytes],
        mismatch: Callable[[int], Exception],
        *,
        _opened: bool = True,
    ) -> None:
        super().__init__()
        self._open_raw = open_raw
        self._raw: BinaryIO | None = open_raw() if _opened else None
        self._size, self._chunk = size, chunk_bytes
        self._digests, self._mismatch = digests, mismatch
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
            self._open_raw, self._size, self._chunk, self._digests, self._mismatch, _opened=False
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
                if len(piece) != expected or hashlib.sha256(piece).digest() != self._digests[index]:
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
