"""A queue drained by one daemon thread, for listeners that must not slow the scheduler loop.

Fork-safe (a forked child gets fresh locks, queue and thread), flushable, and flushed at process
exit so that short-lived processes (``airflow dags test``) finish their work before they end.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def _reinit_after_fork(worker: BackgroundQueue[Any]) -> Any:
    """A fork hook that does not keep the worker alive (workers made in tests are collected)."""
    ref = weakref.ref(worker)

    def hook() -> None:
        target = ref()
        if target is not None:
            target._init_process_state()

    return hook


class BackgroundQueue(Generic[T]):
    """Items are handed to :meth:`handle` one by one in a daemon thread.

    :param exit_timeout: how long process exit waits for queued items.
    :param max_queue: bound of the queue (0: unbounded); :meth:`put` returns ``False`` when full.
    """

    thread_name = "mlops-background"
    #: ``%d`` is the number of items left when the exit timeout passed.
    exit_warning = "%d queued item(s) were not handled before exit"

    def __init__(self, *, exit_timeout: float, max_queue: int = 0) -> None:
        self.exit_timeout = exit_timeout
        self.max_queue = max_queue
        self._init_process_state()
        self._atexit_registered = False
        os.register_at_fork(after_in_child=_reinit_after_fork(self))

    def _init_process_state(self) -> None:
        """Fresh locks, queue and thread: after a fork the parent's are not usable in the child."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pid = os.getpid()
        self._queue: queue.Queue[T] = queue.Queue(maxsize=self.max_queue)
        self._thread: threading.Thread | None = None
        self._pending = 0

    def handle(self, item: T) -> None:
        """Do the work for one item (in the background thread)."""
        raise NotImplementedError

    def failed(self, item: T) -> None:
        """Called after :meth:`handle` raised (the exception is already logged)."""

    def put(self, item: T) -> bool:
        """Queue an item, starting the thread if needed; ``False`` when the queue is full."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()
                if not self._atexit_registered:
                    atexit.register(self._flush_at_exit)
                    self._atexit_registered = True
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                return False
            self._pending += 1
            return True

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued item was handled; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _flush_at_exit(self) -> None:
        if self._pid == os.getpid() and not self.flush(self.exit_timeout):
            log.warning(self.exit_warning, self._pending)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self.handle(item)
            except Exception:  # the thread must survive anything
                log.exception("%s failed on %s", self.thread_name, item)
                self.failed(item)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
