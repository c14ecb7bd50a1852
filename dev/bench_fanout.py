"""Benchmark: per-task cost of the provider's XCom backend on a CeleryExecutor cluster.

Run it from the repository root with the project's virtualenv (PostgreSQL and Redis running)::

    .venv/bin/python dev/bench_celery.py                          # 500 shards, 1 run per backend
    .venv/bin/python dev/bench_celery.py --shards 200 --repeats 2 --json out.json

Two clusters of the same shape are started side by side (tests/cluster.py: PostgreSQL metadata DB
and Celery result backend, Redis broker, scheduler, dag-processor, api-server and two Celery
workers with 3 slots each; artifacts in moto's S3 server): one with this provider's backend, one
with Airflow's default XCom backend (``BaseXCom``: the DataFrame serialized into the metadata DB).
Both run ``tests/dags/mlops_celery_fanout.py``: ``--shards`` mapped tasks each returning a
200-row DataFrame, and a reduce that reads them all and compares each with what it must be.
Runs alternate between the clusters (ours, default, ours, ...) so that load swings hit both; the
idle cluster's scheduler keeps polling, as an idle cluster does.

Reported per run: wall time from the run's start to its end, the mean and median duration of the
mapped tasks (Airflow's own start/end per task instance), the reduce's duration, and how many
frames the reduce found changed (strict checking is off here so that the default backend's
changes are counted, not raised). The per-task overhead is the difference of wall times divided
by the number of shards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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
CELERY_CONFIG = "airflow_mlops_provider.celery_config.CELERY_CONFIG"
BACKENDS = {
    "mlops": "airflow_mlops_provider.xcom.ArtifactXComBackend",
    "default": "airflow.sdk.bases.xcom.BaseXCom",
}


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _one_run(cluster: AirflowCluster, shards: int) -> dict[str, Any]:
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
        "distinct": (result or {}).get("distinct"),
        "changed": (result or {}).get("changed"),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shards", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    server = S3Server()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    server.client().create_bucket(Bucket=bucket)
    clusters: dict[str, AirflowCluster] = {}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in BACKENDS}
    try:
        for name, backend in BACKENDS.items():
            clusters[name] = AirflowCluster(
                [ROOT / "tests" / "dags" / f"{DAG_ID}.py"],
                executor="CeleryExecutor",
                worker_concurrency=3,
                parallelism=6,
                artifact_root=f"s3://{bucket}/{name}",
                env={
                    "AIRFLOW_CONN_AWS_DEFAULT": server.connection_uri(),
                    "AIRFLOW__CORE__XCOM_BACKEND": backend,
                    # Both clusters preload pandas and pyarrow in their workers (docs/deployment.md).
                    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG,
                },
            ).__enter__()
        for repeat in range(args.repeats):
            for name, cluster in clusters.items():
                began = time.monotonic()
                results[name].append(_one_run(cluster, args.shards))
                print(f"repeat {repeat + 1} {name}: {results[name][-1]} ({time.monotonic() - began:.0f} s)")
    finally:
        for cluster in clusters.values():
            cluster.stop()
        server.stop()

    summary = {
        name: {
            "wall_s_min": min(r["wall_s"] for r in runs),
            "wall_s_median": statistics.median(r["wall_s"] for r in runs),
            "task_median_s": statistics.median(r["task_median_s"] for r in runs),
        }
        for name, runs in results.items()
    }
    overhead = (summary["mlops"]["wall_s_median"] - summary["default"]["wall_s_median"]) / args.shards
    report = {
        "command": " ".join(["dev/bench_celery.py", *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "shards": args.shards,
        "repeats": args.repeats,
        "runs": results,
        "summary": summary,
        "overhead_per_task_s": round(overhead, 3),
    }
    print(json.dumps({k: report[k] for k in ("summary", "overhead_per_task_s")}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
