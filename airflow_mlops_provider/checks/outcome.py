"""Turn a check's outcome into its record: store it, notify, and fail the task for errors.

Shared by ``@ml.check``, ``@ml.metric`` and the classic check operators, so every check records the
same shape (read by ``ml.check_history`` and the ML view).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_mlops_provider.records import (
    CHECK_KEY,
    CheckRecord,
    MetricRecord,
    Status,
    frame_samples,
    json_safe,
)

if TYPE_CHECKING:
    from airflow_mlops_provider.checks.result import CheckResult


def notify(notifier: Any, context: Any, log: Any) -> dict[str, Any]:
    """Call an Airflow notifier; a broken notifier is logged loudly, never silently dropped."""
    if notifier is None:
        return {"notified": False}
    notifiers = notifier if isinstance(notifier, (list, tuple)) else [notifier]
    errors = []
    for one in notifiers:
        try:
            one(context)
        except Exception as err:
            log.exception("Notifier %r failed", one)
            errors.append(f"{type(one).__name__}: {err}")
    return {"notified": not errors, **({"notifier_errors": errors} if errors else {})}


def notify_for(record: CheckRecord | MetricRecord, notifier: Any, context: Any, log: Any) -> None:
    """Call the notifier for a breach and note in ``record`` whether it ran."""
    sent = notify(notifier, context, log)
    record.notified, record.notifier_errors = sent["notified"], sent.get("notifier_errors", [])


def status_of(outcome: CheckResult, severity: str) -> Status:
    """``ok``, ``skipped``, ``warning`` (failed with severity warning) or ``failed``."""
    if outcome.skipped:
        return "skipped"
    if outcome.passed:
        return "ok"
    return "failed" if severity == "error" else "warning"


def conclude(
    operator: Any, outcome: CheckResult, context: Any, severity: str, notifier: Any, max_samples: int
) -> bool:
    """Record a check outcome in ``mlops.check``, notify, and fail the task for errors.

    A skipped outcome (nothing to judge, e.g. no reference run) is recorded with status
    ``skipped``, ``passed: None`` and its reason as the message; it neither notifies nor fails.
    """
    failing = outcome.failing
    samples: list[Any] = []
    if failing is not None and not outcome.passed:
        samples = (
            frame_samples(failing, max_samples)
            if hasattr(failing, "iloc")
            else json_safe(list(failing)[:max_samples])
        )
    message = outcome.message or ("passed" if outcome.passed else "failed")
    record = CheckRecord(
        name=operator.task_id,
        severity=severity,
        status=status_of(outcome, severity),
        message=message,
        passed=None if outcome.skipped else bool(outcome.passed),
        failing_count=outcome.failing_count
        if outcome.failing_count is not None
        else (len(failing) if failing is not None and hasattr(failing, "__len__") else None),
        failing_samples=samples,
        details=json_safe(outcome.details),
        skipped=message if outcome.skipped else None,
    )
    if not outcome.passed:
        notify_for(record, notifier, context, operator.log)
    context["ti"].xcom_push(key=CHECK_KEY, value=record.to_row())
    if record.status == "skipped":
        operator.log.info("Check %s skipped: %s", operator.task_id, message)
        return True
    if record.status == "ok":
        operator.log.info("Check %s passed: %s", operator.task_id, message)
        return True
    if severity == "warning":
        operator.log.warning("Check %s failed with severity 'warning': %s", operator.task_id, message)
        return False
    raise AirflowFailException(
        f"Check {operator.task_id!r} failed (severity 'error'): {message}. "
        "Downstream tasks will not run; the task is not retried because checks are deterministic."
    )
