"""The one artifact listing: XCom rows -> entries with their manifest, preview and status."""

from __future__ import annotations

from typing import Any

import numpy as np

from airflow_mlops_provider.catalog.artifacts import artifact_entries
from airflow_mlops_provider.catalog.records import XComEntry


def _row(value: Any, key: str = "return_value") -> XComEntry:
    return XComEntry("test_dag", "manual__1", "make", -1, key, value)


def test_stored_artifacts_are_listed_with_manifest_and_preview(manager, producer) -> None:
    value = manager.dump({"weights": np.arange(6.0), "steps": [np.ones(2)], "epochs": 3}, producer)
    rows = [_row(value), _row({"status": "ok"}, key="summary"), _row({"kind": "check"}, key="mlops.check")]

    entries = artifact_entries(rows, manager, previews=True)

    assert [(e.xcom.key, e.path, e.status) for e in entries] == [
        ("return_value", "['weights']", "ok"),
        ("return_value", "['steps'][0]", "ok"),
        ("summary", "", "inline"),
    ]
    weights = entries[0]
    assert weights.manifest.reference == weights.reference and weights.manifest.created_at
    assert weights.preview["kind"] == "array" and weights.preview_error is None
    assert entries[2].inline and entries[2].inline_kind == "dict"
    assert [e.xcom.key for e in artifact_entries(rows, manager, include_records=True)][-1] == "mlops.check"


def test_deleted_forged_and_broken_references_say_why(manager, producer) -> None:
    stored = manager.dump(np.arange(4), producer)
    manager.store.delete_dir(stored["uri"].rsplit("/", 1)[0])
    forged = {**manager.dump(np.arange(5), producer), "uri": "file:///etc/passwd"}
    broken = {**stored, "size_bytes": None}

    missing, outside, unreadable = artifact_entries([_row([stored, forged, broken])], manager, previews=True)

    assert (missing.status, missing.path) == ("missing", "[0]")
    assert stored["uri"] in missing.error and missing.reference.summary == stored["summary"]
    assert outside.status == "outside_root" and "outside the configured artifact root" in outside.error
    assert outside.preview is None and outside.manifest is None
    assert unreadable.status == "unreadable" and unreadable.reference is None
