"""Run a DAG from the test dags folder (``dag.test()`` or ``airflow dags test``) and read back what
Airflow stored."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conftest import BIN, DAGS_DIR

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class RunResult:
    run_id: str
    state: str
    task_states: dict[tuple[str, int], str]
    try_numbers: dict[tuple[str, int], int]
    xcom_rows: dict[tuple[str, int, str], Any] = field(default_factory=dict)

    def row(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcom_rows[(task_id, map_index, key)]


def dagbag_class() -> type:
    """Airflow's ``DagBag`` (``airflow.dag_processing.dagbag`` from 3.2, ``airflow.models`` in 3.1)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def set_raw_xcom(
    key: str, value: Any, *, dag_id: str, task_id: str, run_id: str, map_index: int = -1
) -> None:
    """Write an XCom row holding ``value`` as stored JSON, bypassing every backend (a forged row)."""
    import inspect
    from unittest import mock

    from airflow.models.xcom import XComModel

    ids = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": map_index}
    if "serialize" in inspect.signature(XComModel.set).parameters:
        XComModel.set(key, value, **ids, serialize=False)
    else:  # Airflow 3.1: set() always JSON-encodes; store the row as the Task Execution API does
        with mock.patch.object(XComModel, "serialize_value", side_effect=lambda value, **_: value):
            XComModel.set(key, value, **ids)


def load_dags(file_stem: str) -> dict[str, Any]:
    """Parse one file of the test dags folder the way the DAG processor does."""
    DagBag = dagbag_class()

    bag = DagBag(dag_folder=str(DAGS_DIR / f"{file_stem}.py"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return dict(bag.dags)


def load_dag(file_stem: str, dag_id: str | None = None):
    return load_dags(file_stem)[dag_id or file_stem]


def run_dag(file_stem: str, dag_id: str | None = None, **test_kwargs: Any) -> RunResult:
    """``dag.test()`` in this process (the real task runner and XCom backend), then read the DB."""
    dag = load_dag(file_stem, dag_id)
    return _read_run(dag.dag_id, dag.test(**test_kwargs).run_id)


def run_dag_cli(dag_id: str, *args: str, env: dict[str, str]) -> RunResult:
    """``airflow dags test DAG_ID ARGS...`` in a fresh process with ``env``; its newest run, read back."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", dag_id, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        run_id = run.run_id
    return _read_run(dag_id, run_id)


def _read_run(dag_id: str, run_id: str) -> RunResult:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dagrun = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id).all()
        xcoms = {(r.task_id, r.map_index, r.key): r.value for r in rows}
        tis = dagrun.get_task_instances(session=session)
        states = {(ti.task_id, ti.map_index): ti.state for ti in tis}
        tries = {(ti.task_id, ti.map_index): ti.try_number for ti in tis}
        return RunResult(run_id, dagrun.state, states, tries, xcoms)


def run_before_and_after_change(path: Path, old_source: str, new_source: str) -> tuple[RunResult, RunResult]:
    """Run the DAG in ``path`` (a file of the dags folder), rewrite it, run it again.

    Structure snapshots are flushed after each run, and Airflow re-serializes the changed file at
    once (``min_serialized_dag_update_interval`` is 0 while this runs).
    """
    from airflow.listeners.listener import get_listener_manager

    from airflow_mlops_provider.snapshots.recorder import recorder, snapshot_listener

    manager = get_listener_manager()
    wired_by_plugin = manager.pm.is_registered(snapshot_listener)
    if not wired_by_plugin:
        manager.add_listener(snapshot_listener)
    key = "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL"
    old_interval = os.environ.get(key)
    os.environ[key] = "0"
    try:
        path.write_text(old_source)
        first = run_dag(path.stem)
        assert recorder.flush(60)
        path.write_text(new_source)
        second = run_dag(path.stem)
        assert recorder.flush(60)
    finally:
        if not wired_by_plugin:
            manager.pm.unregister(snapshot_listener)
        if old_interval is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old_interval
    return first, second
