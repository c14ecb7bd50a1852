"""``@ml.check``: a data or model quality gate with a severity.

* ``severity="error"``: a failed check fails the task without retrying (the check is
  deterministic), so downstream tasks (deploy, save) do not run under Airflow's trigger rules.
* ``severity="warning"``: the task succeeds, the warning is logged, recorded in the ``mlops.check``
  XCom (shown by the ML view) and sent to the optional ``notifier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import task_decorator_factory

from airflow_mlops_provider.checks import integrations
from airflow_mlops_provider.checks.outcome import conclude
from airflow_mlops_provider.checks.result import DEFAULT_MAX_FAILING_SAMPLES, CheckResult
from airflow_mlops_provider.decorators.ml_task import MLDecoratedOperator
from airflow_mlops_provider.records import validate_severity

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import TaskDecorator

_ACCEPTED = (
    "a bool, a boolean pandas Series (passes if all true), an airflow_mlops_provider.checks.CheckResult, "
    "a pandera schema or a Great Expectations expectation (validated against the DataFrame argument), "
    "a pandera-validated DataFrame, or a Great Expectations validation result"
)


class MLCheckDecoratedOperator(MLDecoratedOperator):
    """The operator behind ``@ml.check``.

    :param severity: ``"error"`` fails the task (no retry) when the check fails; ``"warning"``
        records the failure and lets the task succeed.
    :param notifier: an Airflow notifier (or a list of them), called when the check fails.
    :param max_failing_samples: how many failing rows to store with a failed table check.

    The callable's return value (a whole boolean Series, a result holding failing rows) is not
    written to the task log as Airflow's ``@task`` does; the log gets one line per check instead
    (``show_return_value_in_logs=True`` brings Airflow's line back).
    """

    custom_operator_name = "@ml.check"

    def __init__(
        self,
        *,
        severity: str = "error",
        notifier: Any = None,
        max_failing_samples: int = DEFAULT_MAX_FAILING_SAMPLES,
        **kwargs: Any,
    ) -> None:
        validate_severity(severity, kwargs.get("task_id"))
        if notifier is not None and not callable(notifier) and not isinstance(notifier, (list, tuple)):
            raise TypeError(f"Task {kwargs.get('task_id')!r}: notifier must be an Airflow notifier.")
        kwargs.setdefault("show_return_value_in_logs", False)
        super().__init__(**kwargs)
        self.severity = severity
        self.notifier = notifier
        self.max_failing_samples = max_failing_samples

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except Exception as err:
            failure = integrations.pandera_failure(err)
            if failure is None:
                raise
            return self._conclude(failure, context)

    def finish(self, result: Any, context: Any) -> Any:
        return self._conclude(self._normalize(result), context)

    def _normalize(self, result: Any) -> CheckResult:
        if isinstance(result, CheckResult):
            return result
        if isinstance(result, bool) or (
            type(result).__module__ == "numpy" and type(result).__name__ in ("bool", "bool_")
        ):
            return CheckResult(passed=bool(result), message="returned False" if not result else "")
        if _is_bool_series(result):
            failing_mask = ~result.fillna(False).astype(bool)
            count = int(failing_mask.sum())
            rows = len(result)
            return CheckResult(
                passed=count == 0,
                message=f"{count} of {rows} rows failed" if count else f"all {rows} rows passed",
                failing=self._failing_rows(failing_mask),
                failing_count=count,
            )
        if integrations.is_pandera_schema(result):
            return integrations.validate_pandera(result, self._checked_frame())
        if integrations.is_gx_expectation(result):
            return integrations.validate_gx(result, self._checked_frame())
        if isinstance(getattr(result, "success", None), bool):  # a Great Expectations result
            return integrations.gx_result(result, self._first_frame())
        if type(result).__name__ == "DataFrame" and type(result).__module__.startswith("pandas"):
            return CheckResult(passed=True, message="schema validated")  # pandera returns the frame
        raise TypeError(
            f"Check task {self.task_id!r} returned {type(result).__qualname__}, which is not a check "
            f"result. Return {_ACCEPTED}."
        )

    def _first_frame(self) -> Any:
        return next(
            (a for a in [*self.op_args, *self.op_kwargs.values()] if type(a).__name__ == "DataFrame"), None
        )

    def _checked_frame(self) -> Any:
        frame = self._first_frame()
        if frame is None:
            raise TypeError(
                f"Check task {self.task_id!r} returned a schema/expectation but has no DataFrame "
                "argument to validate it against."
            )
        return frame

    def _failing_rows(self, failing_mask: Any) -> Any:
        """The rows of the checked DataFrame argument that the boolean Series marks as failing."""
        for arg in [*self.op_args, *self.op_kwargs.values()]:
            if (
                type(arg).__name__ == "DataFrame"
                and hasattr(arg, "index")
                and arg.index.equals(failing_mask.index)
            ):
                return arg.loc[failing_mask]
        return failing_mask[failing_mask].to_frame(name="failed")

    def _conclude(self, outcome: CheckResult, context: Any) -> bool:
        return conclude(self, outcome, context, self.severity, self.notifier, self.max_failing_samples)


def _is_bool_series(value: Any) -> bool:
    if type(value).__name__ != "Series" or not type(value).__module__.startswith("pandas"):
        return False
    import pandas as pd

    return pd.api.types.is_bool_dtype(value.dtype) or (
        value.dtype == object and value.dropna().map(type).isin([bool]).all()
    )


def ml_check(
    python_callable: Callable[..., Any] | None = None,
    *,
    severity: str = "error",
    notifier: Any = None,
    max_failing_samples: int = DEFAULT_MAX_FAILING_SAMPLES,
    **kwargs: Any,
) -> TaskDecorator:
    """A check task. See :class:`MLCheckDecoratedOperator` for the parameters."""
    validate_severity(severity, kwargs.get("task_id"))
    kwargs.setdefault("retries", 0)
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=MLCheckDecoratedOperator,
        severity=severity,
        notifier=notifier,
        max_failing_samples=max_failing_samples,
        **kwargs,
    )
