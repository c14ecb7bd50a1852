"""Classic operators: warehouse extract and load (``sql``) and DataFrame/metric checks (``checks``)."""

from __future__ import annotations

from airflow_mlops_provider.operators.sql import (
    DataFrameLoadError,
    DataFrameLoadOperator,
    NotADataFrameError,
    NotASqlConnectionError,
    SqlExtractOperator,
    TargetTableExistsError,
)

__all__ = [
    "DataFrameLoadError",
    "DataFrameLoadOperator",
    "NotADataFrameError",
    "NotASqlConnectionError",
    "SqlExtractOperator",
    "TargetTableExistsError",
]
