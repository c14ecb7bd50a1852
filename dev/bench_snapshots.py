"""Benchmark: what DAG structure snapshots cost the scheduler, and what they cost in the background.

Run it from the repository root with the project's virtualenv::

    .venv/bin/python dev/bench_snapshots.py            # with a migrated SQLite metadata DB (~30 s)
    .venv/bin/python dev/bench_snapshots.py --no-db    # skip the DB: no build_snapshot() timing
    .venv/bin/python dev/bench_snapshots.py --tasks 500 --json out.json

The scheduler path is the listener: ``DagRunSnapshotListener.on_dag_run_running`` ->
``SnapshotRecorder.enqueue``, timed on a real (transient) ``DagRun`` ORM object, directly and through
Airflow's pluggy hook relay (against the relay with no listener at all). The background path is,
for a generated DAG of ``--tasks`` tasks (TaskFlow tasks in task groups, mapped tasks, ``@ml.task``
tasks and BashOperators): deserializing the stored dict, building the snapshot (source lookups with
``ast`` included), the whole ``build_snapshot()`` from the metadata DB, writing it to a local store
(first run of a structure, and later runs that only add a pointer), and diffing two versions.
Everything lives in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parent.parent


def generate_dag(dag_id: str, n_tasks: int, variant: int = 0) -> str:
    """A DAG file with ``n_tasks`` tasks: 60% TaskFlow in groups, 10% mapped, 10% @ml.task, 20% bash."""
    n_group = int(n_tasks * 0.6)
    n_mapped = int(n_tasks * 0.1)
    n_ml = int(n_tasks * 0.1)
    n_bash = n_tasks - n_group - n_mapped - n_ml
    per_group = 12
    lines = [
        "from __future__ import annotations",
        "import pendulum",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.sdk import dag, task, task_group",
        "from airflow_mlops_provider.decorators import ml_task",
        "",
        f"@dag(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)",
        f"def {dag_id}():",
        "    @task",
        "    def source() -> list[int]:",
        "        return list(range(4))",
        "",
        "    head = source()",
    ]
    made = 1
    for g in range((n_group + per_group - 1) // per_group):
        size = min(per_group, n_group - g * per_group)
        lines += ["    @task_group", f"    def group_{g}(x):"]
        for i in range(size):
            lines += [
                "        @task",
                f"        def step_{i}(values):",
                f"            total = sum(values) + {i} + {variant if (g, i) == (0, 0) else 0}",
                "            return [v + total for v in values]",
                "",
            ]
        chain = "x"
        for i in range(size):
            chain = f"step_{i}({chain})"
        lines += [f"        return {chain}", "", f"    out_{g} = group_{g}(head)"]
        made += size
    for m in range(n_mapped):
        lines += ["    @task", f"    def mapped_{m}(value: int) -> int:", f"        return value * {m}", ""]
        lines += [f"    mapped_{m}.expand(value=out_0)"]
    for m in range(n_ml):
        lines += [
            "    @ml_task",
            f"    def model_{m}(values) -> float:",
            f"        return sum(values) / ({m} + 1)",
            "",
        ]
        lines += [f"    model_{m}(out_{m % max(1, n_group // per_group)})"]
    for b in range(n_bash - 1):
        lines += [f"    b_{b} = BashOperator(task_id='bash_{b}', bash_command='echo {b} {{{{ ds }}}}')"]
        lines += [f"    out_{b % max(1, n_group // per_group)} >> b_{b}"]
    lines += ["", f"{dag_id}()", ""]
    return "\n".join(lines)


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {"best_ms": min(times) * 1e3, "median_ms": statistics.median(times) * 1e3}


def per_call(fn: Callable[[], Any], calls: int, rounds: int = 5) -> dict[str, float]:
    """Per-call time in microseconds: best and median of ``rounds`` batches of ``calls`` calls."""
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        results.append((time.perf_counter() - started) / calls)
    return {"best_us": min(results) * 1e6, "median_us": statistics.median(results) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000, help="enqueue calls per timing batch")
    parser.add_argument("--no-db", action="store_true", help="skip the metadata DB part")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlops-bench-snapshots-"))
    dags = home / "dags"
    dags.mkdir()
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "AIRFLOW__MLOPS__ARTIFACT_ROOT": (home / "artifacts").as_uri(),
        }
    )
    try:
        results = run(args, home, dags)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def run(args: argparse.Namespace, home: Path, dags: Path) -> dict[str, Any]:
    dag_id = "bench_snapshot_dag"
    source = generate_dag(dag_id, args.tasks)
    (dags / f"{dag_id}.py").write_text(source)
    if not args.no_db:
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.serialization.serialized_objects import DagSerialization

    from airflow_mlops_provider.artifacts.store import ArtifactStore
    from airflow_mlops_provider.snapshots import DagSnapshot, SnapshotStore, diff_snapshots
    from airflow_mlops_provider.snapshots.recorder import (
        DagNotSerializedError,
        DagRunSnapshotListener,
        SnapshotRecorder,
        build_snapshot,
    )

    bag = DagBag(dag_folder=str(dags / f"{dag_id}.py"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    data = json.loads(json.dumps(DagSerialization.to_dict(dag)))
    serialized = DagSerialization.from_dict(data)
    snapshot = DagSnapshot.from_serialized(serialized, data=data, source=source)
    n_tasks = len(snapshot.tasks)
    results: dict[str, Any] = {
        "tasks": n_tasks,
        "python": sys.version.split()[0],
        "snapshot_json_bytes": len(snapshot.to_json().encode()),
        "code_origins": {
            o: sum(t.code_origin == o for t in snapshot.tasks)
            for o in {t.code_origin for t in snapshot.tasks}
        },
    }

    # -- scheduler path ---------------------------------------------------------------------------
    import threading

    release = threading.Event()

    def nothing(dag_id: str, version: str | None) -> Any:
        release.wait()  # park the worker while the scheduler side is timed: no GIL contention
        raise DagNotSerializedError("benchmark: the background thread does no work")

    recorder = SnapshotRecorder(
        SnapshotStore(ArtifactStore((home / "unused").as_uri())),
        spool_dir=home / "spool",
        builder=nothing,
        max_queue=10**7,
    )
    listener = DagRunSnapshotListener(recorder)
    dag_run = DagRun(dag_id=dag_id, run_id="manual__2024-01-01T00:00:00+00:00", run_type="manual")
    dag_run.created_dag_version_id = "0195b3c6-0000-7000-8000-000000000000"
    results["scheduler_enqueue_us"] = per_call(
        lambda: listener.on_dag_run_running(dag_run, "started"), args.calls
    )

    from airflow._shared.listeners.listener import ListenerManager
    from airflow.listeners.spec import dagrun as dagrun_spec

    bare = ListenerManager()
    bare.add_hookspecs(dagrun_spec)
    with_listener = ListenerManager()
    with_listener.add_hookspecs(dagrun_spec)
    with_listener.add_listener(listener)
    results["hook_relay_no_listener_us"] = per_call(
        lambda: bare.hook.on_dag_run_running(dag_run=dag_run, msg="started"), args.calls
    )
    results["hook_relay_with_snapshot_listener_us"] = per_call(
        lambda: with_listener.hook.on_dag_run_running(dag_run=dag_run, msg="started"), args.calls
    )
    release.set()
    assert recorder.flush(300)

    # -- background path ----------------------------------------------------------------------------
    results["deserialize_ms"] = timed(lambda: DagSerialization.from_dict(data), args.repeats)
    results["snapshot_from_serialized_dag_ms"] = timed(
        lambda: DagSnapshot.from_serialized(serialized, data=data, source=source), args.repeats
    )
    if not args.no_db:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
        from airflow.models.dag_version import DagVersion
        from airflow.utils.session import create_session

        with create_session() as session:
            DagBundlesManager().sync_bundles_to_db(session=session)
        bundle = BundleDagBag(dag_folder=str(dags), bundle_path=dags, bundle_name="dags-folder")
        sync_bag_to_db(bundle, "dags-folder", None)
        version = DagVersion.get_latest_version(dag_id)
        from_db, _ = build_snapshot(dag_id, str(version.id))
        assert from_db.id == snapshot.id, "the DB path and the file path disagree"
        results["build_snapshot_from_db_ms"] = timed(
            lambda: build_snapshot(dag_id, str(version.id)), args.repeats
        )

    counter = iter(range(10**9))

    def record_new_structure() -> None:
        store = SnapshotStore(ArtifactStore((home / f"artifacts-{next(counter)}").as_uri()))
        store.record(snapshot, "run_1", None)

    store = SnapshotStore(ArtifactStore((home / "artifacts").as_uri()))
    store.record(snapshot, "run_0", None)
    results["store_record_new_structure_local_ms"] = timed(record_new_structure, args.repeats)
    results["store_record_known_structure_local_ms"] = timed(
        lambda: store.record(snapshot, f"run_{next(counter)}", None), args.repeats
    )

    other_source = generate_dag(dag_id, args.tasks, variant=1)
    (dags / "variant.py").write_text(other_source)
    other_bag = DagBag(dag_folder=str(dags / "variant.py"), safe_mode=False)
    other_data = json.loads(json.dumps(DagSerialization.to_dict(other_bag.dags[dag_id])))
    other = DagSnapshot.from_serialized_data(other_data, other_source)
    diff = diff_snapshots(snapshot, other)
    assert [c.task_id for c in diff.changed] == ["group_0.step_0"], diff.summary()
    results["diff_ms"] = timed(lambda: diff_snapshots(snapshot, other), args.repeats)
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
