"""A "production cluster" for tests: Airflow 3 run the way clusters run it.

:class:`AirflowCluster` starts, for one test module, everything a small real deployment has:

* a fresh PostgreSQL metadata database (``mlops_cluster_<hex>``, dropped ``WITH (FORCE)`` at exit),
  migrated with ``airflow db migrate``;
* ``airflow scheduler`` (LocalExecutor), ``airflow dag-processor`` and ``airflow api-server`` as three
  separate processes, each in its own process group with its log in ``<home>/<component>.log``;
* the provider's XCom backend and artifact store, SimpleAuthManager with a known ``admin:admin``
  login, a fixed JWT secret, and the Task Execution API of the api-server for the task processes.

Tasks therefore run as on a worker: the scheduler hands them to the LocalExecutor, each in a
supervised process that talks to the api-server, with no database access.

``executor="CeleryExecutor"`` runs tasks as a scaled-out cluster does instead: Redis on
127.0.0.1:6379 as the broker (a queue of the cluster's own), the cluster's PostgreSQL database as
Celery's result backend, and ``celery_workers`` processes of ``airflow celery worker``, each with
its own hostname, AIRFLOW_HOME, copy of the DAG files and log folder (no local disk is shared
between workers; task logs go to a remote store when ``remote_logs`` is given).

Typical use, one cluster per module (start-up: 8-14 s on an idle 2-core machine, up to 25 s when
other clusters run next to it; stopping: 2-5 s)::

    from cluster import AirflowCluster, cluster_fixture

    cluster = cluster_fixture(dags=[DAGS / "mlops_cluster_nofab.py"], fab=False)

    def test_runs(cluster: AirflowCluster) -> None:
        run_id = cluster.trigger_rest("mlops_cluster_nofab")
        assert cluster.wait_for_run("mlops_cluster_nofab", run_id) == "success"

``fab=False`` makes every process of the cluster behave as if ``apache-airflow-providers-fab`` and
``flask_appbuilder`` were not installed (see :func:`hidden_packages_dir`).

Every failure message (timeouts, REST errors, a component exiting) ends with the tail of the three
component logs (:meth:`AirflowCluster.process_logs`), so a CI failure can be read without re-running.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import requests

BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")
POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
XCOM_BACKEND = "airflow_mlops_provider.xcom.ArtifactXComBackend"
USER = "admin"
PASSWORD = "admin"
COMPONENTS = ("api-server", "dag-processor", "scheduler")
REDIS_URL = os.environ.get("MLOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TERMINAL_STATES = frozenset({"success", "failed"})
#: A fixed Fernet key (any valid one): connections and variables stay readable by every component.
FERNET_KEY = "l6nVzE0E7Q0K4v1d8Lr7cFhH2o5fQH3oKqvUjFQ3b1E="

#: What ``fab=False`` hides: import names (a package and its submodules) and distribution names.
FAB_MODULES = ("airflow.providers.fab", "flask_appbuilder")
FAB_DISTRIBUTIONS = ("apache-airflow-providers-fab", "flask-appbuilder")

_SITECUSTOMIZE = '''\
"""Written by tests/cluster.py: this interpreter behaves as if some packages were not installed.

Imports of the hidden packages (and their submodules) raise ModuleNotFoundError, and
importlib.metadata / importlib_metadata do not list their distributions, so entry points such as
Airflow's ``apache_airflow_provider`` group never reach them.
"""

import re
import sys

HIDDEN_MODULES = {modules!r}
HIDDEN_DISTRIBUTIONS = {distributions!r}


def _normalize(name):
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _hidden_module(fullname):
    return any(fullname == name or fullname.startswith(name + ".") for name in HIDDEN_MODULES)


class NotInstalledFinder:
    """First on sys.meta_path: the hidden packages are refused before any other finder sees them."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if _hidden_module(fullname):
            raise ModuleNotFoundError(
                f"No module named {{fullname!r}} (hidden by tests/cluster.py)", name=fullname
            )
        return None

    @classmethod
    def invalidate_caches(cls):
        pass


def _hidden_distribution(dist):
    name = getattr(dist, "_normalized_name", None)
    if not name:
        try:
            name = dist.metadata["Name"]
        except Exception:
            return False
    return _normalize(name) in HIDDEN_DISTRIBUTIONS


def _filter_discover(module):
    original = module.Distribution.__dict__["discover"].__func__

    def discover(cls, **kwargs):
        return (dist for dist in original(cls, **kwargs) if not _hidden_distribution(dist))

    module.Distribution.discover = classmethod(discover)


sys.meta_path.insert(0, NotInstalledFinder)
for _name in list(sys.modules):
    if _hidden_module(_name):
        del sys.modules[_name]

import importlib.metadata

_filter_discover(importlib.metadata)
try:  # Airflow reads entry points through the backport on Python < 3.12
    import importlib_metadata
except ImportError:
    pass
else:
    _filter_discover(importlib_metadata)
'''


class ClusterError(AssertionError):
    """The cluster did not do what a test waited for; the message carries the component logs."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hidden_packages_dir(
    target: Path, modules: Iterable[str] = FAB_MODULES, distributions: Iterable[str] = FAB_DISTRIBUTIONS
) -> Path:
    """Write ``target/sitecustomize.py`` hiding ``modules`` and ``distributions``; returns ``target``.

    Put ``target`` first on ``PYTHONPATH`` and every Python process started with that environment
    (and every process forked from it) behaves as if those packages were not installed: importing
    them raises ``ModuleNotFoundError`` (as does ``importlib.util.find_spec`` for them), and their
    distributions and entry points are not listed by ``importlib.metadata`` / ``importlib_metadata``,
    so Airflow's ``ProvidersManager`` never sees a hidden provider.
    """
    target.mkdir(parents=True, exist_ok=True)
    dists = sorted({name.lower().replace("_", "-") for name in distributions})
    (target / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.format(modules=tuple(modules), distributions=tuple(dists))
    )
    return target


#: Access-log records of successful requests (mostly the harness's own polling): left out of tails.
_QUIET_LINE = re.compile(r"\[http\.access\].* status_code=[23]\d\d\b")
_ERROR_LINE = re.compile(r"\[(error|critical)\s*\]|^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")
_VOLATILE = re.compile(r"^\S*\d{4}-\d\d-\d\dT[\d:.]+Z?\s*|0x[0-9a-f]+|\b\d+\b")


def _read(path: Path) -> list[str] | None:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return None


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log, without successful access-log records."""
    text = _read(path)
    if text is None:
        return f"<no log at {path}>"
    return "\n".join([line for line in text if not _QUIET_LINE.search(line)][-lines:])


def _error_lines(path: Path, limit: int = 8) -> list[str]:
    """The last ``limit`` distinct error records and exception lines of a log, each with its count
    (lines differing only in timestamps, numbers or addresses count as one), cut to 300 chars."""
    found: dict[str, list] = {}
    for line in _read(path) or []:
        if _ERROR_LINE.search(line):
            key = _VOLATILE.sub("#", line)[:300]
            entry = found.pop(key, [0, ""])
            found[key] = [entry[0] + 1, line[:300]]
    return [f"{line}  (x{count})" if count > 1 else line for count, line in list(found.values())[-limit:]]


def _psycopg2_connect():
    import psycopg2

    conn = psycopg2.connect(POSTGRES_URL, connect_timeout=5)
    conn.autocommit = True
    return conn


class AirflowCluster:
    """Scheduler + DAG processor + API server on a fresh PostgreSQL database (a context manager).

    :param dags: DAG files, or folders of DAG files, copied into the cluster's dags folder.
    :param dag_ids: the DAGs to wait for at start-up (parsed, visible through the REST API). Default:
        the stem of every ``.py`` file given (this repository names each DAG after its file).
    :param fab: ``False`` hides ``apache-airflow-providers-fab`` and ``flask_appbuilder`` from every
        process of the cluster (and from :attr:`env`, so CLI commands see the same). Either way the
        auth manager is the simple one.
    :param artifact_root: ``[mlops] artifact_root``; default ``<home>/artifacts`` (a local folder).
    :param env: extra environment for every process (e.g. ``AIRFLOW_CONN_AWS_DEFAULT``); applied last,
        so it can override any setting made here. The test process's own ``AIRFLOW*`` variables
        (conftest's SQLite set-up) are not passed on.
    :param unpause: unpause the ``dag_ids`` once parsed (Airflow creates DAGs paused).
    :param parallelism: ``[core] parallelism``, which is also the LocalExecutor's number of workers.
    :param start_timeout: seconds for the API server to be healthy and the DAGs to be parsed.
    :param executor: ``LocalExecutor`` or ``CeleryExecutor`` (see the module docstring).
    :param celery_workers: names of the Celery workers to start (each its own hostname and home).
    :param worker_concurrency: task slots per Celery worker.
    :param remote_logs: ``(remote_base_log_folder, conn_id)``: task logs are uploaded there (the
        connection must be in ``env``), as clusters whose workers share no disk do.

    Attributes: :attr:`url` (API server base URL), :attr:`home` (AIRFLOW_HOME), :attr:`dags_folder`,
    :attr:`artifact_root`, :attr:`db_name`, :attr:`env`, :attr:`startup_seconds` (wall time of
    ``__enter__``) and :attr:`timings` (seconds per start-up phase).
    """

    def __init__(
        self,
        dags: Iterable[str | Path] = (),
        *,
        dag_ids: Iterable[str] | None = None,
        fab: bool = True,
        artifact_root: str | None = None,
        env: Mapping[str, str] | None = None,
        unpause: bool = True,
        parallelism: int = 4,
        start_timeout: float = 180.0,
        executor: str = "LocalExecutor",
        celery_workers: Iterable[str] = ("worker-a", "worker-b"),
        worker_concurrency: int = 4,
        remote_logs: tuple[str, str] | None = None,
    ) -> None:
        self.dag_paths = [Path(p) for p in dags]
        if dag_ids is None:
            dag_ids = [
                p.stem
                for path in self.dag_paths
                for p in ([path] if path.is_file() else sorted(path.glob("*.py")))
                if p.suffix == ".py" and not p.name.startswith("_")
            ]
        self.dag_ids = list(dag_ids)
        self.fab = fab
        self.extra_env = dict(env or {})
        self.unpause_at_start = unpause
        self.parallelism = parallelism
        self.start_timeout = start_timeout
        self.executor = executor
        self.celery_workers = list(celery_workers) if executor == "CeleryExecutor" else []
        self.worker_concurrency = worker_concurrency
        self.remote_logs = remote_logs
        self.celery_queue = ""
        self._artifact_root = artifact_root
        self.home: Path = Path()
        self.dags_folder: Path = Path()
        self.artifact_root = ""
        self.db_name = ""
        self.url = ""
        self.port = 0
        self.procs: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}
        self.startup_seconds = 0.0
        self._env: dict[str, str] = {}
        self._token: str | None = None
        self._session: requests.Session | None = None
        self._db_created = False
        self._killed: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> AirflowCluster:
        started = time.monotonic()
        try:
            self._prepare()
            self._phase("db migrate", self._migrate)
            for attempt in range(1, 4):
                self._phase("spawn", self._spawn_all)
                try:
                    self._phase("api-server healthy", self._wait_healthy)
                    break
                except ClusterError:
                    # Another process may take the free port between choosing it and binding it.
                    if attempt == 3 or "already in use" not in self.log_path("api-server").read_text():
                        raise
                    self._stop_processes()
                    self._set_port(_free_port())
            if self.celery_workers:
                self._phase("celery workers", lambda: self.wait_for_workers(self.start_timeout))
            self._phase("dags parsed", lambda: self.wait_for_dags(self.dag_ids, self.start_timeout))
            if self.unpause_at_start:
                for dag_id in self.dag_ids:
                    self.unpause(dag_id)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _phase(self, name: str, func: Callable[[], object]) -> None:
        begin = time.monotonic()
        func()
        self.timings[name] = round(time.monotonic() - begin, 2)

    def _prepare(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mlops-cluster-"))
        self.dags_folder = self.home / "dags"
        self.dags_folder.mkdir()
        for path in self.dag_paths:
            if path.is_dir():
                shutil.copytree(path, self.dags_folder, dirs_exist_ok=True)
            else:
                shutil.copy(path, self.dags_folder / path.name)
        self.artifact_root = self._artifact_root or (self.home / "artifacts").as_uri()

        self.db_name = f"mlops_cluster_{uuid.uuid4().hex[:12]}"
        conn = _psycopg2_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {self.db_name}")
        finally:
            conn.close()
        self._db_created = True
        db_url = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)

        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({USER: PASSWORD}))

        # Nothing of the test session's own Airflow set-up (conftest: SQLite, its home) leaks in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_", "AIRFLOW__", "_AIRFLOW", "PYTEST_"))
        }
        python_path = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
        if not self.fab:
            python_path.insert(0, str(hidden_packages_dir(self.home / "hide-fab")))
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
                "AIRFLOW__CORE__XCOM_BACKEND": XCOM_BACKEND,
                "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{db_url}/{self.db_name}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": "mlops-cluster-api-secret",
                "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": "mlops-cluster-jwt-secret",
                # Parse soon after start and after every change (file mtime); a 2-core machine.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
                "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
                # A changed DAG is stored at its next parse, and the api-server's DAG cache checks
                # the stored DAG's hash at every lookup (both wait 30 s by default).
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": "False",
                # Each cluster its own ports: several may run on one machine at once.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                "AIRFLOW__MLOPS__ARTIFACT_ROOT": self.artifact_root,
                "GX_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if python_path:
            env["PYTHONPATH"] = os.pathsep.join(python_path)
        if self.remote_logs:
            folder, conn_id = self.remote_logs
            env.update(
                {
                    "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
                    "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": folder,
                    "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": conn_id,
                }
            )
        if self.executor == "CeleryExecutor":
            self.celery_queue = f"mlops_{uuid.uuid4().hex[:12]}"
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url.replace('+psycopg2', '')}/{self.db_name}",
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.celery_queue,
                    # A worker that dies (SIGKILL, lost machine) is noticed within this many seconds.
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "40",
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                }
            )
        env.update(self.extra_env)
        self._env = env
        self._set_port(_free_port())

    def _set_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._env["AIRFLOW__API__PORT"] = str(port)
        self._env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{self.url}/execution/"
        self._token = None

    def _migrate(self) -> None:
        log = self.home / "db-migrate.log"
        with log.open("wb") as out:
            proc = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                timeout=300,
            )
        if proc.returncode != 0:
            raise ClusterError(f"airflow db migrate failed ({proc.returncode}):\n{_tail(log, 80)}")

    def _spawn_all(self) -> None:
        # The DAG processor first: parsing is the longest part of start-up.
        self._spawn("dag-processor", ["dag-processor"])
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port)])
        # Task logs are read from the shared local folder: no log server process is needed.
        self._spawn("scheduler", ["scheduler", "--skip-serve-logs"])
        for name in self.celery_workers:
            self._spawn_worker(name)

    def _spawn(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        with (self.home / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=dict(env or self._env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd or self.home,
                start_new_session=True,
            )

    def _spawn_worker(self, name: str) -> None:
        """``airflow celery worker`` as on a machine of its own: its own AIRFLOW_HOME, copy of the DAG
        files, log folder and hostname (what task instances record); no log server (remote logs)."""
        home = self.home / name
        dags = home / "dags"
        shutil.copytree(self.dags_folder, dags, dirs_exist_ok=True)
        (home / "mlops_worker_identity.py").write_text(
            "import os\n\n\ndef hostname():\n    return os.environ['MLOPS_WORKER_NAME']\n"
        )
        python_path = [str(home), *filter(None, [self._env.get("PYTHONPATH")])]
        env = {
            **self._env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "mlops_worker_identity.hostname",
            "MLOPS_WORKER_NAME": name,
            "PYTHONPATH": os.pathsep.join(python_path),
        }
        args = ["celery", "worker", "--celery-hostname", f"{name}@{self.celery_queue}"]
        args += ["--queues", self.celery_queue, "--skip-serve-logs", "--without-mingle", "--without-gossip"]
        self._spawn(name, args, env=env, cwd=home)

    def worker_pids(self, name: str) -> list[int]:
        """The Celery worker ``name`` and every process under it (pool processes, task supervisors
        and the task processes in their own process groups)."""
        import psutil

        root = psutil.Process(self.procs[name].pid)
        return [root.pid, *(p.pid for p in root.children(recursive=True))]

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL a Celery worker and everything under it at once, as when its machine or
        container dies; returns the PIDs killed. The component is then no longer checked for life."""
        pids = self.worker_pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc = self.procs.pop(name)
        proc.wait(10)
        self._killed[name] = proc
        return pids

    def wait_for_workers(self, timeout: float = 120.0) -> None:
        """Wait until every Celery worker answers a broadcast ping."""
        names = {f"{name}@{self.celery_queue}" for name in self.celery_workers}

        def answered() -> bool:
            from celery import Celery

            app = Celery(broker=REDIS_URL)
            try:
                replies = app.control.ping(timeout=1.0) or []
            finally:
                app.close()
            return names <= {key for reply in replies for key in reply}

        self.poll(f"the Celery workers {sorted(names)} to answer", answered, timeout, interval=1.0)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the three components (SIGTERM to each process group, SIGKILL after ``timeout``) and
        any task process they left behind, drop the database and remove the home folder (kept when
        ``MLOPS_KEEP_CLUSTER_HOME=1``, to read the logs after a failure). Safe to call twice."""
        began = time.monotonic()
        self._stop_processes(timeout)
        if self.celery_queue:  # messages left in the cluster's own queue
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(REDIS_URL, socket_timeout=5).delete(self.celery_queue)
        if self._db_created:
            self._db_created = False
            with contextlib.suppress(Exception):
                conn = _psycopg2_connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
                finally:
                    conn.close()
        if self.home != Path() and os.environ.get("MLOPS_KEEP_CLUSTER_HOME") != "1":
            shutil.rmtree(self.home, ignore_errors=True)
        self.timings["stop"] = round(time.monotonic() - began, 2)

    def _stop_processes(self, timeout: float = 20.0) -> None:
        import psutil

        began = time.monotonic()
        if self._session is not None:  # an open keep-alive connection delays uvicorn's shutdown
            self._session.close()
            self._session = None
        descendants: list[psutil.Process] = []
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(proc.pid).children(recursive=True)
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            # The leader may be gone while members of its group are not.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            self.timings[f"stop {name}"] = round(time.monotonic() - began, 2)
        # Task processes run in process groups of their own (the task supervisor's setpgid).
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self.procs = {}

    # ------------------------------------------------------------------ diagnostics

    @property
    def env(self) -> dict[str, str]:
        """The environment of the cluster's processes (a copy): run ``airflow ...`` CLI commands, or
        Python, against the same database, configuration and (with ``fab=False``) hidden packages."""
        return dict(self._env)

    def process_logs(self, lines: int = 40) -> str:
        """For failure messages: per component, whether it is running, its last distinct error lines
        (``[error]`` / ``[critical]`` records and exception lines) and the tail of its log."""
        parts = []
        for name in (*COMPONENTS, *self.celery_workers):
            proc = self.procs.get(name) or self._killed.get(name)
            status = "not started" if proc is None else ("running" if proc.poll() is None else "exited")
            if proc is not None and proc.poll() is not None:
                status += f" with code {proc.returncode}"
            log = self.log_path(name)
            errors = _error_lines(log)
            summary = f"errors (last {len(errors)} distinct):\n" + "\n".join(errors) + "\n" if errors else ""
            parts.append(
                f"----- {name} ({status}) {log} -----\n{summary}last {lines} lines:\n{_tail(log, lines)}"
            )
        return "\n".join(parts)

    def log_path(self, component: str) -> Path:
        """``<home>/<component>.log`` (``api-server``, ``dag-processor``, ``scheduler``, ``db-migrate``)."""
        return self.home / f"{component}.log"

    def fail(self, message: str) -> ClusterError:
        """A :class:`ClusterError` whose message ends with :meth:`process_logs`:
        ``raise cluster.fail("what went wrong")``."""
        return ClusterError(f"{message}\n\n{self.process_logs()}")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise self.fail(f"airflow {name} exited with code {proc.returncode}")

    def poll(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
        """Call ``check()`` until it returns a truthy value (returned); fails with the logs after
        ``timeout`` seconds, or as soon as a component has exited."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self._check_alive()
            try:
                result = check()
            except ClusterError:
                raise
            except Exception as error:  # e.g. the API server not listening yet
                last_error, result = error, None
            if result:
                return result
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error!r})" if last_error else ""
                raise self.fail(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
            time.sleep(interval)

    # ------------------------------------------------------------------ start-up waits

    def _wait_healthy(self) -> None:
        import requests

        def healthy() -> bool:
            response = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5)
            return response.status_code == 200

        self.poll("the api-server to answer /api/v2/monitor/health", healthy, self.start_timeout)

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until each DAG is parsed and served by ``GET /api/v2/dags/{dag_id}``; fails at once
        with the import error when a DAG file of the cluster does not import."""
        pending = set(dag_ids)

        def parsed() -> bool:
            for dag_id in sorted(pending):
                if self.http("GET", f"/api/v2/dags/{dag_id}").status_code == 200:
                    pending.discard(dag_id)
            if pending:
                errors = self.api("GET", "/api/v2/importErrors").get("import_errors", [])
                if errors:
                    raise self.fail(
                        f"DAG import errors while waiting for {sorted(pending)}:\n"
                        + "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                    )
            return not pending

        self.poll(f"the DAGs {sorted(pending)} to be parsed", parsed, timeout, interval=0.5)

    def add_dag_file(self, path: str | Path, *, wait_for: Iterable[str] = (), timeout: float = 120.0) -> Path:
        """Copy a DAG file into the dags folder (replacing the file of the same name) and wait until
        the DAG processor has stored this file's code for each DAG id in ``wait_for`` (read back with
        ``GET /api/v2/dagSources/{dag_id}``): the new or changed DAG is then what the scheduler runs.
        Returns the file's path in the dags folder."""
        source = Path(path).read_text()
        target = self.dags_folder / Path(path).name
        target.write_text(source)
        for dag_id in wait_for:
            self.poll(
                f"the DAG processor to store the new code of {target.name} for DAG {dag_id}",
                lambda dag_id=dag_id: self.dag_source(dag_id) == source,
                timeout,
                interval=0.5,
            )
        return target

    def dag_source(self, dag_id: str) -> str | None:
        """The DAG file's code as Airflow stored it for the DAG's latest version (``None`` while the
        DAG is unknown)."""
        response = self.http("GET", f"/api/v2/dagSources/{dag_id}", headers={"Accept": "application/json"})
        return response.json()["content"] if response.status_code == 200 else None

    # ------------------------------------------------------------------ REST

    def token(self) -> str:
        """A JWT for ``admin`` from ``POST /auth/token`` (cached)."""
        import requests

        if self._token is None:
            response = requests.post(
                f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30
            )
            if response.status_code not in (200, 201):
                raise self.fail(f"POST /auth/token: {response.status_code} {response.text[:2000]}")
            self._token = response.json()["access_token"]
        return self._token

    def http(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated request to any path of the API server (e.g. ``/mlops/...``); the raw
        ``requests.Response`` whatever its status."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        return self._session.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    def api(
        self, method: str, path: str, json: Any = None, *, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Authenticated REST call on ``/api/v2`` (``path`` with or without that prefix); returns the
        decoded JSON (``None`` for an empty body). Any status >= 400 fails with the body and the logs."""
        if not path.startswith("/api/"):
            path = "/api/v2" + (path if path.startswith("/") else "/" + path)
        response = self.http(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise self.fail(f"{method} {path} -> {response.status_code}: {response.text[:3000]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def _paged(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        items: list[dict] = []
        while True:
            page = self.api("GET", path, params={**(params or {}), "limit": 100, "offset": len(items)})
            batch = list(page[key])
            items += batch
            if len(batch) < 100:
                return items

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG (``PATCH /dags/{dag_id}``)."""
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False}, params={"update_mask": "is_paused"})

    def trigger_rest(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run as the UI does (``POST /dags/{id}/dagRuns``, ``"logical_date": null``);
        returns its run_id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def trigger_cli(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run with ``airflow dags trigger`` in the cluster's environment; returns its run_id."""
        args = ["dags", "trigger", dag_id, "--output", "json"]
        if conf:
            args += ["--conf", json.dumps(dict(conf))]
        proc = self.cli(*args)
        for line in reversed(proc.stdout.splitlines()):  # log lines come first on stdout
            if line.startswith("[{"):
                with contextlib.suppress(ValueError, LookupError, TypeError):
                    return json.loads(line)[0]["dag_run_id"]
        raise self.fail(f"airflow dags trigger printed no run:\n{proc.stdout[-3000:]}")

    def cli(self, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``airflow ARGS...`` in the cluster's environment (text output captured); with
        ``check`` a non-zero exit fails with its output and the component logs."""
        proc = subprocess.run(
            [AIRFLOW, *args], env=self._env, capture_output=True, text=True, timeout=timeout, cwd=self.home
        )
        if check and proc.returncode != 0:
            raise self.fail(
                f"airflow {' '.join(args)} exited with {proc.returncode}:\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
            )
        return proc

    def run(self, dag_id: str, run_id: str) -> dict:
        """``GET /dags/{id}/dagRuns/{run_id}``."""
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> str:
        """Poll the run until it is ``success`` or ``failed``; returns that state. On timeout the
        message shows the run's task-instance states and the component logs."""
        state: dict[str, str] = {}

        def done() -> bool:
            state["value"] = self.run(dag_id, run_id)["state"]
            return state["value"] in TERMINAL_STATES

        try:
            self.poll(f"run {dag_id}/{run_id} to finish", done, timeout, interval=0.5)
        except ClusterError as error:
            try:
                tis = {
                    f"{t['task_id']}[{t['map_index']}]": t["state"]
                    for t in self.task_instances(dag_id, run_id)
                }
            except ClusterError:
                tis = {}
            raise ClusterError(f"run state {state.get('value')!r}, task instances {tis}\n{error}") from None
        return state["value"]

    def runs(self, dag_id: str) -> list[dict]:
        """All runs of a DAG, oldest first by ``run_after`` then ``start_date`` (runs triggered in
        Airflow 3 have no logical date)."""
        runs = self._paged(f"/dags/{dag_id}/dagRuns", "dag_runs", {"order_by": "run_after"})
        return sorted(runs, key=lambda r: (r["run_after"] or "", r["start_date"] or ""))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The task instances of a run (``GET .../taskInstances``), mapped ones included."""
        return self._paged(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> list[dict]:
        """Clear a run (``POST .../clear``, not a dry run) so the scheduler runs it again; returns the
        task instances that were cleared. Wait again with :meth:`wait_for_run`."""
        body = {"dry_run": False, "only_failed": only_failed}
        result = self.api("POST", f"/dags/{dag_id}/dagRuns/{run_id}/clear", body)
        self.poll(
            f"run {dag_id}/{run_id} to leave its finished state after clear",
            lambda: self.run(dag_id, run_id)["state"] not in TERMINAL_STATES,
            30,
        )
        return list((result or {}).get("task_instances", []))

    def backfill(self, dag_id: str, from_date: str, to_date: str, **options: Any) -> dict:
        """Create a backfill (``POST /api/v2/backfills``; ``options`` e.g. ``max_active_runs``,
        ``reprocess_behavior``, ``dag_run_conf``, ``run_backwards``); returns the backfill (its ``id``).
        Dates are ISO 8601 strings. Wait with :meth:`wait_for_backfill`."""
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, **options}
        return self.api("POST", "/backfills", body)

    def wait_for_backfill(self, backfill_id: int, timeout: float = 300.0) -> list[dict]:
        """Wait until the backfill is completed; returns its runs (``run_type == "backfill"`` runs of
        the DAG whose logical date is in its range), oldest first."""
        info: dict[str, Any] = {}

        def completed() -> bool:
            info.update(self.api("GET", f"/backfills/{backfill_id}"))
            return info["completed_at"] is not None

        self.poll(f"backfill {backfill_id} to complete", completed, timeout, interval=0.5)
        return [
            r
            for r in self.runs(info["dag_id"])
            if r["run_type"] == "backfill"
            and r["logical_date"]
            and _iso(info["from_date"]) <= _iso(r["logical_date"]) <= _iso(info["to_date"])
        ]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task try's log as text (``GET .../logs/{try_number}``, full content), one line per
        event: ``timestamp level event key=value...``."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        result = self.api("GET", path, params={"map_index": map_index, "full_content": "true"})
        lines = []
        for entry in result.get("content", []):
            if isinstance(entry, dict):
                extra = " ".join(
                    f"{k}={v}"
                    for k, v in entry.items()
                    if k not in ("timestamp", "level", "event", "sources")
                )
                head = " ".join(str(entry.get(k) or "") for k in ("timestamp", "level")).strip()
                lines.append(" ".join(p for p in (head, str(entry.get("event", "")), extra) if p))
            else:
                lines.append(str(entry))
        return "\n".join(lines)


def _iso(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def require_postgres() -> None:
    """Skip the calling test (or fixture) when the PostgreSQL server of the tests is not reachable."""
    from conftest import postgres_available

    if not postgres_available():
        pytest.skip(
            f"needs PostgreSQL at {POSTGRES_URL} (set MLOPS_TEST_POSTGRES_URL; dev/run-tests.sh sets one "
            "up): the cluster's metadata DB is a fresh database on it"
        )


def cluster_fixture(
    dags: Iterable[str | Path] = (), *, scope: str = "module", **kwargs: Any
) -> Callable[..., Iterator[AirflowCluster]]:
    """A pytest fixture (module-scoped by default) yielding a started :class:`AirflowCluster`;
    skips when PostgreSQL is not reachable. ``kwargs`` go to :class:`AirflowCluster`.

    Assign it to a module attribute named after the fixture: ``cluster = cluster_fixture([...])``.
    """
    dag_list = list(dags)

    @pytest.fixture(scope=scope)
    def cluster() -> Iterator[AirflowCluster]:
        require_postgres()
        with AirflowCluster(dag_list, **kwargs) as started:
            print(f"cluster at {started.url} started in {started.startup_seconds:.1f} s: {started.timings}")
            yield started

    return cluster
