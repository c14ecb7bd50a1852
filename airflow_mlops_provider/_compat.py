"""Airflow surface that differs between versions or deployments, kept in one place."""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any


def python_decorated_operator() -> type[Any]:
    """The operator class behind Airflow's ``@task`` (private in the standard provider), which
    ``@ml.task`` extends so every ``@task`` argument keeps working."""
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

    return _PythonDecoratedOperator


@cache
def dagbag_class() -> type[Any]:
    """Airflow's ``DagBag``: ``airflow.dag_processing.dagbag`` from 3.2, ``airflow.models`` in 3.1."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def fab_provider_available() -> bool:
    """Whether ``apache-airflow-providers-fab`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("airflow.providers.fab.www") is not None
    except ImportError:  # a parent package is missing or refused
        return False


@cache
def provider_cli_supported() -> bool:
    """Whether Airflow adds the commands of a provider's ``cli`` section (``airflow mlops ...``).

    Airflow 3.2 and later do. Airflow 3.1 takes CLI commands only from executors and auth managers,
    so there the ``airflow mlops`` group does not exist; the ML view and the notebook API still work.
    """
    from airflow.providers_manager import ProvidersManager

    return hasattr(ProvidersManager, "cli_command_functions")


def supervisor_send(message: Any) -> Any:
    """Send a Task SDK request from a task process to its supervisor (the API server answers).

    ``SUPERVISOR_COMMS`` is Task SDK internals; it is only set inside a running task.
    """
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        raise RuntimeError(
            "Not inside a running Airflow task: earlier runs can only be looked up from a task."
        )
    return comms.send(message)


def requests_from_threads_allowed() -> bool:
    """Whether another thread of this task process may send requests to the supervisor (resolve a
    connection, say) while the task runs.

    The Task SDK's channel serializes requests with a lock from 1.2 (Airflow 3.2). Airflow 3.1's has
    none, nor has ``dag.test()``'s in-process channel, and outside a task there is no channel: there
    two threads could read each other's answers.
    """
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms is not None and getattr(comms, "_thread_lock", None) is not None


def task_states(
    dag_id: str, task_id: str, map_index: int, run_ids: list[str] | None
) -> dict[str, str | None]:
    """State of ``task_id[map_index]`` in each of ``run_ids`` (every run when ``None``), by run id."""
    from airflow.sdk.execution_time.comms import GetTaskStates

    response = supervisor_send(
        GetTaskStates(dag_id=dag_id, task_ids=[task_id], map_index=map_index, run_ids=run_ids)
    )
    name = task_id if map_index < 0 else f"{task_id}_{map_index}"
    found: dict[str, str | None] = {}
    for run_id, states in (getattr(response, "task_states", None) or {}).items():
        if name in states:
            state = states[name]
            found[run_id] = None if state is None else str(getattr(state, "value", state))
    return found


def dag_run_info(dag_id: str, run_id: str) -> Any:
    """The Task SDK's view of another run of the DAG (dates, state), or ``None``."""
    from airflow.sdk.execution_time.comms import GetDagRun

    response = supervisor_send(GetDagRun(dag_id=dag_id, run_id=run_id))
    return response if getattr(response, "run_id", None) == run_id else None


def xcom_slice(
    *, dag_id: str, run_id: str, task_id: str, key: str, start: int, stop: int
) -> list[Any] | None:
    """The stored rows of map indexes ``start`` to ``stop`` (positions, in map-index order) of a
    mapped task's XCom, in one request from a task process; ``None`` where this cannot be asked."""
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    try:
        from airflow.sdk.execution_time.comms import GetXComSequenceSlice, XComSequenceSliceResult
    except ImportError:
        return None
    if comms is None:
        return None
    message = GetXComSequenceSlice(
        key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, start=start, stop=stop, step=None
    )
    response = comms.send(message)
    return list(response.root) if isinstance(response, XComSequenceSliceResult) else None


@cache
def hook_lineage_has_readers() -> bool:
    """Whether a plugin reads hook-level lineage (the OpenLineage provider's does, when configured).

    Without a reader Airflow's collector is a no-op, yet creating it loads every provider's asset
    URI handlers (about 0.4 s in each task process); then there is no point in reporting.
    """
    for module in ("airflow.sdk.plugins_manager", "airflow.plugins_manager"):  # 3.2+, 3.1
        try:
            readers = importlib.import_module(module).get_hook_lineage_readers_plugins
        except (ImportError, AttributeError):
            continue
        return bool(readers())
    return True  # cannot tell: report, as before


def entry_points(group: str) -> list[Any]:
    """The entry points of ``group``, from Airflow's own scan where it has one.

    Scanning every installed distribution costs a task process about 35 ms; Airflow does it once per
    process when it loads plugins (which is how this provider's listeners are found), so asking the
    same cache is free. Falls back to :mod:`importlib.metadata`.
    """
    for module in ("airflow.sdk._shared.module_loading", "airflow.utils.entry_points"):  # 3.2+, 3.1
        try:
            with_dist = importlib.import_module(module).entry_points_with_dist
        except (ImportError, AttributeError):
            continue
        unique: dict[tuple[str, str], Any] = {}
        for entry_point, _ in with_dist(group):  # one distribution may be on sys.path twice
            unique.setdefault((entry_point.name, entry_point.value), entry_point)
        return list(unique.values())
    from importlib.metadata import entry_points as scan

    return list(scan(group=group))
