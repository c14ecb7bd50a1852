"""``airflow mlops diff``: the structure and code changes between two recorded runs."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest
from airflow_runner import run_before_and_after_change
from conftest import BIN, DAGS_DIR

pytestmark = pytest.mark.slow

VERSION_1 = """
from __future__ import annotations
import pendulum
from airflow.sdk import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_cli_diff():
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    def clean(values: list[int]) -> list[int]:
        return [v for v in values if v > 1]

    clean(extract())

mlops_cli_diff()
"""

VERSION_2 = VERSION_1.replace("if v > 1]", "if v > 2]").replace(
    "    clean(extract())",
    "    @task\n    def report(values: list[int]) -> int:\n        return len(values)\n\n"
    "    report(clean(extract()))",
)


def test_diff_between_two_runs_of_a_changed_dag() -> None:
    first, second = run_before_and_after_change(
        DAGS_DIR / "mlops_cli_diff.py", textwrap.dedent(VERSION_1), textwrap.dedent(VERSION_2)
    )
    assert first.state == second.state == "success"
    proc = subprocess.run(
        [str(BIN / "airflow"), "mlops", "diff", "mlops_cli_diff", first.run_id, second.run_id],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "+ task report" in out
    assert "~ task clean code changed" in out
    assert "-    return [v for v in values if v > 1]" in out
    assert "+    return [v for v in values if v > 2]" in out
    assert "+ edge clean >> report" in out

    missing = subprocess.run(
        [str(BIN / "airflow"), "mlops", "diff", "mlops_cli_diff", first.run_id, "no_such_run"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: No structure snapshot") and "Traceback" not in missing.stderr
