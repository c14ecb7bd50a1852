"""Why a task try ended: its last traceback, or the signal that killed its process.

A process killed by a signal (the kernel's OOM killer sends SIGKILL) runs no code afterwards: no
``except``, no ``finally``, no listener, no ``on_failure_callback``. What is known about it is
written by the task's supervisor, which sees its child die and logs into the task log
(``airflow/sdk/execution_time/supervisor.py``, ``ActivitySubprocess._check_subprocess_exit``):

* ``Process terminated by signal. Likely out of memory error (OOM). ...`` (critical, with fields
  ``signal=-9`` and ``signal_name="SIGKILL"``) and ``Process terminated by signal. ...`` (error) for
  any other signal;
* the ``Received SIGSEGV`` banner for a segmentation fault;
* ``Process exited abnormally`` (field ``exit_code``) for any other non-zero exit code;
* ``Server indicated the task shouldn't be running anymore. Terminating process`` when the API
  server refused its heartbeat (the try was cleared or marked, or its run timed out).

An execution timeout is raised inside the task (``Process timed out``, then ``AirflowTaskTimeout``),
so Airflow's failure handling still runs. When the supervisor itself died (worker lost, a container
OOM-killed as a whole), only the scheduler notices: it writes ``heartbeat timeout`` and ``state
mismatch`` events into the audit log table. A task run in-process by ``airflow dags test`` (without
``--use-executor``) takes the CLI process with it and nothing records its end: its task instance
stays ``running``; :func:`orphaned_reason` recognises it on the same host.

Logs are read through Airflow's own log reader (local files, the worker's log server or the remote
store, as configured), which needs the metadata DB: call this from the API server, the scheduler or
the CLI, not from a worker.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops_provider.catalog._session import state_name, with_session

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: How an ended try ended. ``signal``, ``exit_code``, ``heartbeat_timeout``, ``state_mismatch``,
#: ``orphaned`` and ``vanished`` (its callable never finished, and nothing says why) mean the process
#: died without Airflow's own failure handling (see ``TaskExit.died``).
ExitKind = Literal[
    "exception",
    "timeout",
    "server_terminated",
    "signal",
    "exit_code",
    "heartbeat_timeout",
    "state_mismatch",
    "orphaned",
    "vanished",
]
DIED_KINDS = frozenset({"signal", "exit_code", "heartbeat_timeout", "state_mismatch", "orphaned", "vanished"})

#: Log messages read per try at most, and the longest traceback kept.
MAX_MESSAGES = 50_000
MAX_TRACEBACK = 20_000

#: What a signal usually means for a task process (shown after the signal's name).
SIGNAL_HINTS = {
    "SIGKILL": "likely out of memory",
    "SIGSEGV": "segmentation fault, usually in native code",
    "SIGABRT": "aborted by native code",
    "SIGBUS": "bus error in native code",
    "SIGTERM": "terminated from outside the task",
    "SIGINT": "interrupted",
}

_SIGNAL_MESSAGE = "Process terminated by signal"
_SIGSEGV_BANNER = "Received SIGSEGV"
_ABNORMAL_EXIT = "Process exited abnormally"
_SERVER_TERMINATED = "Server indicated the task shouldn't be running anymore"
_TIMED_OUT = "Process timed out"
# Plain-text logs (other log handlers) carry structured fields as ``key=value``.
_FIELD = re.compile(r"\b(signal_name|signal|exit_code)=['\"]?(-?\w+)")


@dataclass(frozen=True)
class TaskExit:
    """Why one try of a task instance ended, as far as its log and the metadata DB tell.

    :param kind: how it ended (:data:`ExitKind`), ``None`` when nothing was found.
    :param reason: one human sentence, e.g. ``"killed by SIGKILL (likely out of memory)"``.
    :param signal: the signal's name (``"SIGKILL"``) when a signal ended the process.
    :param exit_code: the process's exit code (``-9`` for SIGKILL) when the supervisor logged one.
    :param traceback: the last traceback in the log, if any.
    :param log_read: whether the log could be read at all.
    :param excerpt: the log's last lines (``time``, ``level``, ``text``), for the task page.
    """

    kind: ExitKind | None = None
    reason: str | None = None
    signal: str | None = None
    exit_code: int | None = None
    traceback: str | None = None
    log_read: bool = True
    excerpt: list[dict[str, str]] = field(default_factory=list)

    @property
    def died(self) -> bool:
        """The process ended without Airflow's own failure handling (no callback, no listener ran)."""
        return self.kind in DIED_KINDS

    @property
    def likely_oom(self) -> bool:
        return self.signal == "SIGKILL"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "died": self.died, "likely_oom": self.likely_oom}


def signal_reason(name: str) -> str:
    """``"killed by SIGKILL (likely out of memory)"``."""
    hint = SIGNAL_HINTS.get(name)
    return f"killed by {name}" + (f" ({hint})" if hint else "")


# -- tracebacks ----------------------------------------------------------------------------------


def format_error_detail(details: list[dict[str, Any]]) -> str:
    """Airflow 3's structured ``error_detail`` log field as a Python-style traceback."""
    lines = []
    for exc in details:
        if not isinstance(exc, dict):
            continue
        lines.append("Traceback (most recent call last):")
        for frame in exc.get("frames") or []:
            lines.append(
                f'  File "{frame.get("filename")}", line {frame.get("lineno")}, in {frame.get("name")}'
            )
        lines.append(f"{exc.get('exc_type')}: {exc.get('exc_value')}")
    return "\n".join(lines)


def extract_traceback(messages: Iterable[Mapping[str, Any]]) -> str | None:
    """The last traceback in a task log (structured ``error_detail`` or a plain-text traceback)."""
    found = None
    collecting: list[str] | None = None
    for message in messages:
        if isinstance(message.get("error_detail"), list):
            found = format_error_detail(message["error_detail"]) or found
        event = str(message.get("event") or "")
        if "Traceback (most recent call last)" in event:
            collecting = [event[event.index("Traceback") :]]
            if "\n" in collecting[0]:  # the whole traceback in one message
                found, collecting = collecting[0], None
            continue
        if collecting is not None:
            collecting.append(event)
            if event and not event.startswith((" ", "\t")):
                found, collecting = "\n".join(collecting), None
    if collecting:
        found = "\n".join(collecting)
    return found[-MAX_TRACEBACK:] if found else None


# -- parsing --------------------------------------------------------------------------------------


def _fields(message: Mapping[str, Any], event: str) -> dict[str, str]:
    """Structured fields of a message, or ``key=value`` pairs found in its text."""
    found = {k: str(message[k]) for k in ("signal_name", "signal", "exit_code") if message.get(k) is not None}
    for key, value in _FIELD.findall(event):
        found.setdefault(key, value)
    return found


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def exit_from_messages(messages: Iterable[Mapping[str, Any]]) -> TaskExit:
    """Read a try's end from its log messages (dicts with at least ``event``; Airflow's
    ``StructuredLogMessage.model_dump()``).

    The supervisor's verdict, logged last, wins over a traceback logged before it: a task that
    caught and logged an exception and was then OOM-killed was killed.
    """
    messages = list(messages)
    verdict: dict[str, Any] = {}
    timed_out = False
    for message in messages:
        event = str(message.get("event") or "")
        if _SIGNAL_MESSAGE in event:
            fields = _fields(message, event)
            name = fields.get("signal_name")
            code = _int(fields.get("signal"))
            if name is None and code is not None:
                name = _signal_name(code)
            if name is None and "out of memory" in event.lower():
                name = "SIGKILL"
            verdict = {"kind": "signal", "signal": name, "exit_code": code if code is not None else None}
        elif _SIGSEGV_BANNER in event:
            verdict = {"kind": "signal", "signal": "SIGSEGV", "exit_code": -11}
        elif _ABNORMAL_EXIT in event:
            verdict = {"kind": "exit_code", "exit_code": _int(_fields(message, event).get("exit_code"))}
        elif _SERVER_TERMINATED in event:
            verdict = {"kind": "server_terminated"}
        elif _TIMED_OUT in event:
            timed_out = True
    trace = extract_traceback(messages)
    kind = verdict.get("kind")
    if kind == "signal":
        name = verdict.get("signal")
        reason = signal_reason(name) if name else "killed by a signal"
        return TaskExit("signal", reason, name, verdict.get("exit_code"), trace)
    if kind == "exit_code":
        code = verdict.get("exit_code")
        reason = f"the task process exited with code {code} without reporting a result"
        return TaskExit("exit_code", reason, None, code, trace)
    if kind == "server_terminated":
        reason = (
            "stopped by Airflow: the API server said the task should no longer run "
            "(its try was cleared or marked, or its DAG run timed out)"
        )
        return TaskExit("server_terminated", reason, traceback=trace)
    if timed_out or (trace is not None and "AirflowTaskTimeout" in trace):
        return TaskExit("timeout", "execution timeout (the task's execution_timeout passed)", traceback=trace)
    if trace is not None:
        last = trace.strip().splitlines()[-1]
        return TaskExit("exception", last[:500], traceback=trace)
    return TaskExit()


def _signal_name(code: int) -> str | None:
    import signal

    try:
        return signal.Signals(abs(code)).name
    except ValueError:
        return None


def exit_from_audit_events(events: Iterable[tuple[str, str | None]]) -> TaskExit | None:
    """The scheduler's verdict from audit-log ``(event, extra)`` rows of one try, if any."""
    for event, extra in events:
        if event == "heartbeat timeout":
            return TaskExit(
                "heartbeat_timeout",
                "no heartbeat from the task's supervisor: the worker or its container died "
                "(e.g. OOM-killed as a whole) or lost the API server",
            )
        if event == "state mismatch":
            detail = (extra or "").split(" Learn more")[0]
            return TaskExit(
                "state_mismatch",
                "the task process ended while the task was still running (killed outside Airflow)"
                + (f": {detail[:300]}" if detail else ""),
            )
    return None


def orphaned_reason(
    state: str | None, hostname: str | None, pid: int | None, start_date: datetime | None
) -> str | None:
    """Why a ``running`` try is known to be dead, checked on the host it ran on; else ``None``.

    ``airflow dags test`` without ``--use-executor`` runs tasks in its own process: killed, it
    takes the run with it, and no scheduler ever fails that try. Its task instance records the
    host and PID, so on that host a PID that is gone (or now belongs to a younger process) settles it.
    """
    if state != "running" or not hostname or not pid:
        return None
    import psutil
    from airflow.utils.net import get_hostname

    if hostname != get_hostname():
        return None
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        created = None
    except psutil.Error:
        return None
    if created is not None and (start_date is None or created <= start_date.timestamp() + 1):
        return None
    return (
        f"the task's process (PID {pid} on {hostname}) is gone while the task is still 'running': "
        "it was killed (an in-process `airflow dags test` dies with its task) and nothing recorded its end"
    )


# -- reading --------------------------------------------------------------------------------------


def _task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None
) -> Any:
    """The task instance of that try (``TaskInstanceHistory`` for earlier tries), dag run loaded."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.models.trigger import Trigger
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    for model in (TaskInstance, TaskInstanceHistory):
        stmt = (
            select(model)
            .where(
                model.dag_id == dag_id,
                model.run_id == run_id,
                model.task_id == task_id,
                model.map_index == map_index,
            )
            .options(joinedload(model.dag_run))
        )
        if model is TaskInstance:  # what the log handler reads, loaded as Airflow's log API does
            stmt = stmt.options(
                joinedload(TaskInstance.trigger).joinedload(Trigger.triggerer_job),
                joinedload(TaskInstance.dag_model),
            )
        if try_number is not None:
            stmt = stmt.where(model.try_number == try_number)
        ti = session.scalars(stmt.limit(1)).first()
        if ti is not None:
            return ti
    return None


def read_log_messages(ti: Any, try_number: int) -> list[dict[str, Any]] | None:
    """A try's log messages through Airflow's ``TaskLogReader``; ``None`` when it cannot be read."""
    from airflow.utils.log.log_reader import TaskLogReader

    reader = TaskLogReader()
    if not reader.supports_read:
        return None
    logs, _ = reader.read_log_chunks(ti, try_number, {"download_logs": True})
    messages = []
    for i, message in enumerate(logs):
        if i >= MAX_MESSAGES:
            break
        messages.append(message.model_dump() if hasattr(message, "model_dump") else {"event": str(message)})
    return messages


def _audit_events(session: Session, ti: Any, try_number: int) -> list[tuple[str, str | None]]:
    from airflow.models.log import Log
    from sqlalchemy import select

    rows = session.execute(
        select(Log.event, Log.extra)
        .where(
            Log.dag_id == ti.dag_id,
            Log.run_id == ti.run_id,
            Log.task_id == ti.task_id,
            Log.map_index == ti.map_index,
            Log.try_number == try_number,
            Log.event.in_(("heartbeat timeout", "state mismatch")),
        )
        .order_by(Log.dttm)
    )
    return [(r.event, r.extra) for r in rows]


#: Lines of a task's log shown on its page.
EXCERPT_LINES = 40
_MARKERS = ("::group::", "::endgroup::")


def log_excerpt(messages: Iterable[Mapping[str, Any]], lines: int = EXCERPT_LINES) -> list[dict[str, str]]:
    """The last ``lines`` log lines as ``time``, ``level`` and ``text`` (the event and its fields),
    without the log's group markers."""
    out = []
    for message in messages:
        event = str(message.get("event") or "")
        if event.startswith(_MARKERS):
            continue
        extra = " ".join(
            f"{k}={v}"
            for k, v in message.items()
            if k not in ("timestamp", "level", "event", "sources", "logger", "filename", "lineno")
            and k not in ("dag_id", "run_id", "task_id", "map_index", "ti_id", "try_number", "error_detail")
        )
        out.append(
            {
                "time": str(message.get("timestamp") or "")[:23],
                "level": str(message.get("level") or "").lower(),
                "text": f"{event} {extra}".strip()[:2000],
            }
        )
    return out[-lines:]


def read_task_exit(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int = -1,
    try_number: int | None = None,
    *,
    session: Session | None = None,
) -> TaskExit:
    """Why a try of a task instance ended (``try_number=None``: its latest try).

    Reads the try's log through Airflow's log reader, then the scheduler's audit events, then checks
    a still-``running`` try's process on this host. Never raises: an unreadable log gives
    ``TaskExit(log_read=False)`` with whatever the metadata DB told.
    """

    def run(s: Session) -> TaskExit:
        ti = _task_instance(s, dag_id, run_id, task_id, map_index, try_number)
        if ti is None:
            return TaskExit(log_read=False)
        number = try_number if try_number is not None else ti.try_number
        messages = None
        if number:
            try:
                messages = read_log_messages(ti, number)
            except Exception:
                log.debug("Could not read the log of %s (try %s)", ti, number, exc_info=True)
        found = exit_from_messages(messages) if messages else TaskExit()
        if found.kind is None:
            scheduler = exit_from_audit_events(_audit_events(s, ti, number)) if number else None
            if scheduler is not None:
                found = TaskExit(scheduler.kind, scheduler.reason, traceback=found.traceback)
            elif orphan := orphaned_reason(state_name(ti.state), ti.hostname, ti.pid, ti.start_date):
                found = TaskExit("orphaned", orphan, traceback=found.traceback)
        if messages is None:
            return TaskExit(found.kind, found.reason, found.signal, found.exit_code, found.traceback, False)
        return replace(found, excerpt=log_excerpt(messages))

    try:
        return with_session(session, run)
    except Exception:
        log.debug("Could not read how %s/%s/%s[%s] ended", dag_id, run_id, task_id, map_index, exc_info=True)
        return TaskExit(log_read=False)


def task_traceback(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str | None:
    """The last traceback in the try's log (``None`` when it has none or cannot be read)."""
    return read_task_exit(dag_id, run_id, task_id, map_index, try_number).traceback
