"""The DAG-level tests again, with Airflow's metadata DB on a real PostgreSQL server.

Production Airflow keeps XCom rows in a JSONB column there (key order, NUL characters and numbers
behave differently from SQLite's JSON), so the rows this backend writes must survive it. The
production path of ``test_executor_path.py`` (API server plus LocalExecutor task processes) runs
here too: it needs a database that takes concurrent writers. The tests run in a separate pytest
session because Airflow binds its metadata DB at import time.
"""

from __future__ import annotations

import re

import pytest
from conftest import TESTS_DIR, requires_postgres, run_in_postgres_session

pytestmark = pytest.mark.slow


@requires_postgres
def test_dag_runs_with_postgres_metadata_db() -> None:
    proc = run_in_postgres_session(
        str(TESTS_DIR / "test_dag_integration.py"),
        str(TESTS_DIR / "test_executor_path.py"),
        "-k",
        "not example_dags or local",
        timeout=1200,
    )
    tail = "\n".join(proc.stdout.splitlines()[-30:])
    assert proc.returncode == 0, tail
    assert "PASSED tests/test_dag_integration.py::test_runs_on_the_requested_metadata_db" in proc.stdout
    # The production path (API server + LocalExecutor task processes) runs here, on PostgreSQL.
    executor = "PASSED tests/test_executor_path.py::test_"
    run = f"{executor}dag_runs_on_the_local_executor_through_the_api_server"
    assert f"{run}[local]" in proc.stdout and f"{run}[s3]" in proc.stdout
    assert f"{executor}failed_task_traceback_is_read_from_its_log" in proc.stdout
    assert re.search(r"\d+ passed", tail) and not re.search(r"\d+ failed", tail), tail
