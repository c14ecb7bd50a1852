"""Benchmark: server-side time and size of the ML view's pages for a big run and a long history.

Run it from the repository root with the project's virtualenv::

    .venv/bin/python dev/bench_ui.py                    # 200-task runs, 1,000-run metric history
    .venv/bin/python dev/bench_ui.py --tasks 500 --runs 5000 --json out.json

It builds a temporary Airflow home with a migrated SQLite metadata DB (``airflow db migrate``,
~15 s, not timed) and a local artifact store, then writes what real runs leave behind, without
running tasks: two DAG runs of ``--tasks`` task instances each (a chain of layers, a few failures
and warnings), one DataFrame artifact reference per task in its write folder with its data object,
stored preview (20 rows x 6 columns) and manifest, a check record per task, and the runs' structure
snapshot (tasks + edges);
plus ``--runs`` runs of another DAG with a two-metric ``mlops.metrics`` record and a check record
each.

Timed (median of ``--repeat`` calls, warm), each page as the API server builds it but the HTTP
layer (``service.<page>`` + Jinja render): the DAG-run page of the big run, the compare page of the
two big runs, the DAG page of the long history (default window: the last 100 runs in the charts,
50 in the runs table; and the window "all"), and the metric history JSON
(``/api/dags/<dag>/metrics``). Targets: every page under 300 ms and under 1 MB of HTML.
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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

RUN_ID = "manual__2024-01-01T00:00:00+00:00"
#: The earlier run of the big DAG, compared with ``RUN_ID`` on the compare page.
EARLIER_RUN_ID = "manual__2023-12-31T00:00:00+00:00"
#: Server time and size targets of every page.
TARGET_MS, TARGET_BYTES = 300, 1_000_000


def _setup_home(home: Path) -> None:
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "AIRFLOW__MLOPS__ARTIFACT_ROOT": (home / "artifacts").as_uri(),
        }
    )
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())


def _frame(i: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(i)
    return pd.DataFrame(
        {
            "id": np.arange(20),
            "score": rng.random(20),
            "segment": pd.Categorical(rng.choice(["a", "b", "c"], 20)),
            "name": [f"<b>row {k}</b>" for k in range(20)],
            "amount": rng.normal(100, 10, 20),
            "flag": rng.random(20) > 0.5,
        }
    )


def build_run(dag_id: str, tasks: int, run_id: str = RUN_ID, when: datetime | None = None) -> None:
    """A DAG run of ``tasks`` task instances with artifacts, previews, records and a snapshot."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    from airflow_mlops_provider.artifacts.layout import WriteFolder
    from airflow_mlops_provider.artifacts.manifest import Manifest, Producer, Reference
    from airflow_mlops_provider.artifacts.previews import table_preview
    from airflow_mlops_provider.snapshots.model import DagSnapshot, TaskSnapshot
    from airflow_mlops_provider.ui.service import snapshot_store

    snapshots = snapshot_store()
    store = snapshots.artifacts
    width = 10  # tasks per layer: a 20-layer chain of layers for 200 tasks
    ids = [f"layer_{i // width:03d}.task_{i % width:02d}" for i in range(tasks)]
    edges = [(ids[i - width], ids[i]) for i in range(width, tasks)]
    edges += [(ids[i - width - 1], ids[i]) for i in range(width + 1, tasks) if i % width]
    when = when or datetime(2024, 1, 1, tzinfo=timezone.utc)
    with create_session() as session:
        run = DagRun(dag_id=dag_id, run_id=run_id, run_type="manual", run_after=when, logical_date=when)
        run.state = "failed"
        session.add(run)
        session.flush()
        ti_rows, xcom_rows = [], []
        for i, task_id in enumerate(ids):
            state = "failed" if i == tasks - 1 else ("upstream_failed" if i > tasks - 5 else "success")
            ti_rows.append(
                dict(
                    task_id=task_id,
                    dag_id=dag_id,
                    run_id=run_id,
                    map_index=-1,
                    pool="default_pool",
                    state=state,
                )
                | dict(try_number=1, start_date=when, end_date=when + timedelta(seconds=3), duration=3.0)
                | {"operator": "@ml.task"}
            )
            producer = Producer(dag_id, run_id, task_id, -1, "return_value", 1)
            folder = f"{store.root}/{WriteFolder.of(producer, f'{i:08x}').relative}"
            frame = _frame(i + (0 if run_id == RUN_ID else 10_000))
            ref = Reference(
                uri=f"{folder}/0.parquet", type="pandas.DataFrame", serializer="pandas.dataframe",
                format="parquet", format_version=1, size_bytes=4096, sha256="ab" * 32, producer=producer,
                summary="DataFrame 20 rows x 6 columns (Parquet)", details={"rows": 20, "columns": 6},
            )  # fmt: skip
            # The data object (the view checks that it is there, with the recorded size), the preview
            # and the manifest, as ArtifactManager writes them.
            store.put_bytes(ref.uri, bytes(ref.size_bytes))
            store.put_bytes(ref.preview_uri, json.dumps(table_preview(frame)).encode())
            manifest = Manifest(
                artifact_id=f"{i:032x}", reference=ref, media_type="application/vnd.apache.parquet",
                created_at=when.isoformat(), versions={"pandas": "2"}, execution={"code_hash": "cd" * 32},
            )  # fmt: skip
            store.put_bytes(ref.manifest_uri, manifest.to_json())
            xcom_rows.append({"key": "return_value", "value": ref.to_row(), "task_id": task_id})
            status = "warning" if i % 17 == 3 else "ok"
            check = {"kind": "check", "name": task_id, "severity": "warning", "passed": status == "ok",
                     "status": status, "message": "ok" if status == "ok" else "2 of 20 rows failed",
                     "failing_count": 0 if status == "ok" else 2,
                     "failing_samples": [] if status == "ok" else [{"index": 1, "score": 1.5}]}  # fmt: skip
            xcom_rows.append({"key": "mlops.check", "value": check, "task_id": task_id})
        session.execute(insert(TaskInstance.__table__), [{"id": _uuid(), **r} for r in ti_rows])
        session.execute(
            insert(XComModel.__table__),
            [
                {
                    "dag_run_id": run.id,
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "map_index": -1,
                    "timestamp": when,
                    **r,
                }
                for r in xcom_rows
            ],
        )
    snapshot = DagSnapshot(
        dag_id=dag_id,
        tasks=tuple(
            TaskSnapshot(
                task_id=t,
                kind="@ml.task",
                operator_class="MLDecoratedOperator",
                group_id=t.split(".")[0],
                mapped=False,
                code_hash=f"{i:064x}",
                code_origin="dag_file",
                callable_name=t,
                source=f"def {t.split('.')[1]}():\n    return {i}\n",
            )
            for i, t in enumerate(ids)
        ),
        edges=tuple(sorted(edges)),
    )
    snapshots.record(snapshot, run_id, when)


def _uuid() -> Any:
    import uuid

    return uuid.uuid4()


def build_metric_history(dag_id: str, runs: int) -> None:
    """``runs`` runs of ``dag_id``, each with a two-metric ``mlops.metrics`` record and a check record."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    with create_session() as session:
        session.execute(
            insert(DagRun.__table__),
            [
                dict(dag_id=dag_id, run_id=f"scheduled__{i:05d}", run_type="scheduled", state="success")
                | dict(run_after=start + timedelta(hours=i), logical_date=start + timedelta(hours=i))
                | dict(clear_number=0, span_status="not_started")
                for i in range(runs)
            ],
        )
        ids = session.execute(select(DagRun.id, DagRun.run_id).where(DagRun.dag_id == dag_id)).all()
        session.execute(  # XCom rows reference their task instance
            insert(TaskInstance.__table__),
            [
                dict(
                    id=_uuid(),
                    task_id=task_id,
                    dag_id=dag_id,
                    run_id=run_id,
                    map_index=-1,
                    pool="default_pool",
                )
                | {"state": "success"}
                for _, run_id in ids
                for task_id in ("evaluate", "validate")
            ],
        )
        rows = []
        for n, (run_pk, run_id) in enumerate(ids):
            acc = 0.8 + 0.1 * ((n * 37) % 11) / 10
            accuracy = dict(name="accuracy", value=acc, lower=0.82, upper=None, breaches=[])
            loss = dict(name="loss", value=1 - acc, lower=None, upper=0.3, status="ok", breaches=[])
            accuracy["status"] = "warning" if acc < 0.82 else "ok"
            record = {"kind": "metric", "severity": "warning", "metrics": [accuracy, loss]}
            where = dict(dag_run_id=run_pk, dag_id=dag_id, run_id=run_id, map_index=-1, timestamp=start)
            rows.append(where | dict(task_id="evaluate", key="mlops.metrics", value=record))
            warned = n % 13 == 5
            check = {"kind": "check", "name": "validate", "severity": "warning", "passed": not warned,
                     "status": "warning" if warned else "ok", "failing_count": 3 if warned else 0,
                     "message": "3 of 500 rows failed" if warned else "500 of 500 rows passed"}  # fmt: skip
            rows.append(where | dict(task_id="validate", key="mlops.check", value=check))
        session.execute(insert(XComModel.__table__), rows)


def _median_ms(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlops-bench-ui-"))
    try:
        _setup_home(home)
        from airflow_mlops_provider.ui import render, service

        build_run("bench_ui_big", args.tasks, EARLIER_RUN_ID, datetime(2023, 12, 31, tzinfo=timezone.utc))
        build_run("bench_ui_big", args.tasks)
        build_metric_history("bench_ui_history", args.runs)

        def page(template: str, data: Any) -> Any:
            return lambda: render.render(template, "/mlops", **data())

        pages = {
            f"run page, {args.tasks} tasks": page(
                "run.html", lambda: service.run_page("bench_ui_big", RUN_ID)
            ),
            f"compare page, 2 x {args.tasks} tasks": page(
                "compare.html", lambda: service.compare_page("bench_ui_big", EARLIER_RUN_ID, RUN_ID)
            ),
            f"DAG page, {args.runs} runs, window 100": page(
                "dag.html", lambda: {**service.dag_page("bench_ui_history", 50, 100), "window": "100"}
            ),
            f"DAG page, {args.runs} runs, window all": page(
                "dag.html", lambda: {**service.dag_page("bench_ui_history", 50, args.runs), "window": "all"}
            ),
            f"metric history JSON, {args.runs} runs": lambda: json.dumps(
                service.metric_chart_data("bench_ui_history", args.runs), default=str
            ),
        }
        numbers: dict[str, dict[str, float]] = {}
        for name, build in pages.items():
            build()  # warm-up: imports, template compilation
            ms, body = _median_ms(build, args.repeat)
            numbers[name] = {"ms": round(ms, 1), "bytes": len(body.encode())}
        for name, value in numbers.items():
            met = value["ms"] < TARGET_MS and value["bytes"] < TARGET_BYTES
            print(
                f"{name:38} {value['ms']:8.1f} ms {value['bytes'] / 1000:6.0f} kB {'ok' if met else 'MISSED'}"
            )
        print(
            f"targets: each page < {TARGET_MS} ms and < {TARGET_BYTES / 1e6:.0f} MB;"
            f" load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}"
        )
        if args.json:
            args.json.write_text(json.dumps(numbers, indent=2))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
