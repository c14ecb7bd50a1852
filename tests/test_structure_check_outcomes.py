"""How a check's outcome is recorded, notified and logged (``@ml.check`` executed outside a DAG run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest import mock

import pandas as pd

from airflow_mlops_provider.checks import builtin
from airflow_mlops_provider.decorators import ml_check
from airflow_mlops_provider.records import CHECK_KEY

if TYPE_CHECKING:
    from airflow_mlops_provider.checks.result import CheckResult


def run_check(task: Any, *args: Any) -> tuple[Any, dict[str, Any], list[str]]:
    """Execute a decorated check's operator with a fake task instance.

    Returns the task's return value, its ``mlops.check`` record and the lines it logged.
    """
    operator = task(*args).operator
    log, ti = mock.MagicMock(), mock.MagicMock()
    with mock.patch.object(type(operator), "log", new_callable=mock.PropertyMock, return_value=log):
        result = operator.execute({"ti": ti, "task_instance": ti, "params": {}})
    records = [c.kwargs["value"] for c in ti.xcom_push.call_args_list if c.kwargs.get("key") == CHECK_KEY]
    assert len(records) == 1
    lines = [
        call.args[0] % call.args[1:]
        for call in log.method_calls
        if call[0] in ("info", "warning", "error") and call.args
    ]
    return result, records[0], lines


def test_a_skipped_check_is_recorded_and_logged_as_skipped_without_notifying() -> None:
    notifier = mock.MagicMock()

    @ml_check(severity="error", notifier=notifier)
    def no_drift(df: pd.DataFrame) -> CheckResult:
        return builtin.drift(df, None)

    result, record, lines = run_check(no_drift, pd.DataFrame({"x": [1.0, 2.0]}))
    assert result is True  # the task succeeds
    assert record["status"] == "skipped" and record["passed"] is None
    reason = "no reference to compare with (reference is None: no earlier successful run)"
    assert record["message"] == record["skipped"] == reason
    assert "notified" not in record
    notifier.assert_not_called()
    assert f"Check no_drift skipped: {reason}" in lines


def test_a_boolean_series_is_logged_as_one_line_not_dumped() -> None:
    @ml_check(severity="warning")
    def positive(df: pd.DataFrame) -> pd.Series:
        return df["amount"] > 0

    frame = pd.DataFrame({"amount": range(-3, 2000)})
    result, record, lines = run_check(positive, frame)
    assert result is False and record["status"] == "warning"
    assert record["message"] == "4 of 2003 rows failed" and record["failing_count"] == 4
    assert "Check positive failed with severity 'warning': 4 of 2003 rows failed" in lines
    assert not any("dtype: bool" in line or "Name: amount" in line for line in lines), lines

    _, passed, lines = run_check(positive, frame[frame["amount"] > 0])
    assert passed["status"] == "ok" and "Check positive passed: all 1999 rows passed" in lines
