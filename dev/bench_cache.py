"""Benchmark: what ``@ml.task(cache=True)`` saves on a rerun of a 5-task pipeline.

Run it from the repository root with the project's virtualenv::

    .venv/bin/python dev/bench_cache.py                  # local store, 1M-row frames
    .venv/bin/python dev/bench_cache.py --rows 200000 --json out.json

It builds a temporary Airflow home (SQLite metadata DB, ``airflow db migrate``, not timed) with a
local artifact store and a chain of five cached tasks (make -> clean -> features -> train ->
evaluate), each doing real pandas / numpy work on a ``--rows``-row frame (evaluate scores every row
of the features table with the trained weights). Timed with ``dag.test()`` in one process, wall
clock from the call to its return: the first run (every task runs), a rerun with nothing changed
(every task hits), a rerun after the last task's code changed (only it runs: it loads the features
table and scores it again), and the same chain of five tasks that do nothing and cache nothing.
Each timed run's ``mlops.task`` records are checked: exactly the expected tasks hit.

The floor is ``dag.test()``'s own bookkeeping in one process, not a scheduler's: under a real
scheduler each task also pays its queueing and process start, which a hit does not remove.
Repeated ``--repeat`` times (fresh cache each time); min and median reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

PIPELINE = """
from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml

ROWS = {rows}


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def pipeline():
    @ml.task(cache={cache})
    def make() -> pd.DataFrame:
        {work_make}

    @ml.task(cache={cache})
    def clean(df: pd.DataFrame) -> pd.DataFrame:
        {work_clean}

    @ml.task(cache={cache})
    def features(df: pd.DataFrame) -> pd.DataFrame:
        {work_features}

    @ml.task(cache={cache})
    def train(df: pd.DataFrame) -> dict:
        {work_train}

    @ml.task(cache={cache})
    def evaluate(df: pd.DataFrame, model: dict) -> dict:
        {work_evaluate}

    table = features(clean(make()))
    evaluate(table, train(table))


pipeline()
"""

WORK = {
    "work_make": "rng = np.random.default_rng(0)\n        return pd.DataFrame("
    '{"a": rng.normal(size=ROWS), "b": rng.integers(0, 100, ROWS), "c": rng.normal(size=ROWS)})',
    "work_clean": 'return df[df["b"] != 0].sort_values("a").reset_index(drop=True)',
    "work_features": 'return df.assign(ab=df["a"] * df["b"], rank=df["c"].rank(), '
    'roll=df["a"].rolling(50).mean())',
    "work_train": 'x = df[["a", "b", "c", "ab"]].to_numpy()\n        '
    'w = np.linalg.lstsq(x, df["rank"].to_numpy(), rcond=None)[0]\n        return {"weights": w.tolist()}',
    # Scores every row: predictions, residuals, their quantiles and a rank correlation per decile.
    "work_evaluate": 'x = df[["a", "b", "c", "ab"]].to_numpy()\n        '
    'residual = df["rank"].to_numpy() - x @ np.array(model["weights"])\n        '
    'deciles = pd.qcut(df["a"], 10, labels=False)\n        '
    'by_decile = df.assign(r=residual).groupby(deciles)[["r", "rank"]].corr(method="spearman")\n        '
    'return {"rmse": float(np.sqrt(np.mean(residual**2))), '
    '"q": np.quantile(residual, [0.05, 0.5, 0.95]).tolist(), '
    '"corr": float(by_decile.to_numpy()[0::2, 1].mean())}  # v1',
}
NOTHING = {name: "return {}" for name in WORK}  # {}: train and evaluate are -> dict (multiple_outputs)
TASKS = ("make", "clean", "features", "train", "evaluate")


def _setup_home(home: Path) -> None:
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__XCOM_BACKEND": "airflow_mlops_provider.xcom.backend.ArtifactXComBackend",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "AIRFLOW__MLOPS__ARTIFACT_ROOT": (home / "artifacts").as_uri(),
        }
    )
    (home / "dags").mkdir(parents=True)
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())


def _run(home: Path, source: str, dag_id: str, hits: set[str] | None = None) -> float:
    """Seconds of one ``dag.test()`` call; with ``hits``, checks that exactly these tasks hit
    (read from the run's ``mlops.task`` records, so a fast run cannot be a broken one)."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops_provider.catalog import task_inputs

    path = home / "dags" / f"{dag_id}.py"
    path.write_text(source)
    bag = DagBag(dag_folder=str(path), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    started = time.perf_counter()
    run = bag.dags[dag_id].test()
    elapsed = time.perf_counter() - started
    assert run.state == "success", f"{dag_id}: {run.state}"
    if hits is not None:
        hit = set()
        for task_id in TASKS:
            record = task_inputs.task_record(dag_id, run.run_id, task_id)
            assert record is not None and record.cache is not None, f"{dag_id}/{task_id}: no cache record"
            if record.cache.get("hit"):
                hit.add(task_id)
        assert hit == hits, f"{dag_id}: hits {sorted(hit)}, expected {sorted(hits)}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlops-bench-cache-"))
    try:
        _setup_home(home)
        times: dict[str, list[float]] = {"first": [], "cached": [], "last_changed": [], "no_work": []}
        for i in range(args.repeat):
            dag_id = f"bench_cache_{i}"  # a fresh DAG (and cache) per repeat
            source = PIPELINE.format(rows=args.rows, dag_id=dag_id, cache="True", **WORK)
            times["first"].append(_run(home, source, dag_id, hits=set()))
            times["cached"].append(_run(home, source, dag_id, hits=set(TASKS)))
            changed = source.replace("}  # v1", ', "v": 2}  # v2')
            assert changed != source
            times["last_changed"].append(_run(home, changed, dag_id, hits=set(TASKS) - {"evaluate"}))
            empty = PIPELINE.format(rows=args.rows, dag_id=f"bench_nothing_{i}", cache="False", **NOTHING)
            times["no_work"].append(_run(home, empty, f"bench_nothing_{i}"))
        result: dict[str, Any] = {
            "rows": args.rows,
            "repeat": args.repeat,
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
            ).stdout.strip(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
            "seconds": {
                k: {"min": min(v), "median": statistics.median(v), "all": v} for k, v in times.items()
            },
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print("| run | min (s) | median (s) |\n|---|---|---|")
    for name, stats in result["seconds"].items():
        print(f"| {name} | {stats['min']:.2f} | {stats['median']:.2f} |")
    print(f"commit {result['commit']}, load average {result['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
