"""pandera and Great Expectations as check results (both optional: import only when used).

A check function may return a pandera schema or a Great Expectations expectation; it is validated
against the function's DataFrame argument. It may also validate itself and return the outcome
(a pandera-validated frame, a Great Expectations result) or raise pandera's errors.
"""

from __future__ import annotations

from typing import Any

from airflow_mlops_provider.checks.result import CheckResult
from airflow_mlops_provider.records import json_safe


def _from(value: Any, package: str) -> bool:
    return type(value).__module__.split(".", 1)[0] == package


def is_pandera_schema(value: Any) -> bool:
    return _from(value, "pandera") and callable(getattr(value, "validate", None))


def is_gx_expectation(value: Any) -> bool:
    return type(value).__module__.startswith("great_expectations.expectations")


def pandera_failure(err: BaseException) -> CheckResult | None:
    """A pandera ``SchemaError``/``SchemaErrors`` as a failed result (``None`` for other errors)."""
    if not _from(err, "pandera"):
        return None
    cases = getattr(err, "failure_cases", None)
    count = len(cases) if cases is not None and hasattr(cases, "__len__") else None
    message = str(err).strip().splitlines()[0][:500] if str(err).strip() else type(err).__name__
    return CheckResult(passed=False, message=message, failing=cases, failing_count=count)


def validate_pandera(schema: Any, frame: Any) -> CheckResult:
    try:
        schema.validate(frame, lazy=True)
    except Exception as err:
        failure = pandera_failure(err)
        if failure is None:
            raise
        return failure
    return CheckResult(passed=True, message=f"{type(schema).__name__} validated {len(frame)} rows")


def gx_result(result: Any, frame: Any = None) -> CheckResult:
    """A Great Expectations validation result; failing rows come from its unexpected index list."""
    body = result.to_json_dict() if hasattr(result, "to_json_dict") else {}
    details = getattr(result, "result", None) or {}
    indexes = details.get("partial_unexpected_index_list") if isinstance(details, dict) else None
    failing = None
    if frame is not None and indexes:
        failing = frame.loc[[i for i in indexes if i in frame.index]]
    config = body.get("expectation_config") or {}
    name = config.get("type") or config.get("expectation_type") or "expectation"
    count = details.get("unexpected_count") if isinstance(details, dict) else None
    return CheckResult(
        passed=bool(result.success),
        message=f"{name}: {'passed' if result.success else f'{count} unexpected value(s)'}",
        failing=failing,
        failing_count=count,
        details={"result": json_safe(body)},
    )


def validate_gx(expectation: Any, frame: Any) -> CheckResult:
    """Validate one expectation on a DataFrame in an ephemeral Great Expectations context."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("airflow_mlops").add_dataframe_asset("frame")
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(
        batch_parameters={"dataframe": frame}
    )
    return gx_result(batch.validate(expectation), frame)
