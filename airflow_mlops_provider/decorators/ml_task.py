"""``@ml.task``: a TaskFlow task that records how it ran.

It is Airflow's own ``@task`` (every argument works: retries, pool, queue, executor_config,
``expand``/``partial``, ``multiple_outputs``) with an operator that, around the call, measures
duration and peak memory and records the callable's source and hash, the params and the input
artifacts it read. The record goes into the manifest of every artifact the task returns and, as a
small JSON document, into the ``mlops.task`` XCom.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import task_decorator_factory
from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

from airflow_mlops_provider.artifacts import lineage
from airflow_mlops_provider.records import TASK_KEY, json_safe

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import TaskDecorator

log = logging.getLogger(__name__)


def callable_source(func: Callable[..., Any]) -> tuple[str, str]:
    """The callable's source (dedented, decorators included) and its SHA-256."""
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(func)))
    except (OSError, TypeError):
        source = f"<source of {getattr(func, '__qualname__', func)!r} unavailable>"
    return source, hashlib.sha256(source.encode()).hexdigest()


class PeakMemory:
    """Samples this process's resident memory in a thread while a block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0

    def _sample(self) -> None:
        self.peak = max(self.peak, self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="mlops-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


class MLDecoratedOperator(_PythonDecoratedOperator):
    """The operator behind ``@ml.task``.

    :param memory_warning_mb: log and record a warning when the task process's peak resident
        memory passes this many MiB.
    """

    custom_operator_name = "@ml.task"

    def __init__(self, *, memory_warning_mb: float | None = None, **kwargs: Any) -> None:
        if memory_warning_mb is not None and memory_warning_mb <= 0:
            raise ValueError(
                f"Task {kwargs.get('task_id')!r}: memory_warning_mb must be a positive number of MiB."
            )
        super().__init__(**kwargs)
        self.memory_warning_mb = memory_warning_mb

    def execute(self, context: Any) -> Any:
        source, code_hash = callable_source(self.python_callable)
        started = time.perf_counter()
        with PeakMemory() as memory:
            result = super().execute(context)
        info: dict[str, Any] = {
            "operator": self.custom_operator_name,
            "code_hash": code_hash,
            "duration_seconds": round(time.perf_counter() - started, 4),
            "peak_rss_mb": memory.peak_mb,
            "params": json_safe(dict(context.get("params") or {})),
            "inputs": lineage.inputs(),
        }
        if self.memory_warning_mb is not None and memory.peak_mb > self.memory_warning_mb:
            info["memory_warning"] = (
                f"peak memory {memory.peak_mb} MiB is above memory_warning_mb={self.memory_warning_mb}"
            )
            self.log.warning("Task %s: %s", self.task_id, info["memory_warning"])
        context["ti"].xcom_push(key=TASK_KEY, value=info)
        lineage.set_execution({**info, "source": source})
        return self.finish(result, context)

    def finish(self, result: Any, context: Any) -> Any:
        """Post-process the callable's result (checks and metrics evaluate it here)."""
        return result


def ml_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """A TaskFlow task that records its code, duration, peak memory, params and inputs.

    Takes every argument ``@task`` takes, plus ``memory_warning_mb``.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=MLDecoratedOperator,
        **kwargs,
    )
