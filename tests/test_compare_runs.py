"""Comparing two runs of a DAG from what was recorded at write time (catalog.compare)."""

from __future__ import annotations

import pytest
from airflow_runner import run_dag

from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.catalog.compare import compare_runs


@pytest.fixture(scope="module")
def runs() -> tuple[str, str]:
    first = run_dag("mlops_compare", run_conf={"variant": 1})
    second = run_dag("mlops_compare", run_conf={"variant": 2})
    assert first.state == second.state == "success"
    return first.run_id, second.run_id


def test_metric_deltas_and_check_changes(runs: tuple[str, str]) -> None:
    result = compare_runs("mlops_compare", *runs, ArtifactManager.configured())
    (metric,) = result.metrics
    assert (metric["task"], metric["name"], metric["before"], metric["after"]) == ("rows", "rows", 4.0, 6.0)
    assert metric["delta"] == 2.0 and (metric["status_before"], metric["status_after"]) == ("ok", "warning")
    (check,) = result.checks
    assert (check["task"], check["before"], check["after"], check["severity"]) == (
        "small",
        "ok",
        "warning",
        "warning",
    )


def test_table_changes_without_loading_the_artifact(
    runs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("comparing runs must not load an artifact")

    monkeypatch.setattr(ArtifactManager, "load", refuse)
    result = compare_runs("mlops_compare", *runs, ArtifactManager.configured())
    (table,) = result.tables
    assert table["artifact"] == "customers return_value"
    assert table["rows"] == {"before": 4, "after": 6, "delta": 2}
    assert (
        table["added"] == [{"name": "segment", "dtype": "object"}] or table["added"][0]["name"] == "segment"
    )
    assert table["retyped"] == [{"name": "score", "before": "int64", "after": "float64"}]
    city = table["columns"]["city"]
    assert city["null_rate"]["before"] == 0.0 and city["null_rate"]["after"] == pytest.approx(2 / 6, abs=1e-6)
    assert city["top"]["new"] == ["c", "d"]
    assert city["distinct"] == {"before": 2, "after": 3, "delta": 1}
    assert table["removed"] == [{"name": "legacy", "dtype": "int64"}]
    assert table["columns"]["id"]["mean"] == {"before": 2.5, "after": 3.5, "delta": 1.0}
    assert result.artifacts_added == result.artifacts_removed == []
