"""``@ml.task``: a TaskFlow task that records how it ran.

It is Airflow's own ``@task`` (every argument works: retries, pool, queue, executor_config,
``expand``/``partial``, ``multiple_outputs``) with an operator that, around the call, measures
duration and peak memory and records the callable's source and hash, the params and the input
artifacts it read. The record goes into the manifest of every artifact the task returns and, as a
small JSON document, into the ``mlops.task`` XCom.

The ``mlops.task`` record is pushed when the callable starts (``"status": "running"``), again while
its peak memory grows, and at the end. A process killed by a signal (the kernel's OOM killer sends
SIGKILL) runs no more code, so what the ML view and the kill notifier know about a killed task's
memory is what was pushed before the kill.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSkipException, task_decorator_factory

from airflow_mlops_provider import caching
from airflow_mlops_provider._compat import python_decorated_operator
from airflow_mlops_provider.artifacts import lineage
from airflow_mlops_provider.caching import Cache
from airflow_mlops_provider.exceptions import ArtifactNotFoundError
from airflow_mlops_provider.records import TASK_KEY, TaskRecord, json_safe
from airflow_mlops_provider.snapshots.code import callable_code

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import TaskDecorator

log = logging.getLogger(__name__)

#: While the callable runs, the record is re-pushed at most this often (seconds) ...
PUBLISH_INTERVAL = 2.0
#: ... and only when the peak grew by this fraction and by this many MiB since the last push.
PUBLISH_GROWTH = 0.10
PUBLISH_MIN_GROWTH_MB = 16.0


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


class PeakMemory:
    """Samples this process's resident memory in a thread while a block runs.

    :param on_start: called with the first sample (bytes) before the sampling thread starts.
    :param on_sample: called from the sampling thread with the peak (bytes) after each sample, so
        the caller can publish it while the block still runs.
    """

    def __init__(
        self,
        interval: float = 0.02,
        on_start: Callable[[int], None] | None = None,
        on_sample: Callable[[int], None] | None = None,
    ) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._on_start = on_start
        self._on_sample = on_sample
        self._stop = threading.Event()
        self.start = 0
        self.peak = 0

    def _sample(self) -> None:
        self.peak = max(self.peak, self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()
            if self._on_sample is not None:
                try:
                    self._on_sample(self.peak)
                except Exception:  # the sampler must outlive a failing publisher
                    log.exception("Publishing the peak memory failed")

    def __enter__(self) -> PeakMemory:
        self._sample()
        self.start = self.peak
        if self._on_start is not None:
            self._on_start(self.start)
        self._thread = threading.Thread(target=self._run, name="mlops-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return _mb(self.peak)

    @property
    def start_mb(self) -> float:
        return _mb(self.start)


def comms_thread_safe() -> bool:
    """Whether this task's channel to its supervisor may be used from a background thread.

    A real task process (any executor, ``airflow dags test --use-executor``) talks to its supervisor
    through the Task SDK's ``CommsDecoder``, whose ``send()`` holds a lock around each
    request/response pair. ``dag.test()`` and ``airflow dags test`` without ``--use-executor`` run the
    task in-process through ``InProcessSupervisorComms``, which sets the module-global
    ``SUPERVISOR_COMMS`` to ``None`` while it handles a request and keeps responses in one shared
    deque: a push from another thread could break or answer the main thread's own request.
    """
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import CommsDecoder
    except ImportError:
        return False
    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), CommsDecoder)


class LiveRecord:
    """The ``mlops.task`` record of one try, kept current while the callable runs.

    Pushed by the main thread at start and at the end; in between the sampling thread re-pushes it
    when the peak grew meaningfully (rate-limited by :data:`PUBLISH_INTERVAL`) and at once when the
    peak first passes ``memory_warning_mb``, which is also logged at that moment. The sampling thread
    pushes only where the supervisor channel is thread-safe (:func:`comms_thread_safe`); in-process
    test runs get the start and end pushes only.
    """

    def __init__(
        self,
        operator: MLDecoratedOperator,
        context: Any,
        base: dict[str, Any],
        *,
        from_thread: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._operator = operator
        self._ti = context["ti"]
        self._base = base
        self._from_thread = comms_thread_safe() if from_thread is None else from_thread
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_push = float("-inf")
        self._pushed_peak = 0
        self._start_rss = 0
        self.memory_warning: str | None = None
        self.pushes = 0
        self.failed_pushes = 0

    def record(self, status: str, peak: int, **extra: Any) -> dict[str, Any]:
        """The record as pushed: ``base`` and ``extra`` are :class:`TaskRecord` fields."""
        return TaskRecord(
            **self._base,
            status=status,
            duration_seconds=round(self._clock() - self._started, 4),
            start_rss_mb=_mb(self._start_rss),
            peak_rss_mb=_mb(peak),
            memory_warning_mb=self._operator.memory_warning_mb,
            memory_warning=self.memory_warning,
            **extra,
        ).to_row()

    def _push(self, info: dict[str, Any], peak: int) -> None:
        self._last_push = self._clock()
        self._ti.xcom_push(key=TASK_KEY, value=info)
        self._pushed_peak = peak
        self.pushes += 1

    def _push_while_running(self, peak: int) -> None:
        """Best effort: a failed push is logged (once in full) and retried no sooner than the next
        :data:`PUBLISH_INTERVAL`; the task goes on."""
        try:
            self._push(self.record("running", peak), peak)
        except Exception:
            self.failed_pushes += 1
            log.warning(
                "Could not push the running %s record (%d failed so far)",
                TASK_KEY,
                self.failed_pushes,
                exc_info=self.failed_pushes == 1,
            )

    def _check_warning(self, peak: int) -> bool:
        """Log the memory warning the first time the peak passes the threshold; True then."""
        limit = self._operator.memory_warning_mb
        if limit is None or self.memory_warning is not None or _mb(peak) <= limit:
            return False
        self.memory_warning = f"peak memory {_mb(peak)} MiB is above memory_warning_mb={limit}"
        self._operator.log.warning("Task %s: %s", self._operator.task_id, self.memory_warning)
        return True

    def start(self, start_rss: int) -> None:
        """First push (main thread); best effort: a failing push must not fail the task here."""
        self._start_rss = start_rss
        with self._lock:
            self._check_warning(start_rss)
            self._push_while_running(start_rss)

    def on_sample(self, peak: int) -> None:
        """Called by the sampling thread after each sample."""
        with self._lock:
            crossed = self._check_warning(peak)
            if not self._from_thread:
                return
            grown = peak - self._pushed_peak
            due = (
                self._clock() - self._last_push >= PUBLISH_INTERVAL
                and grown >= self._pushed_peak * PUBLISH_GROWTH
                and _mb(grown) >= PUBLISH_MIN_GROWTH_MB
            )
            if crossed or due:
                self._push_while_running(peak)

    def finish(self, status: str, peak: int, **extra: Any) -> dict[str, Any]:
        """Last push (main thread, after the sampler stopped); returns the record."""
        with self._lock:
            self._check_warning(peak)
            info = self.record(status, peak, **extra)
            self._push(info, peak)
            return info


class MLDecoratedOperator(python_decorated_operator()):
    """The operator behind ``@ml.task``.

    :param memory_warning_mb: log and record a warning as soon as the task process's peak resident
        memory passes this many MiB.
    :param cache: ``True`` or an :class:`~airflow_mlops_provider.caching.Cache` policy: reuse the
        outputs of an earlier successful try with the same code, params and inputs instead of
        running the function (see :mod:`airflow_mlops_provider.caching`).
    """

    custom_operator_name = "@ml.task"

    def __init__(
        self, *, memory_warning_mb: float | None = None, cache: bool | Cache | None = None, **kwargs: Any
    ) -> None:
        if memory_warning_mb is not None and memory_warning_mb <= 0:
            raise ValueError(
                f"Task {kwargs.get('task_id')!r}: memory_warning_mb must be a positive number of MiB."
            )
        super().__init__(**kwargs)
        self.memory_warning_mb = memory_warning_mb
        self.cache = Cache.of(cache)
        if self.cache is not None:
            caching.check_signature(self.task_id, self.python_callable)
            caching.check_arguments(self.task_id, self.python_callable, self.op_args, self.op_kwargs)

    def execute(self, context: Any) -> Any:
        source, code_hash = callable_code(self.python_callable)
        live = LiveRecord(
            self,
            context,
            {
                "operator": self.custom_operator_name,
                "code_hash": code_hash,
                "started_at": datetime.now(timezone.utc).isoformat(),
                "params": json_safe(dict(context.get("params") or {})),
            },
        )
        memory = PeakMemory(on_start=live.start, on_sample=live.on_sample)
        cached: dict[str, Any] = {}
        staged: Any = None
        try:
            with memory:
                hit = self._cache_lookup(context, code_hash, cached) if self.cache is not None else None
                if hit is not None:
                    claimed = self._claim(hit, context, cached)
                    if claimed is None:
                        hit = None
                    else:
                        result, staged = claimed.value, claimed.row
                if hit is None:
                    if self.cache is not None:  # inputs the key did not need loaded, now they are
                        self.op_args = caching.load_deferred(self.op_args)
                        self.op_kwargs = caching.load_deferred(self.op_kwargs)
                    result = super().execute(context)
        except BaseException as err:
            caching.forget_pending()
            status = "skipped" if isinstance(err, AirflowSkipException) else "failed"
            try:
                live.finish(status, memory.peak, error=type(err).__name__, inputs=lineage.inputs(), **cached)
            except Exception:
                log.warning("Could not push the final %s record", TASK_KEY, exc_info=True)
            raise
        if self.cache is not None and "cache" in cached:
            caching.expect_outputs(
                self._manager(),
                caching.new_entry(
                    cached["cache"]["key"],
                    context,
                    code_hash=code_hash,
                    policy=self.cache,
                    computed_at=hit.computed_at if hit is not None else None,
                ),
                returned_none=result is None,
                staged=staged,
            )
        info = live.finish("done", memory.peak, inputs=lineage.inputs(), **cached)
        lineage.set_execution({**info, "source": source})
        return self.finish(result, context)

    @staticmethod
    def _manager() -> Any:
        from airflow_mlops_provider.artifacts.manager import ArtifactManager

        return ArtifactManager.configured()

    def _cache_lookup(self, context: Any, code_hash: str, cached: dict[str, Any]) -> Any:
        """The cache entry to reuse, or ``None`` to run the function; fills ``cached`` for the record."""
        assert self.cache is not None
        names = inspect.signature(self.python_callable).parameters
        taken = {"params", *self.op_kwargs, *list(names)[: len(self.op_args)]}  # params: keyed as such
        key = caching.cache_key(
            self.cache,
            code_hash=code_hash,
            params=dict(context.get("params") or {}),
            op_args=self.op_args,
            op_kwargs=self.op_kwargs,
            context_inputs={n: context[n] for n in names if n not in taken and n in context},
            task_id=self.task_id,
        )
        cached["cache"] = {"key": key, "hit": None}
        if caching.disabled_for_run(context):
            cached["cache"]["disabled"] = True
            self.log.info(
                "Cache: disabled for this run (cache=False run param); running the task. Key %s.", key
            )
            return None
        hit = caching.find_hit(self._manager(), self.cache, dag_id=self.dag_id, task_id=self.task_id, key=key)
        if hit is None:
            self.log.info("Cache miss: key %s; running the task.", key)
            return None
        cached["cache"]["hit"] = {
            "dag_id": hit.dag_id,
            "run_id": hit.run_id,
            "task_id": hit.task_id,
            "map_index": hit.map_index,
            "computed_at": hit.computed_at,
        }
        self.log.info("Cache hit: outputs of %s, key %s; the function does not run.", hit.describe(), key)
        return hit

    def _claim(self, hit: Any, context: Any, cached: dict[str, Any]) -> caching.Claimed | None:
        """Copy a hit's outputs into this try now; ``None`` when they vanished since they verified
        (``gc`` or a purge in between): then the hit is a miss and the function runs."""
        try:
            return caching.claim(self._manager(), hit, context)
        except ArtifactNotFoundError as err:
            cached["cache"]["hit"] = None
            cached["cache"]["lost"] = hit.describe()
            self.log.warning(
                "Cache miss: the outputs of %s vanished after they were verified (%s); running the task. "
                "Key %s.",
                hit.describe(),
                err,
                cached["cache"]["key"],
            )
            return None

    def finish(self, result: Any, context: Any) -> Any:
        """Post-process the callable's result (checks and metrics evaluate it here)."""
        return result


def ml_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """A TaskFlow task that records its code, duration, peak memory, params and inputs.

    Takes every argument ``@task`` takes, plus ``memory_warning_mb`` and ``cache``. With ``cache``,
    a function whose inputs cannot be keyed is refused here, when the DAG file is parsed, even for
    tasks that are only mapped later.
    """
    policy = Cache.of(kwargs.get("cache"))

    def build(func: Callable[..., Any]) -> TaskDecorator:
        if policy is not None:
            caching.check_signature(kwargs.get("task_id") or func.__name__, func)
        return task_decorator_factory(
            python_callable=func,
            multiple_outputs=multiple_outputs,
            decorated_operator_class=MLDecoratedOperator,
            **kwargs,
        )

    return build(python_callable) if python_callable is not None else build  # type: ignore[return-value]
