"""``@ml.metric``: numbers computed from data, recorded for every run, with bounds and regression.

The function returns a number or a dict of named numbers. Each value is stored in the
``mlops.metrics`` XCom (so its history can be queried from the metadata DB), compared with its
bounds and, with ``regression=``, with the same metric in the previous successful runs.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, task_decorator_factory

from airflow_mlops_provider import runtime
from airflow_mlops_provider.checks.bounds import Regression, evaluate_metric
from airflow_mlops_provider.checks.outcome import notify_for
from airflow_mlops_provider.decorators.ml_task import MLDecoratedOperator
from airflow_mlops_provider.records import METRICS_KEY, MetricRecord, validate_severity

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import TaskDecorator

Bound = float | dict[str, float] | None


def _bound_for(bound: Bound, name: str) -> float | None:
    return bound.get(name) if isinstance(bound, dict) else bound


def _validate_bound(bound: Bound, which: str, task_id: str | None) -> None:
    values = bound.values() if isinstance(bound, dict) else [bound]
    for value in values:
        if value is not None and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
            raise TypeError(f"Task {task_id!r}: metric bound {which}={value!r} must be a number or None.")


class MLMetricDecoratedOperator(MLDecoratedOperator):
    """The operator behind ``@ml.metric``.

    :param lower: smallest acceptable value (or a dict of them by metric name).
    :param upper: largest acceptable value (or a dict of them by metric name).
    :param severity: what a breach (bounds or regression) does: ``"warning"`` or ``"error"``.
    :param regression: a :class:`Regression` (or a dict of them by metric name).
    :param notifier: an Airflow notifier (or a list), called when a metric breaches.
    """

    custom_operator_name = "@ml.metric"

    def __init__(
        self,
        *,
        lower: Bound = None,
        upper: Bound = None,
        severity: str = "warning",
        regression: Regression | dict[str, Regression] | None = None,
        notifier: Any = None,
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id")
        validate_metric_args(lower, upper, severity, regression, task_id)
        super().__init__(**kwargs)
        self.lower, self.upper, self.severity = lower, upper, severity
        self.regression, self.notifier = regression, notifier

    def finish(self, result: Any, context: Any) -> Any:
        values = self._values(result)
        ti = context["ti"]
        previous = self._history(ti, [name for name in values if self._regression_for(name)])
        outcomes = [
            evaluate_metric(
                name,
                value,
                lower=_bound_for(self.lower, name),
                upper=_bound_for(self.upper, name),
                regression=self._regression_for(name),
                history=previous.get(name, []),
                severity=self.severity,
            )
            for name, value in values.items()
        ]
        record = MetricRecord(self.severity, outcomes)
        breaches = [b for outcome in outcomes for b in outcome.breaches]
        if breaches:
            notify_for(record, self.notifier, context, self.log)
        ti.xcom_push(key=METRICS_KEY, value=record.to_row())
        for outcome in outcomes:
            reason = f": regression gate skipped, {outcome.skipped}" if outcome.skipped else ""
            self.log.info("Metric %s = %s (%s)%s", outcome.name, outcome.value, outcome.status, reason)
        if breaches and self.severity == "error":
            raise AirflowFailException(f"Metric task {self.task_id!r} failed: {'; '.join(breaches)}.")
        if breaches:
            self.log.warning("Metric task %s: %s", self.task_id, "; ".join(breaches))
        return result

    def _regression_for(self, name: str) -> Regression | None:
        if isinstance(self.regression, dict):
            return self.regression.get(name)
        return self.regression

    def _values(self, result: Any) -> dict[str, float]:
        single_name = getattr(self.python_callable, "__name__", self.task_id)
        items = result.items() if isinstance(result, dict) else [(single_name, result)]
        values = {}
        for name, value in items:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"Metric task {self.task_id!r} returned {name}={value!r} ({type(value).__qualname__}); a "
                    "metric function must return a number or a dict of named numbers."
                )
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(
                    f"Metric task {self.task_id!r} returned {name}={number}, which is not finite."
                )
            values[str(name)] = number
        return values

    def _history(self, ti: Any, names: list[str]) -> dict[str, list[float]]:
        windows = {name: reg.window for name in names if (reg := self._regression_for(name)) is not None}
        return runtime.metric_values_before(ti, self.task_id, windows, ti.map_index)


def validate_metric_args(
    lower: Bound, upper: Bound, severity: str, regression: Any, task_id: str | None
) -> None:
    """Parse-time validation, so a wrong bound fails when the DAG is loaded, not at 3 a.m."""
    validate_severity(severity, task_id)
    _validate_bound(lower, "lower", task_id)
    _validate_bound(upper, "upper", task_id)
    names = set(lower) if isinstance(lower, dict) else set()
    names |= set(upper) if isinstance(upper, dict) else set()
    for name in names or {None}:
        low = _bound_for(lower, name) if name else (lower if not isinstance(lower, dict) else None)
        high = _bound_for(upper, name) if name else (upper if not isinstance(upper, dict) else None)
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"Task {task_id!r}: metric {name or ''} lower bound {low} is above upper bound {high}."
            )
    regressions = regression.values() if isinstance(regression, dict) else [regression]
    for reg in regressions:
        if reg is not None and not isinstance(reg, Regression):
            raise TypeError(
                f"Task {task_id!r}: regression must be ml.Regression(...), not {type(reg).__qualname__}."
            )


def ml_metric(
    python_callable: Callable[..., Any] | None = None,
    *,
    lower: Bound = None,
    upper: Bound = None,
    severity: str = "warning",
    regression: Regression | dict[str, Regression] | None = None,
    notifier: Any = None,
    **kwargs: Any,
) -> TaskDecorator:
    """A metric task. See :class:`MLMetricDecoratedOperator` for the parameters."""
    validate_metric_args(lower, upper, severity, regression, kwargs.get("task_id"))
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=MLMetricDecoratedOperator,
        lower=lower,
        upper=upper,
        severity=severity,
        regression=regression,
        notifier=notifier,
        **kwargs,
    )
