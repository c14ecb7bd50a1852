"""Page someone when a task's process died: killed by a signal (the OOM killer), or lost.

Nothing in a task process runs after SIGKILL: no ``except``, no ``finally``, no thread, no
``on_failure_callback``, no ``on_task_instance_failed`` listener. In Airflow 3.3 the task's
supervisor sees its child die, logs "Process terminated by signal. Likely out of memory error
(OOM)." and marks the try failed through the Execution API (``ti_update_state``), which calls no
listener and queues no failure callback (apache/airflow#60858). Failure callbacks are queued for the
DAG processor only when the supervisor itself is gone (heartbeat timeout, executor state mismatch:
apache/airflow#53058).

What does run, under the scheduler and inside ``airflow dags test --use-executor`` alike, is the
``on_dag_run_failed`` listener when that failure fails the DAG run. :data:`killed_task_listener`
hands the run to a background thread (the hook runs inside the scheduler loop), which reads how each
failed task instance ended (:func:`~airflow_mlops_provider.catalog.task_logs.read_task_exit`) and
calls the notifier named by ``[mlops] killed_task_notifier`` for every one whose process died.

Limits: a killed try that is retried and then succeeds fails no run, so it pages no one (the ML view
still shows it); a task run in-process by ``airflow dags test`` without ``--use-executor`` takes the
whole command with it, so nothing is left to notice.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import hookimpl

from airflow_mlops_provider._background import BackgroundQueue
from airflow_mlops_provider.catalog._session import with_session
from airflow_mlops_provider.catalog.task_logs import TaskExit, read_task_exit
from airflow_mlops_provider.records import TASK_KEY

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

SECTION = "mlops"
OPTION = "killed_task_notifier"
#: Failed task instances examined per failed run at most (each costs one log read).
MAX_TASKS_PER_RUN = 100


@dataclass(frozen=True)
class KilledTask:
    """One try whose process died; the notifier gets it as ``context["ti"]``.

    :param record: the try's last ``mlops.task`` record (``@ml.task`` only): its ``peak_rss_mb`` is
        the last peak memory pushed before the process died.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    hostname: str | None
    start_date: datetime | None
    end_date: datetime | None
    exit: TaskExit
    record: dict[str, Any] | None = None

    @property
    def peak_rss_mb(self) -> float | None:
        return (self.record or {}).get("peak_rss_mb")

    @property
    def message(self) -> str:
        """One line for a page: which try, why it died, its last recorded peak memory."""
        where = f"{self.dag_id}.{self.task_id}" + (f"[{self.map_index}]" if self.map_index >= 0 else "")
        text = f"Task {where} (run {self.run_id}, try {self.try_number}): {self.exit.reason}"
        if self.peak_rss_mb is not None:
            text += f"; last recorded peak memory {self.peak_rss_mb} MiB"
            limit = (self.record or {}).get("memory_warning_mb")
            if limit is not None:
                text += f" (memory_warning_mb={limit})"
        return text + "."

    def context(self) -> dict[str, Any]:
        """What the notifier is called with (there is no task context: the task is dead).

        ``ti``/``task_instance`` (this object), ``dag_id``, ``run_id``, ``task_id``, ``map_index``,
        ``try_number``, ``reason``, ``message`` and ``mlops`` (``exit``: the exit reason as a dict,
        ``record``: the last ``mlops.task`` record). Templated notifier fields can use them, e.g.
        ``SlackNotifier(text="{{ message }}")``.
        """
        return {
            "ti": self,
            "task_instance": self,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "reason": self.exit.reason,
            "message": self.message,
            "mlops": {"exit": self.exit.as_dict(), "record": self.record},
        }


def _record(value: Any) -> dict[str, Any] | None:
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def died(task_exit: TaskExit, record: dict[str, Any] | None) -> TaskExit | None:
    """The exit to report for a failed try, or ``None`` when Airflow handled that failure itself.

    A failed try whose log cannot be read but whose ``mlops.task`` record still says ``running``
    died inside its callable (e.g. a remote log the supervisor never uploaded). A readable log that
    says nothing is not enough: a try marked failed by hand is still being stopped when a run
    marked failed is examined.
    """
    if task_exit.died:
        return task_exit
    if not task_exit.log_read and task_exit.kind is None and (record or {}).get("status") == "running":
        return TaskExit(
            "vanished",
            "the task process died while its callable was running; its log does not say why",
            traceback=task_exit.traceback,
            log_read=task_exit.log_read,
        )
    return None


def find_killed_tasks(dag_id: str, run_id: str, *, session: Session | None = None) -> list[KilledTask]:
    """The failed task instances of a run whose last try's process died, with their reasons."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    def run(s: Session) -> list[KilledTask]:
        tis = s.execute(
            select(
                TaskInstance.task_id,
                TaskInstance.map_index,
                TaskInstance.try_number,
                TaskInstance.hostname,
                TaskInstance.start_date,
                TaskInstance.end_date,
            )
            .where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.state == "failed",
                TaskInstance.try_number > 0,
            )
            .order_by(TaskInstance.end_date)
            .limit(MAX_TASKS_PER_RUN)
        ).all()
        records = {
            (r.task_id, r.map_index): _record(r.value)
            for r in s.execute(
                select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
                    XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == TASK_KEY
                )
            )
        }
        found = []
        for ti in tis:
            record = records.get((ti.task_id, ti.map_index))
            task_exit = read_task_exit(dag_id, run_id, ti.task_id, ti.map_index, ti.try_number, session=s)
            reported = died(task_exit, record)
            if reported is not None:
                found.append(
                    KilledTask(
                        dag_id,
                        run_id,
                        ti.task_id,
                        ti.map_index,
                        ti.try_number,
                        ti.hostname,
                        ti.start_date,
                        ti.end_date,
                        reported,
                        record,
                    )
                )
        return found

    return with_session(session, run)


def configured_notifier_path() -> str:
    from airflow.providers.common.compat.sdk import conf

    return (conf.get(SECTION, OPTION, fallback="") or "").strip()


def load_notifier(path: str | None = None) -> Any:
    """The notifier named by ``[mlops] killed_task_notifier`` (``None`` when unset).

    The option is the import path of a notifier (any ``BaseNotifier`` instance, or a callable taking
    the context, or a list of them), or of a notifier class, which is then instantiated without
    arguments. A path that does not import raises.
    """
    from airflow.sdk.module_loading import import_string

    path = configured_notifier_path() if path is None else path.strip()
    if not path:
        return None
    notifier = import_string(path)
    return notifier() if isinstance(notifier, type) else notifier


def _fresh(notifier: Any) -> Any:
    """A shallow copy per call: ``BaseNotifier`` renders its templated fields in place, for good."""
    try:
        return copy.copy(notifier)
    except Exception:
        return notifier


def notify_killed(killed: KilledTask, notifier: Any) -> dict[str, Any]:
    """Call the notifier (or each of a list) for one killed try, as checks call theirs."""
    from airflow_mlops_provider.checks.outcome import notify

    notifiers = notifier if isinstance(notifier, (list, tuple)) else [notifier]
    log.warning("%s", killed.message)
    return notify([_fresh(one) for one in notifiers], killed.context(), log)


class KilledTaskListener(BackgroundQueue[tuple[str, str]]):
    """``on_dag_run_failed`` listener: queue + one daemon thread that finds killed tries and pages.

    Does nothing unless ``[mlops] killed_task_notifier`` is set.

    :param exit_timeout: how long process exit (e.g. the end of ``airflow dags test``) waits for
        queued runs to be examined and notified.
    """

    thread_name = "mlops-killed-tasks"
    exit_warning = "Killed-task notifier: %d failed run(s) were not examined before exit"

    def __init__(self, exit_timeout: float = 60.0, max_seen: int = 10_000) -> None:
        self.max_seen = max_seen
        self.stats = {"runs": 0, "killed": 0, "notified": 0, "failed": 0}
        super().__init__(exit_timeout=exit_timeout)

    def _init_process_state(self) -> None:
        super()._init_process_state()
        self._seen: OrderedDict[tuple[str, str, str, int, int], None] = OrderedDict()

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        try:
            if configured_notifier_path():
                self.enqueue(str(dag_run.dag_id), str(dag_run.run_id))
        except Exception:  # never break the scheduler loop
            log.exception("Could not queue the killed-task check of %r", dag_run)

    def enqueue(self, dag_id: str, run_id: str) -> None:
        self.put((dag_id, run_id))

    def handle(self, item: tuple[str, str]) -> None:
        self.process(*item)

    def failed(self, item: tuple[str, str]) -> None:
        self.stats["failed"] += 1

    def _first_time(self, killed: KilledTask) -> bool:
        key = (killed.dag_id, killed.run_id, killed.task_id, killed.map_index, killed.try_number)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > self.max_seen:
                self._seen.popitem(last=False)
            return True

    def process(self, dag_id: str, run_id: str) -> list[KilledTask]:
        """Find the run's killed tries and notify each once (synchronously); returns them."""
        self.stats["runs"] += 1
        notifier = load_notifier()
        if notifier is None:
            return []
        killed = [k for k in find_killed_tasks(dag_id, run_id) if self._first_time(k)]
        for one in killed:
            self.stats["killed"] += 1
            outcome = notify_killed(one, notifier)
            self.stats["notified" if outcome.get("notified") else "failed"] += 1
        return killed


#: Register in the plugin's ``listeners`` (scheduler, and ``airflow dags test``, load it there).
killed_task_listener = KilledTaskListener()
