"""Benchmark: a fan-out of N mapped tasks each returning a DataFrame, with this provider's XCom backend
against Airflow's default one (``BaseXCom``: the frame serialized into the metadata DB).

Run it from the repository root with the project's virtualenv (PostgreSQL, and Redis for Celery,
running)::

    .venv/bin/python dev/bench_fanout.py --mode dag-test              # dag.test(), 500 shards
    .venv/bin/python dev/bench_fanout.py --mode local                 # LocalExecutor on PostgreSQL
    .venv/bin/python dev/bench_fanout.py --mode celery --shards 200   # CeleryExecutor, two workers
    .venv/bin/python dev/bench_fanout.py --mode local --repeats 2 --json out.json

Every mode runs ``tests/dags/mlops_celery_fanout.py``: ``--shards`` mapped tasks each returning a
200-row DataFrame (a timezone-aware index with a frequency, ints, floats, a categorical, strings),
and a reduce that reads them all and compares each with what it must be (strict checking is off so
that what the default backend changes is counted, not raised). Runs alternate between the backends
(ours, default, ours, ...) so that load swings hit both.

- ``dag-test``: ``dag.test()`` in a fresh process per run, on a SQLite metadata DB of its own per
  backend, artifacts in a local folder: Airflow's in-process test path, no scheduler.
- ``local``: two clusters of the same shape side by side (tests/cluster.py: PostgreSQL metadata DB,
  scheduler with LocalExecutor, dag-processor, api-server), artifacts in moto's S3 server
  (``--store local`` for a folder); the run is triggered through the REST API.
- ``celery``: as ``local`` with CeleryExecutor (Redis broker, PostgreSQL result backend, two Celery
  workers with 3 slots each, ``celery_config.CELERY_CONFIG``).

Reported per run: wall time from the run's start to its end, the mean and median duration of the
mapped tasks (cluster modes: Airflow's own start/end per task instance), and how many frames the
reduce found changed. The summary gives each backend's minimum and median wall time, and ours as a
ratio of the default's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cluster import AirflowCluster  # noqa: E402
from conftest import S3Server  # noqa: E402

DAG_ID = "mlops_celery_fanout"
DAG_FILE = ROOT / "tests" / "dags" / f"{DAG_ID}.py"
CELERY_CONFIG = "airflow_mlops_provider.celery_config.CELERY_CONFIG"
BACKENDS = {
    "mlops": "airflow_mlops_provider.xcom.ArtifactXComBackend",
    "default": "airflow.sdk.bases.xcom.BaseXCom",
}
PYTHON = Path(sys.executable)

# One dag.test() run in a fresh process; prints the run's JSON summary on its last line.
_DAG_TEST = r"""
import json, statistics, sys, time
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
dag = DagBag(dag_folder=sys.argv[1], safe_mode=False).dags[sys.argv[2]]
began = time.monotonic()
run = dag.test(run_conf={"shards": int(sys.argv[3]), "strict": False})
wall = time.monotonic() - began
with create_session() as session:
    tis = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run.run_id).all()
    make = [ti.duration for ti in tis if ti.task_id == "make" and ti.duration is not None]
    states = sorted({ti.state for ti in tis})
print(json.dumps({
    "state": str(run.state), "wall_s": round(wall, 2), "states": [str(s) for s in states],
    "task_mean_s": round(statistics.mean(make), 4), "task_median_s": round(statistics.median(make), 4),
}))
"""


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _cluster_run(cluster: AirflowCluster, shards: int) -> dict[str, Any]:
    run_id = cluster.trigger_rest(DAG_ID, {"shards": shards, "strict": False})
    state = cluster.wait_for_run(DAG_ID, run_id, timeout=7200)
    run = cluster.run(DAG_ID, run_id)
    tis = cluster.task_instances(DAG_ID, run_id)
    make = [t["duration"] for t in tis if t["task_id"] == "make" and t["duration"] is not None]
    reduce = next(t for t in tis if t["task_id"] == "reduce")
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/reduce/xcomEntries/return_value"
    result = cluster.api("GET", path)["value"] if state == "success" else None
    if isinstance(result, str):  # the default backend's row as Airflow shows it
        result = json.loads(result)
    return {
        "state": state,
        "wall_s": round(_seconds(run["start_date"], run["end_date"]), 2),
        "task_mean_s": round(statistics.mean(make), 3),
        "task_median_s": round(statistics.median(make), 3),
        "reduce_s": reduce["duration"],
        "frames": (result or {}).get("frames"),
        "changed": (result or {}).get("changed"),
    }


class _DagTestHome:
    """An AIRFLOW_HOME with its own SQLite metadata DB and artifact folder, for one backend."""

    def __init__(self, workdir: Path, name: str, backend: str) -> None:
        home = workdir / name
        home.mkdir()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
            "AIRFLOW__CORE__XCOM_BACKEND": backend,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__MLOPS__ARTIFACT_ROOT": (home / "artifacts").as_uri(),
        }
        subprocess.run([str(PYTHON.parent / "airflow"), "db", "migrate"], env=self.env, check=True,
                       capture_output=True)  # fmt: skip

    def run(self, shards: int) -> dict[str, Any]:
        proc = subprocess.run(
            [str(PYTHON), "-c", _DAG_TEST, str(DAG_FILE), DAG_ID, str(shards)],
            env=self.env, capture_output=True, text=True, timeout=7200,
        )  # fmt: skip
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _clusters(mode: str, store: str, server: S3Server | None) -> dict[str, AirflowCluster]:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    if server is not None:
        server.client().create_bucket(Bucket=bucket)
    clusters: dict[str, AirflowCluster] = {}
    for name, backend in BACKENDS.items():
        env = {"AIRFLOW__CORE__XCOM_BACKEND": backend}
        if server is not None:
            env["AIRFLOW_CONN_AWS_DEFAULT"] = server.connection_uri()
        options: dict[str, Any] = {"parallelism": 4}
        if mode == "celery":
            # Both clusters preload pandas and pyarrow in their workers (docs/deployment.md).
            env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = CELERY_CONFIG
            options = {"executor": "CeleryExecutor", "worker_concurrency": 3, "parallelism": 6}
        root = f"s3://{bucket}/{name}" if store == "s3" else None
        clusters[name] = AirflowCluster([DAG_FILE], artifact_root=root, env=env, **options).__enter__()
    return clusters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mode", choices=["dag-test", "local", "celery"], default="local")
    parser.add_argument("--store", choices=["s3", "local"], help="cluster modes: default s3")
    parser.add_argument("--shards", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    store = args.store or ("local" if args.mode == "dag-test" else "s3")
    if args.mode == "celery" and store == "local":
        parser.error("Celery workers run in homes of their own: use --store s3")

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in BACKENDS}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as workdir:
        server = S3Server() if store == "s3" else None
        runners: dict[str, Any] = {}
        try:
            if args.mode == "dag-test":
                for name, backend in BACKENDS.items():
                    runners[name] = _DagTestHome(Path(workdir), name, backend)
            else:
                runners = _clusters(args.mode, store, server)
            for repeat in range(args.repeats):
                for name, runner in runners.items():
                    began = time.monotonic()
                    if args.mode == "dag-test":
                        outcome = runner.run(args.shards)
                    else:
                        outcome = _cluster_run(runner, args.shards)
                    outcome["load_average"] = os.getloadavg()
                    results[name].append(outcome)
                    print(f"repeat {repeat + 1} {name}: {outcome} ({time.monotonic() - began:.0f} s)")
        finally:
            if args.mode != "dag-test":
                for cluster in runners.values():
                    cluster.stop()
            if server is not None:
                server.stop()

    summary = {
        name: {
            "wall_s_min": min(r["wall_s"] for r in runs),
            "wall_s_median": statistics.median(r["wall_s"] for r in runs),
            "task_median_s": statistics.median(r["task_median_s"] for r in runs),
        }
        for name, runs in results.items()
    }
    ours, theirs = summary["mlops"], summary["default"]
    report = {
        "command": " ".join(["dev/bench_fanout.py", *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "mode": args.mode,
        "store": store,
        "shards": args.shards,
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "runs": results,
        "summary": summary,
        "wall_ratio_median": round(ours["wall_s_median"] / theirs["wall_s_median"], 3),
        "wall_ratio_min": round(ours["wall_s_min"] / theirs["wall_s_min"], 3),
        "overhead_per_task_s": round((ours["wall_s_median"] - theirs["wall_s_median"]) / args.shards, 4),
    }
    print(
        json.dumps({k: report[k] for k in ("summary", "wall_ratio_median", "overhead_per_task_s")}, indent=2)
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
