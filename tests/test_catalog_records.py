"""Check, metric and task records: the rows writers push parse back, and so do older rows."""

from __future__ import annotations

from airflow_mlops_provider.checks.bounds import Regression, evaluate_metric
from airflow_mlops_provider.records import CheckRecord, MetricRecord, TaskRecord


def test_a_check_row_keeps_its_stored_shape() -> None:
    record = CheckRecord(
        name="no_nulls",
        severity="warning",
        status="warning",
        message="3 nulls in age",
        passed=False,
        failing_count=3,
        failing_samples=[{"age": None}],
        details={"column": "age"},
        notified=False,
        notifier_errors=["SlackNotifier: down"],
    )
    row = record.to_row()
    assert row == {
        "kind": "check",
        "name": "no_nulls",
        "severity": "warning",
        "passed": False,
        "status": "warning",
        "message": "3 nulls in age",
        "failing_count": 3,
        "failing_samples": [{"age": None}],
        "details": {"column": "age"},
        "notified": False,
        "notifier_errors": ["SlackNotifier: down"],
    }
    assert CheckRecord.from_row(row) == record


def test_a_skipped_check_keeps_its_reason() -> None:
    row = CheckRecord(
        "drift", "error", "skipped", "no reference run", None, skipped="no reference run"
    ).to_row()
    assert row["skipped"] == "no reference run" and row["passed"] is None and "notified" not in row
    assert CheckRecord.from_row(row).status == "skipped"


def test_check_rows_without_a_status_get_one_from_passed_and_severity() -> None:
    assert CheckRecord.from_row({"passed": True, "severity": "error"}).status == "ok"
    assert CheckRecord.from_row({"passed": False, "severity": "error"}).status == "failed"
    assert CheckRecord.from_row({"passed": False, "severity": "warning"}).status == "warning"
    assert CheckRecord.from_row({"passed": None}).status == "skipped"
    assert CheckRecord.from_row(None).message == ""  # a row that is not a record: empty, not a crash


def test_metric_entries_are_what_the_bounds_evaluation_recorded() -> None:
    gated = evaluate_metric("auc", 0.8, lower=0.5, regression=Regression(max_drop=0.1), history=[])
    breached = evaluate_metric("loss", 2.0, upper=1.0, severity="error")
    record = MetricRecord("error", [gated, breached])
    row = record.to_row()
    assert row["kind"] == "metric" and [m["status"] for m in row["metrics"]] == ["skipped", "failed"]
    assert row["metrics"][0]["skipped"].startswith("no earlier successful run")
    assert row["metrics"][1]["breaches"] == ["loss=2 is above the upper bound 1"]
    assert MetricRecord.from_row(row) == record
    assert record.metric("loss") == record.metrics[1] and record.metric("nope") is None


def test_old_metric_rows_parse() -> None:
    record = MetricRecord.from_row(
        {
            "metrics": [
                {"name": "auc", "value": 0.9},
                {"name": "f1", "value": 0.2, "breaches": ["low"]},
                "junk",
            ]
        }
    )
    assert [(m.name, m.status) for m in record.metrics] == [("auc", "ok"), ("f1", "warning")]
    assert MetricRecord.from_row({"metrics": None}).metrics == []


def test_task_rows_write_optional_fields_only_when_set() -> None:
    running = TaskRecord("running", operator="@ml.task", code_hash="abc", peak_rss_mb=12.5)
    row = running.to_row()
    assert "error" not in row and "memory_warning" not in row and row["status"] == "running"
    failed = TaskRecord.from_row({**row, "status": "failed", "error": "ValueError", "inputs": [{"uri": "u"}]})
    assert failed.to_row() == {**row, "status": "failed", "error": "ValueError", "inputs": [{"uri": "u"}]}
    assert TaskRecord.from_row({"peak_rss_mb": 3.0}).status == "done"  # written at the end only


def test_a_record_larger_than_the_inline_threshold_stays_in_its_row(monkeypatch, tmp_path) -> None:
    """A reduce task's record lists every input it read: far above ``inline_threshold_bytes``. The
    catalog reads records from the DB, so the row must be the record, never an artifact reference."""
    from airflow_mlops_provider.records import TASK_KEY
    from airflow_mlops_provider.xcom.backend import ArtifactXComBackend

    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", str(tmp_path))
    inputs = [
        {"uri": f"s3://b/dag_id=d/run_id=r/task_id=map/map_index={i}/0.arrow", "sha256": "a" * 64}
        for i in range(200)
    ]
    record = TaskRecord(status="success", params={"lr": 0.1}, error="bad\x00byte", inputs=inputs).to_row()
    ids = {"dag_id": "d", "run_id": "r", "task_id": "reduce", "map_index": -1}

    row = ArtifactXComBackend.serialize_value(record, key=TASK_KEY, **ids)
    parsed = TaskRecord.from_row(row)
    assert parsed.params == {"lr": 0.1} and parsed.inputs == inputs and parsed.status == "success"
    assert parsed.error == "bad\ufffdbyte"  # PostgreSQL's JSONB refuses NUL characters
    # The same document under another key is stored as an artifact (a reference in the row).
    other = ArtifactXComBackend.serialize_value(record, key="return_value", **ids)
    assert TaskRecord.from_row(other).inputs != inputs
