"""A task killed by a signal (the OOM killer's SIGKILL) is seen, explained and paged.

The unit tests parse log messages that Airflow itself wrote: lines copied from the log of a real
SIGKILLed task, and messages produced by the Task SDK supervisor's own exit check run on real
processes that died by a signal or an exit code. The cluster tests run ``mlops_killed`` as
production runs it (scheduler + LocalExecutor, then ``airflow dags test --use-executor``, against an
API server on PostgreSQL): a real task process allocates memory and kills itself with SIGKILL.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import traceback
import types
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from browser import (
    chromium_page,
    login,
    open_ml_tab,
    open_task,
    require_browser,
    screenshot_on_failure,
)
from cluster import PASSWORD, USER, AirflowCluster, require_postgres
from conftest import TESTS_DIR

from airflow_mlops_provider.catalog.task_logs import (
    TaskExit,
    exit_from_audit_events,
    exit_from_messages,
    orphaned_reason,
)
from airflow_mlops_provider.decorators.ml_task import LiveRecord, comms_thread_safe
from airflow_mlops_provider.kill_listener import KilledTask, died, killed_task_listener, load_notifier
from airflow_mlops_provider.records import TASK_KEY

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DAG_ID = "mlops_killed"
ALLOCATE_MB = 300  # as in tests/dags/mlops_killed.py
MIB = 2**20

# The last lines of .../dag_id=mlops_killed/.../task_id=hog/attempt=1.log, verbatim: a real run of
# tests/dags/mlops_killed.py on Airflow 3.3.2 (airflow dags test --use-executor, 2026-11-29).
REAL_SIGKILL_LOG = r"""
{"timestamp":"2026-11-29T22:12:55.584120Z","level":"info","event":"::endgroup::","map_index":-1,"ti_id":"01a2295e-4023-7e2a-bcb2-38e70858381d","try_number":1,"dag_id":"mlops_killed","task_id":"hog","run_id":"manual__2026-11-29T22:12:52.352432+00:00","logger":"task","filename":"task_runner.py","lineno":2232}
{"timestamp":"2026-11-29T22:12:56.050749Z","level":"warning","event":"Task hog: peak memory 407.9 MiB is above memory_warning_mb=400","logger":"airflow.task.operators.airflow_mlops_provider.decorators.ml_task.MLDecoratedOperator","filename":"ml_task.py","lineno":186}
{"timestamp":"2026-11-29T22:13:01.121806Z","level":"critical","event":"Process terminated by signal. Likely out of memory error (OOM). For more information, see https://airflow.apache.org/docs/apache-airflow/stable/troubleshooting.html#process-terminated-by-signal.","signal":-9,"signal_name":"SIGKILL","logger":"task"}
"""  # noqa: E501


def test_reads_sigkill_from_the_log_of_a_real_killed_task() -> None:
    messages = [json.loads(line) for line in REAL_SIGKILL_LOG.strip().splitlines()]
    found = exit_from_messages(messages)
    assert (found.kind, found.signal, found.exit_code) == ("signal", "SIGKILL", -9)
    assert found.reason == "killed by SIGKILL (likely out of memory)"
    assert found.died and found.likely_oom and found.traceback is None
    # Plain-text renderings of the same line (other log handlers) carry the fields as key=value.
    text = f"CRITICAL - {messages[-1]['event']} signal=-9 signal_name=SIGKILL"
    assert exit_from_messages([{"event": text}]).signal == "SIGKILL"


def _supervisor_messages(code: str) -> tuple[Any, list[dict[str, Any]]]:
    """What the Task SDK supervisor logs when its child ends like ``code`` does: its own exit check
    (``WatchedSubprocess._check_subprocess_exit``) run on a real process that ended that way."""
    import psutil
    import structlog
    from airflow.sdk.execution_time.supervisor import PsutilTracker, WatchedSubprocess
    from structlog.testing import capture_logs

    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    process = psutil.Process(child.pid)
    psutil.wait_procs([process], timeout=30)
    supervisor = types.SimpleNamespace(
        _exit_code=None,
        _process=PsutilTracker(process),
        _process_exit_monotonic=None,
        process_log=structlog.get_logger(logger_name="task"),
    )
    with capture_logs() as messages:
        while WatchedSubprocess._check_subprocess_exit(supervisor) is None:
            time.sleep(0.01)
    return supervisor._exit_code, messages


KILL = "import os, signal; os.kill(os.getpid(), signal.{})"


@pytest.mark.parametrize(
    ("code", "kind", "signal_name", "exit_code", "reason"),
    [
        (KILL.format("SIGKILL"), "signal", "SIGKILL", -9, "likely out of memory"),
        (KILL.format("SIGSEGV"), "signal", "SIGSEGV", -11, "segmentation"),
        (KILL.format("SIGTERM"), "signal", "SIGTERM", -15, "killed by SIGTERM"),
        ("import os; os.abort()", "signal", "SIGABRT", -6, "aborted"),
        ("import os; os._exit(3)", "exit_code", None, 3, "exited with code 3"),
    ],
)
def test_reads_what_the_supervisor_logs_for_each_ending(
    code: str, kind: str, signal_name: str | None, exit_code: int, reason: str
) -> None:
    real_exit_code, messages = _supervisor_messages(code)
    assert int(real_exit_code) == exit_code
    found = exit_from_messages(messages)
    assert (found.kind, found.signal, found.exit_code) == (kind, signal_name, exit_code)
    assert reason in found.reason and found.died


def test_an_execution_timeout_is_not_a_kill() -> None:
    import structlog
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    with structlog.testing.capture_logs() as messages:
        try:
            with timeout(1):
                time.sleep(5)
        except AirflowTaskTimeout:
            messages.append({"event": traceback.format_exc()})
    found = exit_from_messages(messages)
    assert found.kind == "timeout" and not found.died
    assert "AirflowTaskTimeout" in found.traceback


def test_a_traceback_before_the_kill_does_not_hide_it() -> None:
    messages = [json.loads(line) for line in REAL_SIGKILL_LOG.strip().splitlines()]
    logged = {"event": 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: caught'}
    found = exit_from_messages([logged, *messages])
    assert found.signal == "SIGKILL" and "ValueError: caught" in found.traceback
    only_trace = exit_from_messages([logged])
    assert only_trace.kind == "exception" and only_trace.reason == "ValueError: caught"


def test_the_scheduler_verdicts_from_the_audit_log() -> None:
    assert exit_from_audit_events([("running", None), ("heartbeat timeout", "x")]).kind == "heartbeat_timeout"
    mismatch = exit_from_audit_events([("state mismatch", "Executor reported ... Learn more: https://x")])
    assert mismatch.kind == "state_mismatch" and mismatch.died and "Learn more" not in mismatch.reason
    assert exit_from_audit_events([("failed", None)]) is None


def test_a_running_try_whose_process_is_gone_is_orphaned() -> None:
    from airflow.utils.net import get_hostname

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert "is gone" in orphaned_reason("running", get_hostname(), gone.pid, started)
    assert orphaned_reason("running", get_hostname(), os.getpid(), datetime.now(timezone.utc)) is None
    assert orphaned_reason("failed", get_hostname(), gone.pid, started) is None
    assert orphaned_reason("running", "another-host", gone.pid, started) is None


class _RecordingTI:
    def __init__(self) -> None:
        self.pushed: list[dict[str, Any]] = []

    def xcom_push(self, key: str, value: dict[str, Any]) -> None:
        assert key == TASK_KEY
        self.pushed.append(dict(value))


def test_the_live_record_is_pushed_at_start_on_the_warning_and_while_memory_grows(caplog) -> None:
    now = [0.0]
    ti = _RecordingTI()
    operator = types.SimpleNamespace(memory_warning_mb=100, task_id="t", log=logging.getLogger("t"))
    live = LiveRecord(operator, {"ti": ti}, {"operator": "@ml.task"}, from_thread=True, clock=lambda: now[0])

    def sample(at: float, mib: int) -> int:
        now[0] = at
        live.on_sample(mib * MIB)
        return len(ti.pushed)

    live.start(50 * MIB)
    assert [(r["status"], r["peak_rss_mb"], r["start_rss_mb"]) for r in ti.pushed] == [("running", 50, 50)]
    assert sample(0.5, 80) == 1  # grew, but the last push was 0.5 s ago
    with caplog.at_level(logging.WARNING, logger="t"):
        assert sample(0.6, 120) == 2  # crossing memory_warning_mb is pushed (and logged) at once
    assert "above memory_warning_mb=100" in ti.pushed[-1]["memory_warning"] and "120.0 MiB" in caplog.text
    assert sample(1.0, 400) == 2  # rate-limited
    assert sample(2.7, 400) == 3 and ti.pushed[-1]["peak_rss_mb"] == 400
    assert sample(9.0, 410) == 3  # +10 MiB is not worth a push
    live.finish("done", 410 * MIB, inputs=[])
    assert ti.pushed[-1]["status"] == "done" and ti.pushed[-1]["peak_rss_mb"] == 410
    assert ti.pushed[-1]["memory_warning_mb"] == 100


def test_without_thread_safe_comms_only_the_main_thread_pushes() -> None:
    assert not comms_thread_safe()  # outside a task process (and in dag.test()'s in-process runs)
    ti = _RecordingTI()
    operator = types.SimpleNamespace(memory_warning_mb=100, task_id="t", log=logging.getLogger("t"))
    live = LiveRecord(operator, {"ti": ti}, {}, clock=lambda: 100.0)
    live.start(10 * MIB)
    live.on_sample(500 * MIB)
    assert len(ti.pushed) == 1 and live.memory_warning is not None  # recorded, pushed at the end
    assert live.finish("done", 500 * MIB)["memory_warning"] == live.memory_warning


def test_a_failing_push_never_fails_the_task_and_backs_off(caplog) -> None:
    now = [0.0]
    attempts: list[float] = []

    class DownTI:
        def xcom_push(self, key: str, value: dict[str, Any]) -> None:
            attempts.append(now[0])
            raise ConnectionError("API server down")

    operator = types.SimpleNamespace(memory_warning_mb=100, task_id="t", log=logging.getLogger("t"))
    live = LiveRecord(operator, {"ti": DownTI()}, {}, from_thread=True, clock=lambda: now[0])
    live.start(10 * MIB)
    for step in range(1, 41):  # 2 s of samples every 50 ms while memory grows
        now[0] = step * 0.05
        live.on_sample((10 + 50 * step) * MIB)
    assert attempts == [0.0, 0.1]  # the start, then the warning crossing; then nothing for 2 s
    assert live.failed_pushes == 2 and caplog.text.count("ConnectionError: API server down") == 1


def test_a_failed_try_still_marked_running_died_even_without_a_log() -> None:
    assert died(TaskExit(log_read=False), {"status": "running"}).kind == "vanished"
    assert died(TaskExit(), {"status": "running"}) is None  # the log says nothing (yet): no page
    assert died(TaskExit(log_read=False), {"status": "done"}) is None
    assert died(TaskExit("exception", "ValueError: x"), {"status": "failed"}) is None
    killed = KilledTask(
        "d",
        "r",
        "t",
        -1,
        2,
        "h",
        None,
        None,
        TaskExit("signal", "killed by SIGKILL (likely out of memory)", "SIGKILL"),
        {"peak_rss_mb": 812.5, "memory_warning_mb": 500},
    )
    assert killed.message == (
        "Task d.t (run r, try 2): killed by SIGKILL (likely out of memory); last recorded peak memory "
        "812.5 MiB (memory_warning_mb=500)."
    )
    assert killed.context()["ti"] is killed and killed.context()["mlops"]["exit"]["likely_oom"]


def test_the_notifier_option_names_an_instance_or_a_class() -> None:
    assert load_notifier("") is None
    assert load_notifier("logging.root") is logging.root  # an instance: used as it is
    assert isinstance(load_notifier("collections.OrderedDict"), dict)  # a class: instantiated


def test_the_mlops_plugin_registers_the_kill_listener() -> None:
    from airflow_mlops_provider.plugins import MLOpsPlugin

    assert killed_task_listener in MLOpsPlugin.listeners


# -- a real cluster ------------------------------------------------------------------------------

PAGER_PLUGIN = '''\
"""Test plugin: a notifier that appends each page to $MLOPS_TEST_PAGES, and the kill listener
(registered here only while MLOpsPlugin does not list it)."""

from __future__ import annotations

import json
import os

from airflow.providers.common.compat.sdk import AirflowPlugin
from airflow.sdk import BaseNotifier

from airflow_mlops_provider.kill_listener import killed_task_listener
from airflow_mlops_provider.plugins import MLOpsPlugin


class FilePager(BaseNotifier):
    template_fields = ("text",)

    def __init__(self, text):
        super().__init__()
        self.text = text

    def notify(self, context):
        page = {
            "text": self.text,
            "pid": os.getpid(),
            "run_id": context["run_id"],
            "task_id": context["task_id"],
            "exit": context["mlops"]["exit"],
            "peak_rss_mb": context["ti"].peak_rss_mb,
        }
        with open(os.environ["MLOPS_TEST_PAGES"], "a") as out:
            out.write(json.dumps(page) + "\\n")


PAGER = FilePager(text="{{ ti.task_id }}: {{ reason }}")


class KillListenerPlugin(AirflowPlugin):
    name = "mlops_test_kill_listener"
    listeners = [] if killed_task_listener in MLOpsPlugin.listeners else [killed_task_listener]
'''

# Run in the cluster's environment: the test session's own Airflow points at another database.
READ_BACK = """
import json, sys
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow_mlops_provider.catalog.task_logs import read_task_exit

dag_id, run_id = sys.argv[1:3]
with create_session() as s:
    ti = dict(dag_id=dag_id, run_id=run_id, task_id="hog")
    record = s.query(XComModel.value).filter_by(**ti, key="mlops.task").scalar()
    states = {t.task_id: t.state for t in s.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id)}
found = read_task_exit(dag_id, run_id, "hog").as_dict()
print("RESULT " + json.dumps({"record": record, "states": states, "exit": found}))
"""


@pytest.fixture(scope="module")
def killing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowCluster, Path]]:
    require_postgres()
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "mlops_test_pager.py").write_text(PAGER_PLUGIN)
    pages = tmp_path_factory.mktemp("pages") / "pages.jsonl"
    env = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__MLOPS__KILLED_TASK_NOTIFIER": "mlops_test_pager.PAGER",
        "MLOPS_TEST_PAGES": str(pages),
    }
    with AirflowCluster([TESTS_DIR / "dags" / f"{DAG_ID}.py"], env=env, parallelism=2) as cluster:
        yield cluster, pages


def _read_back(cluster: AirflowCluster, run_id: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", READ_BACK, DAG_ID, run_id], env=cluster.env, capture_output=True, text=True
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    if isinstance(result["record"], str):
        result["record"] = json.loads(result["record"])
    return result


def _pages(pages: Path, run_id: str) -> list[dict[str, Any]]:
    if not pages.exists():
        return []
    return [p for p in map(json.loads, pages.read_text().splitlines()) if p["run_id"] == run_id]


def _assert_killed_and_recorded(result: dict[str, Any]) -> None:
    assert result["states"] == {"hog": "failed", "after_hog": "upstream_failed"}
    record = result["record"]
    assert record["status"] == "running"  # the last push before the kill; no code ran after it
    assert record["peak_rss_mb"] - record["start_rss_mb"] >= ALLOCATE_MB * 0.95
    assert record["peak_rss_mb"] > ALLOCATE_MB and "above memory_warning_mb=400" in record["memory_warning"]
    exit_ = result["exit"]
    assert (exit_["kind"], exit_["signal"], exit_["exit_code"]) == ("signal", "SIGKILL", -9)
    assert exit_["likely_oom"] and exit_["reason"] == "killed by SIGKILL (likely out of memory)"


@pytest.mark.slow
def test_the_scheduler_records_explains_and_pages_a_killed_task(killing_cluster) -> None:
    cluster, pages = killing_cluster
    run_id = cluster.trigger_rest(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, run_id, timeout=120) == "failed"
    _assert_killed_and_recorded(_read_back(cluster, run_id))
    sent = cluster.poll("the page of the killed task", lambda: _pages(pages, run_id), timeout=60)
    assert len(sent) == 1
    page = sent[0]
    assert page["pid"] == cluster.procs["scheduler"].pid  # paged by the scheduler's listener
    assert page["text"] == "hog: killed by SIGKILL (likely out of memory)"  # templated per page
    assert page["exit"]["signal"] == "SIGKILL" and page["peak_rss_mb"] > ALLOCATE_MB


@pytest.mark.slow
def test_airflow_dags_test_records_explains_and_pages_a_killed_task(killing_cluster) -> None:
    cluster, pages = killing_cluster
    cluster.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": True}, params={"update_mask": "is_paused"})
    before = {r["dag_run_id"] for r in cluster.runs(DAG_ID)}
    proc = cluster.cli("dags", "test", DAG_ID, "--use-executor", check=False)
    assert proc.returncode == 1 and "DagRun failed" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    (run_id,) = {r["dag_run_id"] for r in cluster.runs(DAG_ID)} - before
    _assert_killed_and_recorded(_read_back(cluster, run_id))
    sent = _pages(pages, run_id)  # written before the command exited
    assert len(sent) == 1 and sent[0]["pid"] != cluster.procs["scheduler"].pid
    assert sent[0]["text"] == "hog: killed by SIGKILL (likely out of memory)"


@pytest.mark.slow
def test_the_ml_view_says_why_the_task_died(killing_cluster) -> None:
    """The task, run and overview pages (their JSON, and the task's tab in Airflow's UI in Chromium)
    say "killed by SIGKILL (likely out of memory), peak RSS N MiB"."""
    cluster, _ = killing_cluster
    run_id = cluster.runs(DAG_ID)[-1]["dag_run_id"]
    run = urllib.parse.quote(run_id, safe="")

    def page(path: str) -> dict[str, Any]:
        response = cluster.http("GET", f"/mlops/api{path}")
        assert response.status_code == 200, response.text[:2000]
        return response.json()

    task = page(f"/dags/{DAG_ID}/runs/{run}/tasks/hog")
    said = task["exit"]["text"]
    assert said.startswith("killed by SIGKILL (likely out of memory), peak RSS ") and said.endswith(" MiB")
    assert float(said.split("peak RSS ")[1].split()[0].replace(",", "")) > ALLOCATE_MB
    # The page shows the end of the log inline, the supervisor's verdict last and marked critical.
    critical = [line for line in task["log_excerpt"] if line["level"] == "critical"]
    assert critical and critical[-1]["text"].startswith("Process terminated by signal"), task["log_excerpt"]
    (failed,) = page(f"/dags/{DAG_ID}/runs/{run}")["failed_tasks"]
    assert (failed["task_id"], failed["text"]) == ("hog", said)
    problems = [p for p in page("/overview")["problems"] if p["dag_id"] == DAG_ID]
    assert {"kind": "task", "task_id": "hog", "message": said}.items() <= problems[0].items()

    require_browser()
    from playwright.sync_api import expect

    with chromium_page(cluster.url) as browser_page, screenshot_on_failure(browser_page, "killed-task"):
        login(browser_page, cluster.url, USER, PASSWORD)
        open_task(browser_page, DAG_ID, run_id, "hog")
        frame = open_ml_tab(browser_page, "mlops_task")
        expect(frame.locator("#task-exit")).to_contain_text(said)
        critical_line = frame.locator("#log-excerpt tr.level-critical").last
        expect(critical_line).to_contain_text("Process terminated by signal")
