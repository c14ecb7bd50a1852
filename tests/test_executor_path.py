"""The production path: a real ``airflow api-server`` and LocalExecutor task processes.

Each task runs in its own supervised process that talks to the API server over the Task Execution
API (no database access), so the XCom backend, the try-number listener and the snapshot listener
are exercised exactly as on a worker.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest
from airflow_runner import run_dag_cli
from conftest import BIN, api_server_process

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"),
        reason="needs a server metadata DB: the API server and the LocalExecutor's task processes write "
        "concurrently, and on SQLite's single write lock a run can stall ('database is locked'). They run "
        "instead in the PostgreSQL session that test_postgres_metadata.py starts (that test skips, "
        "naming what to start, when PostgreSQL is not reachable).",
    ),
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = os.environ.copy()
    env["AIRFLOW__API_AUTH__JWT_SECRET"] = "mlops-test-secret"
    with api_server_process(env, tmp_path_factory.mktemp("api") / "api-server.log") as url:
        yield {**env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/"}


def test_dag_runs_on_the_local_executor_through_the_api_server(api_server, store) -> None:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    env = {
        **api_server,
        **{k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW__MLOPS", "AIRFLOW_CONN"))},
    }
    run = run_dag_cli("mlops_lazy_and_mapped", "--use-executor", env=env)
    assert run.state == "success"
    assert run.row("reduce") == sum(range(40))
    assert run.row("stream_sum")["rows"] == 50_000
    flaky = run.row("flaky")
    assert flaky["uri"].startswith(store) and "/try=2-" in flaky["uri"]
    assert ArtifactManager().load(flaky)["try"].tolist() == [2]


def test_failed_task_traceback_is_read_from_its_log(api_server) -> None:
    """Task processes write real log files; the ML view extracts the last traceback from them."""
    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", "mlops_bad_results", "--use-executor"],
        env=api_server,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from airflow_mlops_provider.catalog.task_logs import task_traceback

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id="mlops_bad_results").order_by(DagRun.id.desc()).first()
        run_id = run.run_id
    trace = task_traceback("mlops_bad_results", run_id, "returns_a_count", -1, 1)
    assert trace is not None
    assert "Traceback" in trace or "File " in trace
    assert "Check task 'returns_a_count' returned int" in trace
