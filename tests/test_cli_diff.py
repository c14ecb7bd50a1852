"""``airflow mlops diff``: the structure, code and data changes between two recorded runs."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

import pytest
from airflow_runner import run_before_and_after_change
from conftest import DAGS_DIR, airflow, requires_provider_cli

if TYPE_CHECKING:
    import subprocess

pytestmark = [pytest.mark.slow, requires_provider_cli]

VERSION_1 = """
from __future__ import annotations
import pendulum
from airflow.sdk import dag, task
from airflow_mlops_provider.decorators import Regression, ml_check, ml_metric, ml_task

FEATURES = ["a", "b"]

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_cli_diff():
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    def clean(values: list[int]) -> list[int]:
        return [v for v in values if v > 1]

    @ml_task
    def featurize(values: list[int]) -> dict:
        return {name: len(values) for name in FEATURES}

    @ml_check(severity="warning")
    def enough(values: list[int]) -> bool:
        return len(values) > 0

    @ml_metric(lower=0.5)
    def size(values: list[int]) -> float:
        return float(len(values))

    values = clean(extract())
    featurize(values)
    enough(values)
    size(values)

mlops_cli_diff()
"""

VERSION_2 = (
    VERSION_1.replace("if v > 1]", "if v > 2]")
    .replace('FEATURES = ["a", "b"]', 'FEATURES = ["a", "b", "c"]')
    .replace('@ml_check(severity="warning")', '@ml_check(severity="error")')
    .replace("@ml_metric(lower=0.5)", "@ml_metric(lower=0.8, regression=Regression(window=3, max_drop=0.5))")
    .replace(
        "    values = clean(extract())",
        "    @task\n    def report(values: list[int]) -> int:\n        return len(values)\n\n"
        "    values = clean(extract())\n    report(values)",
    )
)


def mlops(*args: str) -> subprocess.CompletedProcess[str]:
    return airflow("mlops", *args, timeout=120)


def test_diff_between_two_runs_of_a_changed_dag() -> None:
    first, second = run_before_and_after_change(
        DAGS_DIR / "mlops_cli_diff.py", textwrap.dedent(VERSION_1), textwrap.dedent(VERSION_2)
    )
    assert first.state == second.state == "success", second.task_states
    proc = mlops("diff", "mlops_cli_diff", first.run_id, second.run_id)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert f"mlops_cli_diff: {first.run_id} -> {second.run_id}: 1 task added, 4 tasks changed, +1 edge" in out
    assert "  + task report (@task)" in out
    assert "  ~ task clean: code changed\n" in out
    assert "-    return [v for v in values if v > 1]" in out
    assert "+    return [v for v in values if v > 2]" in out
    # A module-level constant the task uses, and the settings of the ML decorators.
    assert "  ~ task featurize: code changed (FEATURES)\n" in out
    assert '-FEATURES = ["a", "b"]' in out and '+FEATURES = ["a", "b", "c"]' in out
    assert "  ~ check enough: severity warning -> error\n" in out
    assert "  ~ metric size: lower 0.5 -> 0.8, regression added (Regression(window=3, max_drop=0.5))\n" in out
    assert "+ edge clean >> report" in out
    # The data part, as the ML view's compare page shows it: the metric moved from 2 to 1 values.
    assert "  metric size.size: 2 -> 1 (-1)" in out

    # The same two runs by name: "latest" and the successful run before it.
    named = mlops("diff", "mlops_cli_diff", "previous", "latest", "--output", "json")
    assert named.returncode == 0, named.stderr[-2000:]
    data = json.loads(named.stdout)
    assert (data["run_a"], data["run_b"]) == (first.run_id, second.run_id)
    assert data["file_changed"] is True
    assert "check enough: severity warning -> error" in data["descriptions"]
    (metric,) = data["metrics"]
    assert (metric["task"], metric["before"], metric["after"], metric["delta"]) == ("size", 2.0, 1.0, -1.0)

    missing = mlops("diff", "mlops_cli_diff", first.run_id, "no_such_run")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: DAG 'mlops_cli_diff' has no run 'no_such_run'.")
    assert "Traceback" not in missing.stderr
    no_runs = mlops("diff", "mlops_no_such_dag", "previous", "latest")
    assert no_runs.returncode == 1 and "Traceback" not in no_runs.stderr
    assert "'previous' stands for the second-newest successful run" in no_runs.stderr


def _run_without_a_snapshot(dag_id: str, run_id: str) -> None:
    """A finished run of ``dag_id`` with no structure snapshot and no XComs (recorded before the
    plugin was installed, say), written through Airflow's models."""
    from datetime import datetime, timezone

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with create_session() as session:
        session.execute(
            insert(DagRun.__table__),
            [{"dag_id": dag_id, "run_id": run_id, "run_type": "manual", "state": "success"}
             | {"run_after": when, "start_date": when, "clear_number": 0, "span_status": "ended"}],
        )  # fmt: skip


def test_diff_prints_table_changes_and_degrades_without_a_snapshot() -> None:
    """The data part, line by line as the compare page shows it: rows, added, removed and retyped
    columns, mean, null-rate and distinct deltas. A run without a structure snapshot still gets the
    data part, with a note instead of the structure (exit 0), as the compare page does."""
    from airflow_runner import run_dag

    first = run_dag("mlops_compare", run_conf={"variant": 1})
    second = run_dag("mlops_compare", run_conf={"variant": 2})
    assert first.state == second.state == "success"
    proc = mlops("diff", "mlops_compare", first.run_id, second.run_id)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("  data ")]
    assert line.startswith("  data customers return_value: rows 4 -> 6, +column segment ("), line
    assert ", -column legacy, column score int64 -> float64, " in line, line
    assert "id: mean 2.5 -> 3.5 (+1)" in line, line
    assert "city: null_rate 0 -> 0.333333 (+0.333333); distinct 2 -> 3 (+1); new top values c, d" in line, (
        line
    )
    assert "  metric rows.rows: 4 -> 6 (+2) [ok -> warning]" in proc.stdout

    _run_without_a_snapshot("mlops_compare", "manual__before_snapshots")
    old = mlops("diff", "mlops_compare", "manual__before_snapshots", second.run_id)
    assert old.returncode == 0, old.stderr[-2000:]
    assert (
        f"mlops_compare: manual__before_snapshots -> {second.run_id}: structure not recorded for "
        "run(s) 'manual__before_snapshots'"
    ) in old.stdout
    assert "  + artifact customers return_value" in old.stdout
    assert "  metric rows.rows: None -> 6" in old.stdout
    data = json.loads(
        mlops("diff", "mlops_compare", "manual__before_snapshots", second.run_id, "--output", "json").stdout
    )
    assert "structure not recorded" in data["structure_error"] and data["artifacts_added"]
