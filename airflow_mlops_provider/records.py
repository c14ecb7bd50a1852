"""Check, metric and task records: small JSON documents stored as XComs under reserved keys.

Keeping them in XCom rows (always inline, whatever their size: the XCom backend never turns a row
under :data:`RECORD_KEYS` into an artifact) lets the API server, the UI and
``ml.metric_history`` query them from the metadata DB without touching the object store. Each kind
is a dataclass with ``to_row()`` (what the writer pushes) and ``from_row()`` (what the readers
parse): rows written by earlier versions, with keys missing or extra, still parse.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

CHECK_KEY = "mlops.check"
METRICS_KEY = "mlops.metrics"
TASK_KEY = "mlops.task"
#: The keys of the provider's own records.
RECORD_KEYS = (CHECK_KEY, METRICS_KEY, TASK_KEY)

Severity = Literal["error", "warning"]
SEVERITIES = ("error", "warning")
#: ``ok``; ``warning`` / ``failed`` (a breach with severity warning / error); ``skipped`` (nothing to
#: judge, e.g. a regression gate without an earlier successful run).
Status = Literal["ok", "warning", "failed", "skipped"]


def _fields(row: Any) -> dict[str, Any]:
    return row if isinstance(row, dict) else {}


def _notified(record: CheckRecord | MetricRecord) -> dict[str, Any]:
    if record.notified is None:
        return {}
    return {
        "notified": record.notified,
        **({"notifier_errors": record.notifier_errors} if record.notifier_errors else {}),
    }


@dataclass
class CheckRecord:
    """The ``mlops.check`` record of a check task.

    :param passed: ``None`` when the check was skipped.
    :param skipped: why the check could not be judged (also its ``message``).
    :param notified: whether the notifiers ran without error; ``None`` when none was called.
    """

    name: str
    severity: str
    status: Status
    message: str
    passed: bool | None
    failing_count: int | None = None
    failing_samples: list[Any] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    notified: bool | None = None
    notifier_errors: list[str] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "kind": "check",
            "name": self.name,
            "severity": self.severity,
            "passed": self.passed,
            "status": self.status,
            "message": self.message,
            "failing_count": self.failing_count,
            "failing_samples": self.failing_samples,
            "details": self.details,
        }
        if self.skipped is not None:
            row["skipped"] = self.skipped
        return row | _notified(self)

    @classmethod
    def from_row(cls, row: Any) -> CheckRecord:
        row = _fields(row)
        passed, severity = row.get("passed"), str(row.get("severity") or "error")
        status = row.get("status") or (
            "skipped"
            if passed is None
            else "ok"
            if passed
            else "failed"
            if severity == "error"
            else "warning"
        )
        return cls(
            name=str(row.get("name") or ""),
            severity=severity,
            status=status,
            message=str(row.get("message") or ""),
            passed=passed,
            failing_count=row.get("failing_count"),
            failing_samples=list(row.get("failing_samples") or []),
            details=dict(row.get("details") or {}),
            skipped=row.get("skipped"),
            notified=row.get("notified"),
            notifier_errors=list(row.get("notifier_errors") or []),
        )


@dataclass
class MetricEntry:
    """One metric of a :class:`MetricRecord`: its value, bounds and regression gate.

    :param breaches: why the value is out of bounds or regressed, for people.
    :param regression: the regression gate's evaluation, when the metric has one.
    :param skipped: why the regression gate could not run (the status is then ``skipped``).
    """

    name: str
    value: float | None
    lower: float | None = None
    upper: float | None = None
    status: Status = "ok"
    breaches: list[str] = field(default_factory=list)
    regression: dict[str, Any] | None = None
    skipped: str | None = None

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "breaches": self.breaches,
            "status": self.status,
        }
        if self.regression is not None:
            row["regression"] = self.regression
        if self.skipped:
            row["skipped"] = self.skipped
        return row

    @classmethod
    def from_row(cls, row: Any) -> MetricEntry:
        row = _fields(row)
        breaches = [str(b) for b in row.get("breaches") or []]
        return cls(
            name=str(row.get("name") or ""),
            value=row.get("value"),
            lower=row.get("lower"),
            upper=row.get("upper"),
            status=row.get("status") or ("warning" if breaches else "ok"),
            breaches=breaches,
            regression=row.get("regression"),
            skipped=row.get("skipped"),
        )


@dataclass
class MetricRecord:
    """The ``mlops.metrics`` record of a metric task: one entry per metric it returned."""

    severity: str
    metrics: list[MetricEntry] = field(default_factory=list)
    notified: bool | None = None
    notifier_errors: list[str] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        row = {"kind": "metric", "severity": self.severity, "metrics": [m.to_row() for m in self.metrics]}
        return row | _notified(self)

    @classmethod
    def from_row(cls, row: Any) -> MetricRecord:
        row = _fields(row)
        entries = row.get("metrics")
        return cls(
            severity=str(row.get("severity") or "warning"),
            metrics=[MetricEntry.from_row(m) for m in entries if isinstance(m, dict)]
            if isinstance(entries, list)
            else [],
            notified=row.get("notified"),
            notifier_errors=list(row.get("notifier_errors") or []),
        )

    def metric(self, name: str) -> MetricEntry | None:
        return next((m for m in self.metrics if m.name == name), None)


#: Task record fields written only when set.
_TASK_OPTIONAL = ("memory_warning_mb", "memory_warning", "error", "inputs", "cache")


@dataclass
class TaskRecord:
    """The ``mlops.task`` record of an ``@ml.task`` try, pushed while it runs and when it ends.

    :param status: ``running`` until the callable returns, then ``done``, ``failed`` or ``skipped``.
    :param error: the exception's class name when the callable raised.
    :param inputs: the stored artifacts the task read (lineage).
    :param cache: for ``cache=True`` tasks: the ``key``, and the try whose outputs were reused
        (``hit``: dag_id, run_id, task_id, map_index, computed_at; ``None`` on a miss).
    """

    status: str
    operator: str | None = None
    code_hash: str | None = None
    started_at: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float | None = None
    start_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    memory_warning_mb: float | None = None
    memory_warning: str | None = None
    error: str | None = None
    inputs: list[dict[str, Any]] | None = None
    cache: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "operator": self.operator,
            "code_hash": self.code_hash,
            "started_at": self.started_at,
            "params": self.params,
            "status": self.status,
            "duration_seconds": self.duration_seconds,
            "start_rss_mb": self.start_rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
        }
        return row | {name: getattr(self, name) for name in _TASK_OPTIONAL if getattr(self, name) is not None}

    @classmethod
    def from_row(cls, row: Any) -> TaskRecord:
        row = _fields(row)
        inputs = row.get("inputs")
        return cls(
            status=str(row.get("status") or "done"),
            operator=row.get("operator"),
            code_hash=row.get("code_hash"),
            started_at=row.get("started_at"),
            params=dict(row.get("params") or {}),
            duration_seconds=row.get("duration_seconds"),
            start_rss_mb=row.get("start_rss_mb"),
            peak_rss_mb=row.get("peak_rss_mb"),
            memory_warning_mb=row.get("memory_warning_mb"),
            memory_warning=row.get("memory_warning"),
            error=row.get("error"),
            inputs=[i for i in inputs if isinstance(i, dict)] if isinstance(inputs, list) else None,
            cache=row.get("cache") if isinstance(row.get("cache"), dict) else None,
        )


def validate_severity(severity: str, task_id: str | None = None) -> None:
    if severity not in SEVERITIES:
        where = f"Task {task_id!r}: " if task_id else ""
        raise ValueError(f"{where}unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}.")


def json_safe(value: Any) -> Any:
    """Plain JSON (no NaN, no numpy scalars, no timestamps) for records shown by the API server."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def frame_samples(frame: Any, limit: int, max_columns: int = 50) -> list[dict[str, Any]]:
    """Up to ``limit`` rows of a DataFrame (index included) as JSON records."""
    head = frame.iloc[:limit, :max_columns].reset_index()
    return json.loads(head.to_json(orient="records", date_format="iso", default_handler=str))
