"""``[mlops] deduplicate``: identical bytes stored once, and garbage collection that respects links.

With deduplication on, every data object moves to ``<root>/_cas/sha256/..`` and its write folder
keeps the manifest, the preview and a zero-byte ``<n>.sha256-<hex>`` link. The tests run real DAGs
on both stores and look at what is really in the store.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow_runner import run_dag

from airflow_mlops_provider.artifacts import codec, layout
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.exceptions import ArtifactNotFoundError, ArtifactStoreError
from airflow_mlops_provider.notebook import load_artifact

DAG = "mlops_dedup"


def _refs(result: Any) -> list[dict[str, Any]]:
    return [ref for row in result.xcom_rows.values() for _, ref in codec.iter_references(row)]


def _objects(manager: ArtifactManager, prefix: str = "") -> dict[str, int]:
    """Relative path -> size of every object under the root (or under ``prefix`` below it)."""
    return {o.relative: o.size for o in manager.store.walk(prefix)}


def _data_objects(manager: ArtifactManager) -> dict[str, int]:
    """Objects that hold artifact bytes: not manifests, previews, footer copies or links."""
    return {
        rel: size
        for rel, size in _objects(manager).items()
        if isinstance(path := layout.parse(rel), layout.SharedObject)
        or (isinstance(path, layout.FolderObject) and path.kind is layout.ObjectKind.DATA)
    }


@pytest.fixture
def dedup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DEDUPLICATE", "True")


def test_identical_values_are_stored_once(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = run_dag(DAG)  # written before deduplication was switched on: must stay readable
    assert plain.state == "success"
    manager = ArtifactManager()
    before = _data_objects(manager)
    assert not any(rel.startswith("_cas/") for rel in before)
    # Without dedup the 2,000-row table is written three times (return_value, "train", the copy).
    train_sha = {r["sha256"] for r in _refs(plain) if r["details"].get("rows") == 2_000}
    assert len(train_sha) == 1
    assert Counter(r["sha256"] for r in _refs(plain))[train_sha.pop()] == 3

    monkeypatch.setenv("AIRFLOW__MLOPS__DEDUPLICATE", "True")
    first, second = run_dag(DAG), run_dag(DAG, run_conf={"variant": 7})
    assert first.state == second.state == "success"
    assert second.row("check") == {"rows": 2_000, "variant": 7}

    refs = _refs(first) + _refs(second)
    assert all(r["blob"].startswith(f"{store}/_cas/sha256/") for r in refs)
    assert all(r["blob"].rsplit("/", 1)[1].startswith(r["sha256"]) for r in refs)
    shared = _objects(manager, "_cas/")
    distinct = {r["sha256"]: r["size_bytes"] for r in refs}
    assert len(shared) == len(distinct) == 4  # train, test, variant 0, variant 7
    assert sum(shared.values()) == sum(distinct.values())
    # Only the bytes of the two new runs were added, each distinct value once.
    assert _data_objects(manager).keys() - before.keys() == shared.keys()

    for run in (plain, first, second):
        train = load_artifact(DAG, run.run_id, "split", key="train")
        pd.testing.assert_frame_equal(train, load_artifact(DAG, run.run_id, "reference_copy"))
        assert len(load_artifact(DAG, run.run_id, "split")["test"]) == 500
    assert load_artifact(DAG, second.run_id, "variant").tolist() == [7] * 1_000
    column = load_artifact(DAG, first.run_id, "split", key="train", lazy=True).load(columns=["label"])
    assert list(column.columns) == ["label"] and len(column) == 2_000

    # The task view (the same service and template the UI serves) names the shared object.
    from airflow_mlops_provider.ui import service
    from airflow_mlops_provider.ui.render import render

    html = render("task.html", "/mlops", **service.task_page(DAG, first.run_id, "reference_copy"))
    assert "stored as" in html and first.row("reference_copy")["blob"] in html


def _clear_xcoms(run_id: str) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:  # what the UI and the REST API do: rows go, no purge
        for task_id in ("split", "reference_copy", "variant", "check"):
            XComModel.clear(dag_id=DAG, run_id=run_id, task_id=task_id, session=session)


def test_gc_deletes_a_shared_object_with_its_last_link(store: str, dedup: None) -> None:
    from airflow_mlops_provider.cli.gc import collect_garbage

    first, second = run_dag(DAG), run_dag(DAG, run_conf={"variant": 3})
    manager = ArtifactManager()
    only_first = {r["blob"] for r in _refs(first)} - {r["blob"] for r in _refs(second)}
    assert len(only_first) == 1  # the variant array of the first run
    [variant_blob] = only_first

    _clear_xcoms(first.run_id)  # cleared from the UI / API: no purge, folders and links remain
    dry = collect_garbage(grace=timedelta(0), dry_run=True)
    assert {o.uri for o in dry.deleted_shared} == only_first
    assert manager.store.exists(variant_blob)

    report = collect_garbage(grace=timedelta(0))
    first_folders = {r["uri"].rsplit("/", 1)[0] for r in _refs(first)}
    assert {f.uri for f in report.deleted} == first_folders
    assert {o.uri for o in report.deleted_shared} == only_first
    assert report.freed_bytes == sum(f.size_bytes for f in report.deleted) + sum(
        r["size_bytes"] for r in _refs(first) if r["blob"] in only_first
    )
    with pytest.raises(ArtifactNotFoundError):
        manager.store.info(variant_blob)
    # The shared tables are still linked from the second run: kept and readable.
    assert len(load_artifact(DAG, second.run_id, "split", key="train")) == 2_000
    assert load_artifact(DAG, second.run_id, "variant").tolist() == [3] * 1_000

    _clear_xcoms(second.run_id)
    report = collect_garbage(grace=timedelta(0), force=True)  # no XCom row left refers to anything
    assert len(report.deleted_shared) == 3
    assert _objects(manager, "_cas/") == {}
    assert not [rel for rel in _objects(manager) if rel.startswith("dag_id=mlops_dedup/")]


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_young_shared_objects_stay_and_writers_renew_old_ones(store: str, dedup: None, producer) -> None:
    """gc's grace period protects a shared object a writer is linking to right now."""
    from airflow_mlops_provider.cli.gc import collect_garbage

    manager = ArtifactManager()
    value = np.arange(50_000)
    row = manager.dump(value, producer)
    path = manager.store.fs_path(row["blob"])
    manager.purge(row)  # the only link is gone; the shared object stays for gc
    assert os.path.exists(path)

    report = collect_garbage(manager.store, force=True)  # default grace: one hour
    assert [o.reason for o in report.kept_shared] == ["younger than the grace period (1:00:00)"]
    two_days_ago = time.time() - 2 * 86400
    os.utime(path, (two_days_ago, two_days_ago))

    again = manager.dump(value, producer)  # a writer links to the old object: it is renewed
    assert again["blob"] == row["blob"]
    age = datetime.now(timezone.utc) - datetime.fromtimestamp(os.path.getmtime(path), timezone.utc)
    assert age < timedelta(minutes=5)
    assert collect_garbage(manager.store, force=True).deleted_shared == []
    np.testing.assert_array_equal(manager.load(again), value)


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_a_write_that_loses_a_race_with_gc_fails_loudly(
    store: str, dedup: None, producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If gc deletes the shared object while a task writes its manifest, the task fails (and retries)."""
    manager = ArtifactManager()
    put_bytes = manager.store.put_bytes

    def put_then_lose_the_object(url: str, data: bytes) -> None:
        put_bytes(url, data)
        if url.endswith(".manifest.json"):
            blob = manager.store.content_url(manifest_sha(data), ".npy")
            manager.store.delete_dir(blob)

    def manifest_sha(data: bytes) -> str:
        import json

        return json.loads(data)["sha256"]

    monkeypatch.setattr(manager.store, "put_bytes", put_then_lose_the_object)
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(np.arange(10_000), producer)
    message = str(err.value)
    assert "_cas/sha256/" in message and "task 'make'" in message and "retry" in message
    monkeypatch.undo()
    assert not [rel for rel in _objects(manager) if rel.startswith("dag_id=")]  # rolled back
