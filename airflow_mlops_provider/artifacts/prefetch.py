"""Fetch artifacts' bytes before they are asked for, within a bound.

A task that iterates over the outputs of a mapped upstream loads one artifact after the other; on an
object store each load waits for its request. :class:`Prefetcher` fetches the next ones on a few
threads meanwhile; a load takes its bytes from there when they are ready (and fetches them itself
when the prefetch failed or was never made). The bytes are checked against their hash on use, as
any fetched bytes are.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pyarrow as pa

    from airflow_mlops_provider.artifacts.manifest import Reference

log = logging.getLogger(__name__)

#: Requests in flight at once.
THREADS = 8
#: Bytes held by fetched artifacts nobody took yet (their stored size; decoded values are made on use).
MAX_BYTES = 64 * 1024 * 1024
#: Artifacts held at most, taken or not.
MAX_ENTRIES = 32


class Prefetcher:
    """Bounded background fetches of whole data objects, keyed by URI and content hash.

    :param fetch: reads a reference's bytes from the store (unverified).
    """

    def __init__(self, fetch: Callable[[Reference], bytes | pa.Buffer]) -> None:
        self._fetch = fetch
        self._pending: OrderedDict[tuple[str, str], tuple[Future[bytes | pa.Buffer], int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def start(self, references: Iterable[Reference]) -> int:
        """Start fetching those not held yet, as long as they fit the bounds; returns how many."""
        started = 0
        with self._lock:
            for reference in references:
                key = (reference.data_uri, reference.sha256)
                size = reference.size_bytes
                if key in self._pending or self._held + size > MAX_BYTES:
                    continue
                while len(self._pending) >= MAX_ENTRIES:
                    self._drop_oldest()
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="mlops-prefetch")
                self._pending[key] = (self._pool.submit(self._fetch, reference), size)
                self._held += size
                started += 1
        return started

    def take(self, reference: Reference) -> bytes | pa.Buffer | None:
        """The prefetched bytes of ``reference`` (waiting for them), or ``None``: not prefetched, or
        the prefetch failed (the caller's own read then raises the error it must)."""
        with self._lock:
            entry = self._pending.pop((reference.data_uri, reference.sha256), None)
            if entry is not None:
                self._held -= entry[1]
        if entry is None:
            return None
        try:
            return entry[0].result()
        except Exception as err:
            log.debug("Prefetch of %s failed (%s); reading it again.", reference.uri, err)
            return None

    def _drop_oldest(self) -> None:
        _, (future, size) = self._pending.popitem(last=False)
        future.cancel()
        self._held -= size
