"""An artifact's status is its data object's: deleted data is ``missing`` even when its manifest
remains, and intact data is ``ok`` even when its manifest was deleted (on a local folder and on S3)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Reference
from airflow_mlops_provider.catalog.artifacts import artifact_entries
from airflow_mlops_provider.catalog.records import XComEntry


def _row(value: Any) -> XComEntry:
    return XComEntry("test_dag", "manual__1", "make", -1, "return_value", value)


def _delete(manager: ArtifactManager, uri: str) -> None:
    manager.store.fs.rm(manager.store.fs_path(uri))


@pytest.fixture(params=[False, True], ids=["plain", "dedup"])
def dedup_manager(
    request: pytest.FixtureRequest, store: str, monkeypatch: pytest.MonkeyPatch
) -> ArtifactManager:
    monkeypatch.setenv("AIRFLOW__MLOPS__DEDUPLICATE", str(request.param))
    return ArtifactManager()


def test_a_deleted_data_object_is_missing_even_with_its_manifest(dedup_manager, producer) -> None:
    manager = dedup_manager
    row = manager.dump(np.arange(6.0), producer)
    reference = Reference.from_row(row)
    _delete(manager, reference.data_uri)  # the shared object when deduplicated
    assert manager.store.info(reference.manifest_uri).size > 0

    (entry,) = artifact_entries([_row(row)], manager, previews=True)

    assert entry.status == "missing" and reference.data_uri in entry.error
    assert entry.preview is None  # a preview is never shown for bytes that are gone


def test_a_deleted_manifest_with_intact_data_is_ok(dedup_manager, producer) -> None:
    manager = dedup_manager
    row = manager.dump(np.arange(6.0), producer)
    reference = Reference.from_row(row)
    _delete(manager, reference.manifest_uri)

    (entry,) = artifact_entries([_row(row)], manager, previews=True)

    assert entry.status == "ok" and entry.error is None
    assert entry.manifest is None and "manifest" in entry.note and reference.manifest_uri in entry.note
    assert entry.stored_fields()["sha256"] == reference.sha256  # the reference's fields
    assert entry.preview["kind"] == "array"
    assert manager.load(row).tolist() == list(np.arange(6.0))  # and it does load


def test_an_unparseable_manifest_with_intact_data_is_ok(manager, producer) -> None:
    row = manager.dump(np.arange(3), producer)
    manager.store.put_bytes(Reference.from_row(row).manifest_uri, b"{not json")

    (entry,) = artifact_entries([_row(row)], manager)

    assert entry.status == "ok" and entry.manifest is None and "cannot be read" in entry.note


def test_a_data_object_of_another_size_is_unreadable(manager, producer) -> None:
    row = manager.dump(np.arange(100), producer)
    reference = Reference.from_row(row)
    manager.store.put_bytes(reference.data_uri, b"truncated")

    (entry,) = artifact_entries([_row(row)], manager, previews=True)

    assert entry.status == "unreadable" and "9 bytes" in entry.error and "truncated" in entry.error
    assert entry.preview is None


def test_intact_artifacts_stay_ok_with_their_manifest(dedup_manager, producer) -> None:
    manager = dedup_manager
    rows = [_row(manager.dump([np.arange(3), np.ones(2)], producer)), _row(manager.dump({"n": 1}, producer))]

    entries = artifact_entries(rows, manager, previews=True)

    assert [(e.path, e.status, e.note) for e in entries] == [
        ("[0]", "ok", None),
        ("[1]", "ok", None),
        ("", "inline", None),
    ]
    assert all(e.manifest is not None for e in entries[:2])
