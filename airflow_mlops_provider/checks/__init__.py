"""Data and model quality checks: the result type and the built-in check functions."""

from __future__ import annotations

from airflow_mlops_provider.checks.result import CheckResult

__all__ = ["CheckResult"]
