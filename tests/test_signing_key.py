"""The signing key never reaches the store: a handle a task returns is stored as a reference to the
same bytes (copied or linked into the task's own folder), never pickled with the manager."""

from __future__ import annotations

import pickle
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pytest
from airflow_runner import run_dag

from airflow_mlops_provider import ArtifactRef
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer

SIGNING_KEY = "k3y-that-must-never-be-stored-9f8e7d6c"


def _stored_objects(root: str, store_server: Any) -> dict[str, bytes]:
    """Every object under the artifact root, by name."""
    if root.startswith("file://"):
        from pathlib import Path

        top = Path(urlparse(root).path)
        return {str(p): p.read_bytes() for p in top.rglob("*") if p.is_file()}
    bucket, _, prefix = root[len("s3://") :].partition("/")
    client = store_server.client()
    objects: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            objects[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return objects


@pytest.mark.slow
def test_returned_handles_never_store_the_signing_key(
    store: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__SIGNING_KEY", SIGNING_KEY)
    from mlops_secret_handles import expected_frame

    result = run_dag("mlops_secret_handles")
    assert result.state == "success", result.task_states
    assert result.task_states[("check", -1)] == "success"

    server = request.getfixturevalue("s3_server") if store.startswith("s3://") else None
    objects = _stored_objects(store, server)
    assert len(objects) >= 8, sorted(objects)  # frames, pickle, their copies, manifests, previews
    leaking = [name for name, data in objects.items() if SIGNING_KEY.encode() in data]
    assert leaking == [], f"the signing key is stored in {leaking}"

    # Each echo stored the handle as a reference in its own folder, then the upstream is purged:
    # the copies stay readable and exact.
    manager = ArtifactManager()
    bare, wrapped = result.row("echo"), result.row("echo_in_dict")
    assert (
        "task_id=echo/" in bare["uri"] and bare["details"]["copied_from"] == result.row("make_frame")["uri"]
    )
    assert "task_id=echo_in_dict/" in wrapped["point"]["uri"] and wrapped["point"]["signature"]
    manager.purge(result.row("make_frame"))
    manager.purge(result.row("make_point"))
    pd.testing.assert_frame_equal(manager.load(bare), expected_frame())
    loaded = manager.load(wrapped)
    pd.testing.assert_frame_equal(loaded["frame"], expected_frame())
    point = loaded["point"]  # the DAG processor imported the DAG file under another module name
    assert type(point).__name__ == "Point" and (point.x, point.y) == (3, 4) and loaded["note"] == "handles"


@pytest.mark.parametrize("deduplicate", [False, True])
def test_a_stored_handle_survives_the_upstream_purge(store: str, deduplicate: bool) -> None:
    settings = ArtifactSettings.from_airflow_config()
    manager = ArtifactManager(
        ArtifactSettings(**{**settings.__dict__, "deduplicate": deduplicate, "signing_key": b"s3cr3t-key"})
    )
    frame = pd.DataFrame({"a": range(2_000), "b": [1.5] * 2_000})
    upstream = manager.dump(frame, Producer("d", "r", "up", -1, "return_value", 1))
    handle = manager.load_lazy(upstream)
    assert isinstance(handle, ArtifactRef)
    downstream = manager.dump({"x": handle, "y": [handle]}, Producer("d", "r", "down", -1, "return_value", 1))
    manager.purge(upstream)
    loaded = manager.load(downstream)
    pd.testing.assert_frame_equal(loaded["x"], frame)
    pd.testing.assert_frame_equal(loaded["y"][0], frame)
    assert manager.load_lazy(downstream)["x"].load(columns=["b"])["b"].tolist() == [1.5] * 2_000


def test_handles_pickle_as_references_and_managers_not_at_all(store: str) -> None:
    manager = ArtifactManager(
        ArtifactSettings(**{**ArtifactSettings.from_airflow_config().__dict__, "signing_key": b"s3cr3t-key"})
    )
    assert "s3cr3t-key" not in repr(manager.settings)
    row = manager.dump(pd.DataFrame({"a": [1, 2]}), Producer("d", "r", "up", -1, "return_value", 1))
    handle = manager.load_lazy(row)
    data = pickle.dumps(handle)
    assert b"s3cr3t-key" not in data
    restored = pickle.loads(data)
    assert restored.uri == handle.uri and restored.load()["a"].tolist() == [1, 2]
    assert pickle.loads(pickle.dumps(ArtifactRef.from_value([1, 2]))).load() == [1, 2]
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(manager)
