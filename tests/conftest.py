"""Test set-up: a real, migrated Airflow metadata DB, the provider's XCom backend, and two stores.

Airflow resolves ``[core] xcom_backend`` when its task SDK is imported, so the environment is set
here, at import time of this conftest, before any test module imports Airflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

TESTS_DIR = Path(__file__).parent
_HOME = Path(tempfile.mkdtemp(prefix="mlops-airflow-home-"))
# dag.test() only runs DAGs that live in the configured dags folder: ours plus Airflow's examples.
DAGS_DIR = _HOME / "dags"
EXAMPLE_DAGS = ("example_xcom", "example_xcomargs", "tutorial_taskflow_api", "example_dynamic_task_mapping")

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__XCOM_BACKEND": "airflow_mlops_provider.xcom.ArtifactXComBackend",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__MLOPS__ARTIFACT_ROOT": (_HOME / "artifacts").as_uri(),
        # Great Expectations sends usage analytics by default: tests reach 127.0.0.1 only.
        "GX_ANALYTICS_ENABLED": "False",
    }
)
POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


def _create_postgres_database() -> str:
    """A fresh database for this session's Airflow metadata (dropped at the end)."""
    import psycopg2

    name = f"mlops_airflow_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(POSTGRES_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://") + "/" + name


# MLOPS_TEST_METADATA_DB=postgres runs the session against a real PostgreSQL metadata DB (JSONB).
if os.environ.get("MLOPS_TEST_METADATA_DB") == "postgres":
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = _create_postgres_database()

for leaked in ("AIRFLOW__MLOPS__SIGNING_KEY", "AIRFLOW__MLOPS__ALLOW_PICKLE", "AIRFLOW_CONN_AWS_DEFAULT"):
    os.environ.pop(leaked, None)

BIN = Path(sys.executable).parent


def pytest_sessionstart(session: pytest.Session) -> None:
    import importlib.util

    shutil.copytree(TESTS_DIR / "dags", DAGS_DIR)
    examples = Path(importlib.util.find_spec("airflow.example_dags").origin).parent
    for name in EXAMPLE_DAGS:
        shutil.copy(examples / f"{name}.py", DAGS_DIR / f"{name}.py")
    ours = Path(importlib.util.find_spec("airflow_mlops_provider.example_dags").origin).parent
    for path in ours.glob("example_*.py"):
        shutil.copy(path, DAGS_DIR / path.name)
    sys.path.insert(0, str(DAGS_DIR))
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
    db_url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if db_url.startswith("postgresql"):
        import psycopg2
        from airflow.settings import dispose_orm

        dispose_orm()
        conn = psycopg2.connect(POSTGRES_URL)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]} WITH (FORCE)")
        conn.close()


def airflow(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``airflow ...`` in a fresh process with this test's environment (or ``env``), fed ``stdin``."""
    return subprocess.run(
        [str(BIN / "airflow"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=timeout,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def api_server_process(env: dict[str, str], log: Path, timeout: float = 120) -> Iterator[str]:
    """A real ``airflow api-server`` on a free port of 127.0.0.1; yields its base URL."""
    import urllib.request

    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("airflow api-server did not start:\n" + log.read_text()[-5000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def set_unreachable_s3_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str) -> None:
    """An Airflow AWS connection whose endpoint is a closed port on 127.0.0.1 (fails fast)."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "a",
                "password": "b",
                "extra": {
                    "endpoint_url": f"http://127.0.0.1:{_free_port()}",
                    "region_name": "us-east-1",
                    "config_kwargs": {"retries": {"max_attempts": 1}},
                },
            }
        ),
    )


class S3Server:
    """moto's standalone S3 server, over HTTP on 127.0.0.1, in its own process."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto server did not start")

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def connection_uri(self, login: str = "testing", password: str = "testing") -> str:
        return json.dumps(
            {
                "conn_type": "aws",
                "login": login,
                "password": password,
                "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            }
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Configure ``[mlops] artifact_root`` for a local folder or the S3 test server; returns it."""
    if request.param == "local":
        root = (tmp_path / "artifacts").as_uri()
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = f"test-{uuid.uuid4().hex[:12]}"
        server.client().create_bucket(Bucket=bucket)
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", server.connection_uri())
        root = f"s3://{bucket}/airflow/artifacts"
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", root)
    monkeypatch.setenv("AIRFLOW__MLOPS__AWS_CONN_ID", "aws_default")
    return root


@pytest.fixture
def manager(store: str):
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    return ArtifactManager()


@pytest.fixture
def producer():
    from airflow_mlops_provider.artifacts.manifest import Producer

    return Producer("test_dag", "manual__2024-01-01T00:00:00+00:00", "make", -1, "return_value", 1)


def _provider_cli_supported() -> bool:
    from airflow_mlops_provider._compat import provider_cli_supported

    return provider_cli_supported()


#: For tests of ``airflow mlops ...``: Airflow 3.1 does not load provider CLI commands (3.2 does).
requires_provider_cli = pytest.mark.skipif(
    not _provider_cli_supported(),
    reason="Airflow 3.1 does not load provider CLI commands (new in 3.2): `airflow mlops` is absent",
)


#: For tests that need the PostgreSQL server of the tests.
requires_postgres = pytest.mark.skipif(
    not postgres_available(),
    reason="PostgreSQL is not reachable: start it on 127.0.0.1:5432 (trust auth, user postgres, "
    "database test) or set MLOPS_TEST_POSTGRES_URL",
)


def run_in_postgres_session(*pytest_args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``pytest_args`` in a fresh session whose metadata DB is PostgreSQL (``-rA``:
    the output lists every test's outcome)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["MLOPS_TEST_METADATA_DB"] = "postgres"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args, "-rA"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=TESTS_DIR.parent,
    )
