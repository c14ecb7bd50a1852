"""Classic operators for DAGs written without TaskFlow: DataFrame checks and metric checks.

``DataFrameCheckOperator`` takes its checks in the same shape as common-sql's
``SQLColumnCheckOperator`` (``{"column": {"null_check": {"equal_to": 0}, "min": {"geq_to": 0}}}``),
plus table-level checks, and records its outcome like ``@ml.check`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_mlops_provider import runtime
from airflow_mlops_provider.checks import builtin
from airflow_mlops_provider.checks.bounds import Regression, evaluate_metric
from airflow_mlops_provider.checks.outcome import conclude
from airflow_mlops_provider.checks.result import DEFAULT_MAX_FAILING_SAMPLES, CheckResult
from airflow_mlops_provider.records import METRICS_KEY, MetricRecord, validate_severity

if TYPE_CHECKING:
    import pandas as pd

COLUMN_CHECKS = ("null_check", "distinct_check", "unique_check", "min", "max")
COMPARISONS = ("equal_to", "greater_than", "geq_to", "less_than", "leq_to")
TABLE_CHECKS = ("row_count", "drift", "freshness")


def _compare(observed: float, spec: dict[str, Any]) -> bool:
    tolerance = float(spec.get("tolerance", 0) or 0)
    if "equal_to" in spec:
        target = float(spec["equal_to"])
        return abs(observed - target) <= abs(target) * tolerance
    ok = True
    if "greater_than" in spec:
        ok &= observed > float(spec["greater_than"]) * (1 - tolerance)
    if "geq_to" in spec:
        ok &= observed >= float(spec["geq_to"]) * (1 - tolerance)
    if "less_than" in spec:
        ok &= observed < float(spec["less_than"]) * (1 + tolerance)
    if "leq_to" in spec:
        ok &= observed <= float(spec["leq_to"]) * (1 + tolerance)
    return bool(ok)


def _describe(spec: dict[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in spec.items())


def _validate_checks(checks: dict[str, Any], task_id: str) -> None:
    unknown_sections = set(checks) - {"columns", "table"}
    if unknown_sections:
        raise ValueError(
            f"Task {task_id!r}: checks has unknown section(s) {sorted(unknown_sections)}; "
            "use 'columns' and 'table'."
        )
    for column, column_checks in (checks.get("columns") or {}).items():
        for name, spec in column_checks.items():
            if name not in (*COLUMN_CHECKS, "allowed_values", "dtype"):
                raise ValueError(
                    f"Task {task_id!r}: unknown check {name!r} for column {column!r}; use one "
                    f"of {', '.join((*COLUMN_CHECKS, 'allowed_values', 'dtype'))}."
                )
            if name in COLUMN_CHECKS and (
                not isinstance(spec, dict)
                or not set(spec) & set(COMPARISONS)
                or set(spec) - {*COMPARISONS, "tolerance"}
            ):
                raise ValueError(
                    f"Task {task_id!r}: {column}.{name} needs a dict with one of "
                    f"{', '.join(COMPARISONS)} (and optionally tolerance), got {spec!r}."
                )
    for name in checks.get("table") or {}:
        if name not in TABLE_CHECKS:
            raise ValueError(
                f"Task {task_id!r}: unknown table check {name!r}; use {', '.join(TABLE_CHECKS)}."
            )


class DataFrameCheckOperator(BaseOperator):
    """Checks a DataFrame (usually another task's output) with declarative rules.

    :param data: the DataFrame to check (templated: pass an ``XComArg`` such as ``extract.output``).
    :param checks: ``{"columns": {col: {check: comparison}}, "table": {check: spec}}``. Column
        checks: ``null_check``, ``distinct_check``, ``unique_check`` (number of duplicated values),
        ``min``, ``max`` with comparisons ``equal_to``, ``greater_than``, ``geq_to``, ``less_than``,
        ``leq_to`` and optional ``tolerance`` (as in ``SQLColumnCheckOperator``), plus
        ``allowed_values`` (a list) and ``dtype`` (a dtype name or kind). Table checks: ``row_count``
        (a comparison), ``drift`` (``{"psi_threshold": 0.2, "ks_threshold": 0.1, "columns": [...]}``,
        against the same upstream task's artifact in its previous successful run) and ``freshness``
        (``{"task_id": ..., "max_age_seconds": ...}``: that task's last success is recent enough).
    :param severity: ``"error"`` fails the task without retry; ``"warning"`` records and succeeds.
    :param notifier: an Airflow notifier (or a list), called when a check fails.
    :param max_failing_samples: failing rows stored with the record.
    """

    template_fields = ("data",)
    ui_color = "#fde2e4"

    def __init__(
        self,
        *,
        data: Any,
        checks: dict[str, Any],
        severity: str = "error",
        notifier: Any = None,
        max_failing_samples: int = DEFAULT_MAX_FAILING_SAMPLES,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        validate_severity(severity, self.task_id)
        _validate_checks(checks, self.task_id)
        self.data = data
        self.checks = checks
        self.severity = severity
        self.notifier = notifier
        self.max_failing_samples = max_failing_samples
        # Remember which task produced the data: drift compares with its previous run.
        operator = getattr(data, "operator", None)
        self._data_task_id = getattr(operator, "task_id", None)
        self._data_key = getattr(data, "key", "return_value")

    def execute(self, context: Any) -> bool:
        frame = self.data
        if type(frame).__name__ != "DataFrame":
            raise TypeError(
                f"Task {self.task_id!r}: data must be a pandas DataFrame, got {type(frame).__qualname__}."
            )
        results: dict[str, CheckResult] = {}
        for column, column_checks in (self.checks.get("columns") or {}).items():
            if column not in frame.columns:
                results[f"{column}"] = CheckResult(False, f"column {column!r} is missing")
                continue
            for name, spec in column_checks.items():
                results[f"{column}.{name}"] = self._column_check(frame, column, name, spec)
        for name, spec in (self.checks.get("table") or {}).items():
            results[name] = self._table_check(frame, name, spec, context)
        return conclude(
            self,
            CheckResult.combine(results),
            context,
            self.severity,
            self.notifier,
            self.max_failing_samples,
        )

    def _column_check(self, frame: pd.DataFrame, column: str, name: str, spec: Any) -> CheckResult:
        series = frame[column]
        if name == "allowed_values":
            return builtin.allowed_values(frame, column=column, values=spec)
        if name == "dtype":
            return builtin.has_columns(frame, columns={column: spec})
        if name == "null_check":
            observed, failing = int(series.isna().sum()), frame[series.isna()]
        elif name == "distinct_check":
            observed, failing = int(series.nunique()), None
        elif name == "unique_check":
            duplicated = series.duplicated(keep=False) & series.notna()
            observed, failing = int(series.notna().sum() - series.nunique()), frame[duplicated]
        else:
            values = series.dropna()
            observed = float(values.min() if name == "min" else values.max()) if len(values) else float("nan")
            failing = frame[[not _compare(float(v), spec) for v in series.fillna(observed)]]
        passed = _compare(observed, spec)
        return CheckResult(
            passed,
            f"{column} {name} is {observed:g}, expected {_describe(spec)}",
            failing=failing if not passed else None,
            failing_count=len(failing) if (failing is not None and not passed) else None,
            details={"observed": observed},
        )

    def _table_check(self, frame: pd.DataFrame, name: str, spec: Any, context: Any) -> CheckResult:
        if name == "row_count":
            rows = len(frame)
            return CheckResult(
                _compare(rows, spec),
                f"row count is {rows}, expected {_describe(spec)}",
                details={"rows": rows},
            )
        if name == "drift":
            reference = None
            if self._data_task_id:
                ti = context["ti"]
                for previous in runtime.previous_successful_runs(ti, self._data_task_id, 1):
                    reference = runtime.pull(ti, self._data_task_id, self._data_key, previous.run_id)
            return builtin.drift(frame, reference, **(spec or {}))
        last = runtime.previous_successful_runs(context["ti"], spec["task_id"], 1)
        previous = next(iter(last), None)
        return builtin.freshness(previous.end_date if previous else None, spec["max_age_seconds"])


class MetricCheckOperator(BaseOperator):
    """Checks a metric recorded by an ``@ml.metric`` task: bounds and regression across runs.

    :param metric_task_id: the ``@ml.metric`` task (in the same DAG run).
    :param name: the metric's name (the function name, or a key of the dict it returned).
    :param lower: smallest acceptable value.
    :param upper: largest acceptable value.
    :param regression: an ``ml.Regression`` comparing with previous successful runs.
    :param severity: ``"error"`` fails the task without retry; ``"warning"`` records and succeeds.
    :param notifier: an Airflow notifier (or a list), called when the check fails.
    """

    ui_color = "#fde2e4"

    def __init__(
        self,
        *,
        metric_task_id: str,
        name: str,
        lower: float | None = None,
        upper: float | None = None,
        regression: Regression | None = None,
        severity: str = "error",
        notifier: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        validate_severity(severity, self.task_id)
        if lower is not None and upper is not None and lower > upper:
            raise ValueError(f"Task {self.task_id!r}: lower bound {lower} is above upper bound {upper}.")
        if regression is not None and not isinstance(regression, Regression):
            raise TypeError(f"Task {self.task_id!r}: regression must be ml.Regression(...).")
        if lower is None and upper is None and regression is None:
            raise ValueError(f"Task {self.task_id!r}: give lower, upper or regression.")
        self.metric_task_id, self.name = metric_task_id, name
        self.lower, self.upper, self.regression = lower, upper, regression
        self.severity, self.notifier = severity, notifier

    def execute(self, context: Any) -> bool:
        ti = context["ti"]
        record = MetricRecord.from_row(ti.xcom_pull(task_ids=self.metric_task_id, key=METRICS_KEY))
        entry = record.metric(self.name)
        if entry is None:
            raise AirflowFailException(
                f"Task {self.task_id!r}: metric {self.name!r} was not recorded by task "
                f"{self.metric_task_id!r} in this run; check the task id and the metric name "
                "(the function name or a dict key)."
            )
        value = float(entry.value)
        history = []
        if self.regression is not None:
            windows = {self.name: self.regression.window}
            history = runtime.metric_values_before(ti, self.metric_task_id, windows).get(self.name, [])
        judged = evaluate_metric(
            self.name,
            value,
            lower=self.lower,
            upper=self.upper,
            regression=self.regression,
            history=history,
            severity=self.severity,
        )
        details: dict[str, Any] = {"value": value, "lower": self.lower, "upper": self.upper}
        if judged.regression is not None:
            details["regression"] = judged.regression
        if judged.status == "skipped":
            outcome = CheckResult.skip(f"{self.name}={value:g}: regression gate skipped, {judged.skipped}")
            outcome.details.update(details)
        else:
            message = "; ".join(judged.breaches) or f"{self.name}={value:g}"
            outcome = CheckResult(not judged.breaches, message, details=details)
        return conclude(self, outcome, context, self.severity, self.notifier, DEFAULT_MAX_FAILING_SAMPLES)
