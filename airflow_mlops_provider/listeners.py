"""Listeners registered by :class:`~airflow_mlops_provider.plugins.MLOpsPlugin`.

``task_runtime`` remembers the running task instance in the worker's task process. Airflow pushes a
task's return value after leaving the task's context, and ``serialize_value`` is not told the try
number, so the XCom backend asks here to keep each try's artifacts apart. When the task instance
finishes, the per-task lineage record is cleared; when it succeeded, a cached task's outputs are
recorded in the cache index first.

``dag.test()`` and ``airflow dags test`` run every task in one process, and Airflow never resets its
hook-lineage collector between them, so each task's OpenLineage events would also list the datasets
of every earlier task. When the task runner stops (after the OpenLineage listener has read the
collector), it is reset here. A worker runs one task per process, where this changes nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from airflow.providers.common.compat.sdk import hookimpl


class _TaskRuntimeListener:
    def __init__(self) -> None:
        self.task_instance: Any = None

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        from airflow_mlops_provider._compat import requests_from_threads_allowed
        from airflow_mlops_provider.artifacts.manager import ArtifactManager

        self.task_instance = task_instance
        # The object store's client loads while the task runs, not at its first push; best effort: a
        # broken configuration is reported by the first real use.
        with contextlib.suppress(Exception):
            ArtifactManager.configured().store.warm_up(connect=requests_from_threads_allowed())

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        from airflow_mlops_provider import caching

        caching.record_success()
        self._finished()

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any = None) -> None:
        self._finished()

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        if type(component).__name__ != "TaskRunnerMarker":
            return
        try:
            from airflow.sdk import lineage as sdk_lineage
        except ImportError:
            return
        clear = getattr(sdk_lineage.get_hook_lineage_collector, "cache_clear", None)
        if clear is not None:
            clear()

    def _finished(self) -> None:
        from airflow_mlops_provider import caching
        from airflow_mlops_provider.artifacts import lineage

        self.task_instance = None
        caching.forget_pending()
        lineage.reset()


task_runtime = _TaskRuntimeListener()


def current_task_instance() -> Any:
    """The task instance running in this process, if any."""
    return task_runtime.task_instance
