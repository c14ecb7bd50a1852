"""Run a whole DAG in this process on a sample of its warehouse data, against a scratch artifact root.

``ml.run_local(dag, sample=1000)`` is ``dag.test()`` (Airflow's in-process run: no scheduler, the
real task runner, XCom backend and listeners) with two differences, so a change can be tried in
seconds before it is deployed:

* every ``ml.sql`` extract (``SqlExtractOperator``) returns at most ``sample`` rows;
* ``[mlops] artifact_root`` points at a scratch folder (a new temporary folder unless given) for
  the duration of the run, so the artifacts, structure snapshot and run history it writes stay out
  of the real store.

Like ``dag.test()``, it records the run in Airflow's metadata DB (a ``manual__`` run whose XCom rows
point into the scratch root).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.local.dags import load_dag

if TYPE_CHECKING:
    from collections.abc import Iterator

_ROOT_VARIABLE = "AIRFLOW__MLOPS__ARTIFACT_ROOT"


@dataclass(frozen=True)
class LocalRun:
    """The outcome of :func:`run_local`.

    :param state: the run's final state (``success`` or ``failed``).
    :param task_states: ``{task id: state}``; mapped instances as ``task[map index]``.
    :param artifact_root: the scratch root every artifact of the run was written to.
    :param sample: the row limit of the ``ml.sql`` extracts (``None``: no limit).
    """

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]
    artifact_root: str
    sample: int | None

    def summary(self) -> str:
        sample = f"ml.sql sources limited to {self.sample} rows" if self.sample else "no row limit"
        lines = [f"Ran {self.dag_id} locally ({sample}): run {self.run_id} {self.state}"]
        lines += [f"  {task}: {state}" for task, state in self.task_states.items()]
        lines.append(f"  artifacts: {self.artifact_root}")
        return "\n".join(lines)


@contextlib.contextmanager
def _artifact_root(root: str) -> Iterator[None]:
    """``[mlops] artifact_root`` is ``root`` in this process while the block runs."""
    saved = os.environ.get(_ROOT_VARIABLE)
    os.environ[_ROOT_VARIABLE] = root
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_ROOT_VARIABLE, None)
        else:
            os.environ[_ROOT_VARIABLE] = saved


def _as_root(artifact_root: str | os.PathLike[str] | None) -> str:
    if artifact_root is None:
        return Path(tempfile.mkdtemp(prefix="mlops-local-")).as_uri()
    text = os.fspath(artifact_root)
    return text.rstrip("/") if "://" in text else Path(text).expanduser().resolve().as_uri()


def _task_states(dag_id: str, run_id: str) -> dict[str, str]:
    from airflow_mlops_provider.catalog import records

    return {
        ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"] or "none"
        for ti in records.task_instances(dag_id, run_id)
    }


def run_local(
    dag: Any,
    sample: int | None = 1000,
    *,
    artifact_root: str | os.PathLike[str] | None = None,
    run_conf: dict[str, Any] | None = None,
    mark_success_pattern: str | None = None,
) -> LocalRun:
    """Run ``dag`` once, in this process, on a sample, writing artifacts to a scratch root.

    :param dag: a DAG object, or a DAG id (loaded from its file as it is now).
    :param sample: the most rows each ``ml.sql`` extract returns; ``None`` for no limit.
    :param artifact_root: where the run's artifacts go (a folder or URL); a new temporary folder
        by default. It replaces ``[mlops] artifact_root`` in this process for the run only.
    :param run_conf: the run's conf, as for ``dag.test()``.
    :param mark_success_pattern: tasks whose id matches this regular expression are marked
        successful without running, as in ``dag.test()``: ``"save_.*"`` keeps the sample out of the
        tables ``ml.save`` writes (the other tasks write to their connections as usual).
    :returns: the run's state, its task states and the artifact root.
    """
    from airflow_mlops_provider.operators.sql import sampled
    from airflow_mlops_provider.snapshots.recorder import recorder

    if isinstance(dag, str):
        dag = load_dag(dag)
    root = _as_root(artifact_root)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_artifact_root(root))
        if sample is not None:
            stack.enter_context(sampled(sample))
        try:
            dag_run = dag.test(run_conf=run_conf, mark_success_pattern=mark_success_pattern)
        finally:
            recorder.flush(60)  # the structure snapshot goes to the scratch root too
    state = str(getattr(dag_run.state, "value", dag_run.state))
    return LocalRun(dag.dag_id, dag_run.run_id, state, _task_states(dag.dag_id, dag_run.run_id), root, sample)
