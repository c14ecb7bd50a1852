"""Benchmark: a reduce task walking the outputs of a mapped upstream on a far object store.

Run it from the repository root with the project's virtualenv::

    .venv/bin/python dev/bench_read_ahead.py                        # 20 ms per request, 5 repeats
    .venv/bin/python dev/bench_read_ahead.py --latency 0.05 --json out.json

``tests/dags/mlops_read_ahead.py`` (24 mapped tasks each returning a 500-row frame; a reduce that
iterates over them and compares each exactly) runs with ``dag.test()`` against moto's S3 server
behind tests/relay.py, which delays every request by ``--latency`` seconds as a store far from the
worker does. Runs alternate between reading ahead on (the default) and off
(``read_ahead.WINDOW = 0``); reported: the reduce task's duration (Airflow's own start and end),
min and median, and the most requests the relay saw in flight at once. Everything stays on
127.0.0.1 and in a temporary Airflow home with a SQLite metadata DB.
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
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "dev"))

from bench_xcom import MotoServer  # noqa: E402
from relay import Relay  # noqa: E402

DAG_ID = "mlops_read_ahead"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to each request")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-read-ahead-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__XCOM_BACKEND": "airflow_mlops_provider.xcom.ArtifactXComBackend",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__MLOPS__AWS_CONN_ID": "aws_default",
        }
    )
    (home / "dags").mkdir()
    shutil.copy(ROOT / "tests" / "dags" / f"{DAG_ID}.py", home / "dags")
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)

    server = MotoServer(home / "moto.log")
    server.wait_ready()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    server.create_bucket(bucket)
    relay = Relay(server.port, latency=args.latency)
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": relay.url, "region_name": "us-east-1"},
        }
    )
    os.environ["AIRFLOW__MLOPS__ARTIFACT_ROOT"] = f"s3://{bucket}/artifacts"

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from airflow_mlops_provider._compat import dagbag_class
    from airflow_mlops_provider.xcom import read_ahead

    dag = dagbag_class()(dag_folder=str(home / "dags"), safe_mode=False).dags[DAG_ID]
    window = read_ahead.WINDOW
    samples: dict[str, list[float]] = {"on": [], "off": []}
    peaks: dict[str, int] = {"on": 0, "off": 0}
    try:
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                read_ahead.WINDOW = window if mode == "on" else 0
                relay.reset_counters()
                run = dag.test()
                with create_session() as session:
                    ti = (
                        session.query(TaskInstance)
                        .filter_by(dag_id=DAG_ID, run_id=run.run_id, task_id="reduce")
                        .one()
                    )
                    assert ti.state == "success", ti.state
                    samples[mode].append(ti.duration)
                peaks[mode] = max(peaks[mode], relay.peak_busy)
                print(f"read ahead {mode}: reduce {ti.duration:.3f} s, most in flight {relay.peak_busy}")
    finally:
        relay.close()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    report = {
        "command": " ".join(["dev/bench_read_ahead.py", *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "latency_s": args.latency,
        "load_average": os.getloadavg(),
        "reduce_s": {
            mode: {"min": min(v), "median": statistics.median(v), "samples": v} for mode, v in samples.items()
        },
        "most_in_flight": peaks,
    }
    print(json.dumps({k: report[k] for k in ("reduce_s", "most_in_flight")}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
