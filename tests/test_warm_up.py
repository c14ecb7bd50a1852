"""A task's start prepares the object store's client, so its first push does not wait for it."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.artifacts.manager import ArtifactManager


class _Channel:
    """Stands for the Task SDK's channel to the supervisor: with a lock (1.2+) or without (3.1,
    ``dag.test()``). The connection comes from the environment, so nothing is ever sent."""

    def __init__(self, locked: bool) -> None:
        if locked:
            self._thread_lock = threading.Lock()

    def send(self, message: Any) -> Any:
        raise AssertionError(f"unexpected request to the supervisor: {message!r}")


def _wait_for_warm_up() -> None:
    for thread in threading.enumerate():
        if thread.name == "mlops-warm-up":
            thread.join(60)


@pytest.mark.parametrize("locked", [True, False], ids=["sdk-1.2+", "sdk-1.1-or-dag-test"])
def test_a_task_start_makes_the_s3_client_where_other_threads_may_resolve_connections(
    monkeypatch: pytest.MonkeyPatch, s3_server: Any, producer: Any, locked: bool
) -> None:
    from airflow.sdk.execution_time import task_runner

    from airflow_mlops_provider.listeners import task_runtime

    bucket = f"warm-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", s3_server.connection_uri())
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", f"s3://{bucket}/artifacts")
    monkeypatch.setenv("AIRFLOW__MLOPS__AWS_CONN_ID", "aws_default")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", _Channel(locked), raising=False)
    store = ArtifactManager.configured().store
    assert "fs" not in vars(store)

    task_runtime.on_task_instance_running(None, object())
    _wait_for_warm_up()
    try:
        # Only a channel that serializes threads' requests lets the warm-up resolve the connection.
        assert ("fs" in vars(store)) is locked
        frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
        manager = ArtifactManager.configured()
        pd.testing.assert_frame_equal(manager.load(manager.dump(frame, producer)), frame, check_exact=True)
    finally:
        task_runtime._finished()


def test_a_warm_up_that_fails_leaves_the_error_to_the_first_use(
    monkeypatch: pytest.MonkeyPatch, producer: Any
) -> None:
    """A client that cannot be made fails nothing at the task's start; the push reports why."""
    import airflow.sdk.io.fs
    from airflow.sdk.execution_time import task_runner

    from airflow_mlops_provider.exceptions import ArtifactError
    from airflow_mlops_provider.listeners import task_runtime

    calls = []

    def unreachable_secrets(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        raise RuntimeError("the secrets backend is unreachable")

    monkeypatch.setattr(airflow.sdk.io.fs, "get_fs", unreachable_secrets)
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", f"s3://warm-{uuid.uuid4().hex[:12]}/artifacts")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", _Channel(locked=True), raising=False)
    task_runtime.on_task_instance_running(None, object())
    _wait_for_warm_up()
    try:
        manager = ArtifactManager.configured()
        assert calls == ["mlops-warm-up"] and "fs" not in vars(manager.store)
        with pytest.raises(ArtifactError, match="the secrets backend is unreachable"):
            manager.dump(pd.DataFrame({"a": range(5000)}), producer)
        assert calls == ["mlops-warm-up", "MainThread"]
    finally:
        task_runtime._finished()


def test_only_a_task_sdk_channel_with_a_lock_lets_other_threads_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Task SDK's own channel serializes requests from several threads from 1.2 (Airflow 3.2),
    not in 1.1 (3.1); outside a task there is no channel at all."""
    import socket
    from importlib.metadata import version

    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import CommsDecoder
    from packaging.version import Version

    from airflow_mlops_provider._compat import requests_from_threads_allowed

    ours, theirs = socket.socketpair()
    with ours, theirs:
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", CommsDecoder(socket=ours), raising=False)
        locked = Version(version("apache-airflow-task-sdk")) >= Version("1.2")
        assert requests_from_threads_allowed() is locked
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", None, raising=False)
    assert requests_from_threads_allowed() is False
