"""Store faults are store errors: a silent endpoint times out, a full disk and a lost connection
mid-upload are ``ArtifactStoreError`` naming the URI, the root and the connection, never a
serializer failure, and nothing partial stays visible."""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from conftest import S3Server

from airflow_mlops_provider import ArtifactStoreError, UnsupportedTypeError
from airflow_mlops_provider.artifacts import uploads
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer, Reference

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PRODUCER = Producer("dag_x", "run_1", "extract", -1, "return_value", 1)
TIMEOUT = 1.0
# 3 attempts of TIMEOUT each, botocore's backoff between them, and the clean-up's requests.
BOUND = 30.0


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 connection to 127.0.0.1 whose server accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SILENT_S3",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "a",
                "password": "b",
                "extra": {
                    "endpoint_url": f"http://127.0.0.1:{server.getsockname()[1]}",
                    "region_name": "us-east-1",
                },
            }
        ),
    )
    try:
        yield "silent_s3"
    finally:
        stop.set()
        server.close()
        for conn in accepted:
            conn.close()


def _silent_manager(conn_id: str) -> ArtifactManager:
    return ArtifactManager(
        ArtifactSettings("s3://silent-bucket/prefix", conn_id=conn_id, store_timeout_seconds=TIMEOUT)
    )


def _assert_store_error(
    err: pytest.ExceptionInfo[ArtifactStoreError], root: str, conn_id: str, cause: str
) -> None:
    message = str(err.value)
    assert root in message and repr(conn_id) in message, message
    assert cause in message, message
    assert "Serializer" not in message and not isinstance(err.value, UnsupportedTypeError), message


def test_write_to_a_silent_endpoint_times_out(silent_endpoint: str) -> None:
    manager = _silent_manager(silent_endpoint)
    started = time.monotonic()
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(pd.DataFrame({"a": range(10)}), PRODUCER)
    elapsed = time.monotonic() - started
    print(f"write to a silent endpoint failed after {elapsed:.1f} s")
    assert elapsed < BOUND
    _assert_store_error(err, "s3://silent-bucket/prefix", silent_endpoint, "timed out")


def test_read_from_a_silent_endpoint_times_out(silent_endpoint: str) -> None:
    manager = _silent_manager(silent_endpoint)
    reference = Reference(
        uri="s3://silent-bucket/prefix/dag_id=dag_x/run_id=run_1/task_id=extract/map_index=-1/"
        "key=return_value/try=1-000000000000/0.parquet",
        type="pandas.core.frame.DataFrame",
        serializer="pandas.dataframe",
        format="parquet",
        format_version=1,
        size_bytes=100,
        sha256="0" * 64,
        producer=PRODUCER,
    )
    started = time.monotonic()
    with pytest.raises(ArtifactStoreError) as err:
        manager.load_reference(reference)
    elapsed = time.monotonic() - started
    print(f"read from a silent endpoint failed after {elapsed:.1f} s")
    assert elapsed < BOUND
    _assert_store_error(err, "s3://silent-bucket/prefix", silent_endpoint, "timed out")


class _LimitedFile:
    """A file of the store's filesystem that fails like a full disk (or calls ``on_limit``) once
    ``limit`` bytes went through it."""

    def __init__(self, raw: Any, limit: int, on_limit: Any = None) -> None:
        self._raw = raw
        self._limit = limit
        self._written = 0
        self._on_limit = on_limit

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self._written + size > self._limit:
            if self._on_limit is None:
                raise OSError(errno.ENOSPC, "No space left on device")
            self._on_limit()
            self._on_limit = lambda: None
        self._written += size
        return self._raw.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _limit_writes(monkeypatch: pytest.MonkeyPatch, fs: Any, limit: int, on_limit: Any = None) -> None:
    original = fs.open

    def open_limited(path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        raw = original(path, mode, *args, **kwargs)
        return _LimitedFile(raw, limit, on_limit) if "w" in mode else raw

    monkeypatch.setattr(fs, "open", open_limited)


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.random(rows), "y": rng.random(rows)})


def test_full_disk_is_a_store_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = (tmp_path / "artifacts").as_uri()
    manager = ArtifactManager(ArtifactSettings(root))
    _limit_writes(monkeypatch, manager.store.fs, limit=64 * 1024)
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(_frame(200_000), PRODUCER)
    message = str(err.value)
    assert "no space left on the device" in message and root in message, message
    assert "/0.arrow" in message, message  # the URI of the object being written
    assert "Serializer" not in message and "Register a serializer" not in message, message
    assert isinstance(err.value.__cause__, OSError) and err.value.__cause__.errno == errno.ENOSPC
    left = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert left == []


def test_s3_server_killed_mid_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    server = S3Server()
    try:
        bucket = f"kill-{uuid.uuid4().hex[:8]}"
        server.client().create_bucket(Bucket=bucket)
        monkeypatch.setenv("AIRFLOW_CONN_DOOMED_S3", server.connection_uri())
        root = f"s3://{bucket}/artifacts"
        manager = ArtifactManager(ArtifactSettings(root, conn_id="doomed_s3", store_timeout_seconds=5))
        # Multipart parts of 5 MiB: the upload is under way (parts in flight) when the server dies.
        monkeypatch.setattr(uploads, "PART_BYTES", 5 * 2**20)
        killed: list[float] = []

        def kill() -> None:
            server.proc.kill()  # by PID, mid-upload
            server.proc.wait(10)
            killed.append(time.monotonic())

        write = uploads.ConcurrentUpload.write
        written = [0]

        def write_then_kill(self: uploads.ConcurrentUpload, data: Any) -> int:
            written[0] += memoryview(data).nbytes
            if written[0] > 12 * 2**20 and not killed:
                kill()
            return write(self, data)

        monkeypatch.setattr(uploads.ConcurrentUpload, "write", write_then_kill)
        with pytest.raises(ArtifactStoreError) as err:
            manager.dump(_frame(2_000_000), PRODUCER)  # ~32 MB
        assert killed, "the server was not killed during the upload"
        print(f"killed mid-upload: failed {time.monotonic() - killed[0]:.1f} s after the kill")
        message = str(err.value)
        assert root in message and "'doomed_s3'" in message and "/0.arrow" in message, message
        assert "connection to the store lost or refused" in message, message
        assert "Serializer" not in message and not isinstance(err.value, UnsupportedTypeError), message
    finally:
        server.stop()
