"""Never wrong data on S3: failed writes leave no object and no open multipart upload behind, a retry
and ``airflow mlops gc`` abort the uploads a killed worker could not, a missing bucket is named as
such, and a deleted object is ``ArtifactNotFoundError`` even after the store was listed."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from conftest import BIN, S3Server

from airflow_mlops_provider import ArtifactNotFoundError, ArtifactStoreError
from airflow_mlops_provider.artifacts import uploads
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer

if TYPE_CHECKING:
    from collections.abc import Iterator

MiB = 2**20
TRY_1 = Producer("dag_f", "run_1", "train", -1, "return_value", 1)
TRY_2 = Producer("dag_f", "run_1", "train", -1, "return_value", 2)


@pytest.fixture
def s3_root(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket on the moto server; ``[mlops] artifact_root`` points below it."""
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", s3_server.connection_uri())
    monkeypatch.setenv("AIRFLOW__MLOPS__AWS_CONN_ID", "aws_default")
    root = f"s3://{bucket}/ml/artifacts"
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", root)
    yield root


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 5 MiB (S3's smallest): 6 MiB is a multipart upload with a part already sent."""
    monkeypatch.setattr(uploads, "PART_BYTES", 5 * MiB)


def _manager(root: str) -> ArtifactManager:
    return ArtifactManager(ArtifactSettings(root, conn_id="aws_default", store_timeout_seconds=10))


def _bucket_key(root: str) -> tuple[str, str]:
    bucket, _, key = root.removeprefix("s3://").partition("/")
    return bucket, key


def _uploads(server: S3Server, root: str) -> list[dict[str, Any]]:
    bucket, key = _bucket_key(root)
    return server.client().list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])


def _objects(server: S3Server, root: str) -> list[str]:
    bucket, key = _bucket_key(root)
    return [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])]


def _start_upload(server: S3Server, root: str, relative: str, part_bytes: int = 0) -> str:
    """An upload a SIGKILLed worker leaves: initiated (with a part, optionally), never completed."""
    bucket, key = _bucket_key(root)
    client = server.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key=f"{key}/{relative}")
    if part_bytes:
        client.upload_part(
            Bucket=bucket,
            Key=f"{key}/{relative}",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"p" * part_bytes,
        )
    return upload["UploadId"]


def _fail_request(monkeypatch: pytest.MonkeyPatch, fs: Any, method: str) -> None:
    """Every ``method`` request of ``fs`` fails as if the connection dropped; the others go through."""
    call_s3 = fs.call_s3

    def failing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == method:
            raise ConnectionError(f"connection lost during {method}")
        return call_s3(name, *args, **kwargs)

    monkeypatch.setattr(fs, "call_s3", failing)


def _folder(producer: Producer, write_id: str) -> str:
    from airflow_mlops_provider.artifacts import layout

    return layout.WriteFolder.of(producer, write_id).relative


# -- failed writes ----------------------------------------------------------------------------------


def test_failed_abort_never_commits_the_partial_object(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serializer fails after a part went up and the abort request fails too: the upload must
    never be completed later (an fsspec file's ``close()``, also run by ``__del__``, would commit)."""
    store = _manager(s3_root).store
    _fail_request(monkeypatch, store.fs, "abort_multipart_upload")
    url = store.url(f"{_folder(TRY_1, 'aaaaaaaaaaaa')}/0.bin")
    with pytest.raises(RuntimeError, match="serializer failed"), store.open_write(url) as out:
        out.write(b"x" * (6 * MiB))  # one part uploaded
        raise RuntimeError("serializer failed")
    del out
    gc.collect()  # runs the file object's __del__
    assert _objects(s3_server, s3_root) == []


def test_failure_while_completing_aborts_the_upload(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last request of a write (completing the multipart upload) fails: the upload is aborted."""
    manager = _manager(s3_root)
    _fail_request(monkeypatch, manager.store.fs, "complete_multipart_upload")
    random_bytes = pd.DataFrame({"x": [os.urandom(64) for _ in range(120_000)]})  # ~8 MB: 2 parts
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(random_bytes, TRY_1)
    assert s3_root in str(err.value) and "'aws_default'" in str(err.value)
    assert _uploads(s3_server, s3_root) == []
    assert _objects(s3_server, s3_root) == []


def test_failed_write_of_a_large_value_leaves_no_upload(s3_server: S3Server, s3_root: str) -> None:
    store = _manager(s3_root).store
    url = store.url(f"{_folder(TRY_1, 'bbbbbbbbbbbb')}/0.bin")
    with pytest.raises(RuntimeError), store.open_write(url) as out:
        out.write(b"x" * (11 * MiB))  # two parts uploaded
        raise RuntimeError("serializer failed")
    assert _uploads(s3_server, s3_root) == [] and _objects(s3_server, s3_root) == []


# -- uploads left by killed workers ---------------------------------------------------------------


def test_retry_aborts_uploads_left_by_earlier_tries(s3_server: S3Server, s3_root: str) -> None:
    killed = _start_upload(s3_server, s3_root, f"{_folder(TRY_1, 'cccccccccccc')}/0.parquet", MiB)
    other_ti = dataclass_replace(TRY_1, task_id="evaluate")
    other_mapped = dataclass_replace(TRY_1, map_index=3)
    kept = {
        _start_upload(s3_server, s3_root, f"{_folder(other_ti, 'dddddddddddd')}/0.parquet"),
        _start_upload(s3_server, s3_root, f"{_folder(other_mapped, 'eeeeeeeeeeee')}/0.parquet"),
        _start_upload(s3_server, s3_root, f"{_folder(TRY_2, 'ffffffffffff')}/0.parquet"),  # this try's own
    }
    manager = _manager(s3_root)
    manager.dump(pd.DataFrame({"a": range(2000)}), TRY_2)
    left = {u["UploadId"] for u in _uploads(s3_server, s3_root)}
    assert killed not in left
    assert left == kept

    # Once per task instance and process: a second value of the same try lists nothing again.
    again = _start_upload(s3_server, s3_root, f"{_folder(TRY_1, '111111111111')}/0.parquet")
    manager.dump(pd.DataFrame({"a": range(2000)}), dataclass_replace(TRY_2, key="other"))
    assert again in {u["UploadId"] for u in _uploads(s3_server, s3_root)}


def test_first_try_lists_no_uploads(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _manager(s3_root)
    calls: list[str] = []
    call_s3 = manager.store.fs.call_s3

    def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return call_s3(method, *args, **kwargs)

    monkeypatch.setattr(manager.store.fs, "call_s3", counting)
    manager.dump(pd.DataFrame({"a": range(2000)}), TRY_1)
    assert "list_multipart_uploads" not in calls


def dataclass_replace(producer: Producer, **changes: Any) -> Producer:
    import dataclasses

    return dataclasses.replace(producer, **changes)


def test_gc_aborts_stale_uploads(s3_server: S3Server, s3_root: str) -> None:
    from airflow_mlops_provider.cli.gc import _render, collect_garbage

    store = _manager(s3_root).store
    stale = _start_upload(s3_server, s3_root, f"{_folder(TRY_1, '222222222222')}/0.parquet", 5 * MiB)
    _start_upload(s3_server, s3_root, f"{_folder(TRY_2, '333333333333')}/0.parquet")
    outside = _start_upload(s3_server, s3_root.rsplit("/", 1)[0], "elsewhere/0.bin")  # not under the root
    # Ages are measured from S3's "Initiated" (moto reports a fixed date): gc runs "later" than that.
    initiated = max(u["Initiated"] for u in _uploads(s3_server, s3_root))

    report = collect_garbage(store, dry_run=True, now=initiated + timedelta(hours=25))
    found = report.to_dict()["unfinished_uploads"]
    assert found["older_than_seconds"] == 24 * 3600
    assert found["would_abort"]["uploads"] == 2 and found["would_abort"]["bytes"] == 5 * MiB
    assert stale in {i["upload_id"] for i in found["would_abort"]["items"]}
    text = "\n".join(_render(report, verbose=False))
    assert "Unfinished multipart uploads older than 1d: would abort 2 (5.0 MiB of parts)" in text, text
    assert len(_uploads(s3_server, s3_root)) == 2  # --dry-run aborted nothing

    report = collect_garbage(store, now=initiated + timedelta(hours=1))
    young = report.to_dict()["unfinished_uploads"]
    assert young["aborted"]["uploads"] == 0 and young["kept_recent"]["uploads"] == 2
    assert len(_uploads(s3_server, s3_root)) == 2

    report = collect_garbage(store, now=initiated + timedelta(hours=2), stale_uploads=timedelta(hours=1))
    assert report.to_dict()["unfinished_uploads"]["aborted"]["uploads"] == 2
    assert "aborted 2 (5.0 MiB of parts), kept 0 younger" in "\n".join(_render(report, verbose=False))
    assert _uploads(s3_server, s3_root) == []
    bucket = _bucket_key(s3_root)[0]
    everywhere = s3_server.client().list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert outside in {u["UploadId"] for u in everywhere}


def test_gc_json_output_is_pure_json_on_s3(s3_server: S3Server, s3_root: str) -> None:
    _start_upload(s3_server, s3_root, f"{_folder(TRY_1, '444444444444')}/0.parquet")
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}  # Airflow logs connection lookups
    proc = subprocess.run(
        [str(BIN / "airflow"), "mlops", "gc", "--dry-run", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("{"), proc.stdout[:3000]
    report = json.loads(proc.stdout)
    assert report["root"] == s3_root
    uploads = report["unfinished_uploads"]
    assert uploads["would_abort"]["uploads"] + uploads["kept_recent"]["uploads"] == 1
    assert uploads["error"] is None


# -- missing bucket ---------------------------------------------------------------------------------


def test_write_to_a_missing_bucket_names_it(s3_server: S3Server, s3_root: str) -> None:
    root = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/prefix"
    with pytest.raises(ArtifactStoreError) as err:
        _manager(root).dump(pd.DataFrame({"a": [1]}), TRY_1)
    message = str(err.value)
    assert root in message and "'aws_default'" in message, message
    assert "bucket" in message and "does not exist" in message and "[mlops] artifact_root" in message, message


def test_read_from_a_missing_bucket_says_so(s3_server: S3Server, s3_root: str) -> None:
    manager = _manager(s3_root)
    row = manager.dump(pd.DataFrame({"a": range(100)}), TRY_1)
    bucket = _bucket_key(s3_root)[0]
    gone = f"gone-{uuid.uuid4().hex[:8]}"
    moved = json.loads(json.dumps(row).replace(f"s3://{bucket}/", f"s3://{gone}/"))
    elsewhere = _manager(f"s3://{gone}/ml/artifacts")
    reads = {
        "load": lambda: elsewhere.load(moved),
        "columns": lambda: elsewhere.load_lazy(moved).load(columns=["a"]),
        "batches": lambda: next(elsewhere.load_lazy(moved).iter_batches()),
    }
    for name, read in reads.items():
        with pytest.raises(ArtifactStoreError) as err:
            read()
        message = str(err.value)
        assert not isinstance(err.value, ArtifactNotFoundError), (name, message)
        context = (name, message)
        assert f"bucket '{gone}' does not exist" in message and "[mlops] artifact_root" in message, context
        assert moved["uri"] in message and "task 'train'" in message and "'aws_default'" in message, context
        assert "deleted after the task ran" not in message, (name, message)


# -- deleted objects --------------------------------------------------------------------------------


@pytest.mark.parametrize("listed", [False, True], ids=["fresh", "after-listing"])
def test_lazy_handle_to_a_deleted_object(store: str, producer: Producer, listed: bool) -> None:
    """Another process deletes the object (gc, a lifecycle rule); this process may have listed the
    store before (gc, snapshots, run histories): the handle still reports the object missing."""
    manager = ArtifactManager()
    row = manager.dump(pd.DataFrame({"a": range(1000)}), producer)
    if listed:
        list(manager.store.walk())
    other = ArtifactManager(ArtifactSettings(store, conn_id="aws_default"))
    other.store.delete_dir(row["uri"].rsplit("/", 1)[0])  # the whole write folder, from elsewhere
    handle = manager.load_lazy(row)
    reads = {
        "columns": lambda: handle.load(columns=["a"]),
        "batches": lambda: next(handle.iter_batches()),
        "load": handle.load,
        "open": lambda: handle.open().read(),
        "check": lambda: manager.stored(handle.reference).check(),
    }
    for name, read in reads.items():
        with pytest.raises(ArtifactNotFoundError) as err:
            read()
        message = str(err.value)
        assert row["uri"] in message and "task 'make'" in message, (name, message)


def test_a_large_write_sends_its_parts_at_once(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One S3 connection is slow; a large artifact goes up as several parts in flight at once
    (s3fs's own file object sends them one after the other), and comes back byte for byte."""
    from relay import Relay

    with Relay(s3_server.port, latency=0.05) as relay:
        connection = json.loads(s3_server.connection_uri())
        connection["extra"]["endpoint_url"] = relay.url
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
        manager = _manager(s3_root)
        data = os.urandom(31 * MiB)  # 6 full parts and a short last one
        relay.reset_counters()
        row = manager.dump(data, TRY_1)
        assert relay.peak_busy >= 4, relay.peak_busy  # parts in flight together
        assert relay.requests >= 8  # create, 7 parts, complete (then the manifest)
        assert manager.load(row) == data
        # A whole read: s3fs fetches ranges in waves of max_concurrency, each waiting for its
        # slowest; the ranges are sized so that one wave covers the object (at scale: 1 GB in 10
        # ranges, not 64 in 7 waves).
        monkeypatch.setattr(uploads, "PART_BYTES", 2 * MiB)  # at scale: 16 MiB
        relay.reset_counters()
        assert manager.load(row) == data
        assert relay.requests <= 11, relay.requests  # a HEAD, then ranges of 31 MiB / 10
        assert relay.peak_busy >= 8, relay.peak_busy
    assert _uploads(s3_server, s3_root) == []


def test_a_slow_part_does_not_hold_the_others_back(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real S3 has slow requests now and then: while one part takes long, the other slots keep
    sending parts (a writer waiting for its oldest part would stall them all), and the object is
    still assembled in order."""
    import asyncio
    import time

    import s3fs

    events: list[tuple[str, int]] = []
    call_s3 = s3fs.S3FileSystem._call_s3

    async def slow_first_part(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        number = kwargs.get("PartNumber") if method == "upload_part" else None
        if number is not None:
            events.append(("start", number))
        if number == 1:
            await asyncio.sleep(2.0)
        result = await call_s3(self, method, *args, **kwargs)
        if number is not None:
            events.append(("end", number))
        return result

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", slow_first_part)
    monkeypatch.setattr(uploads, "CONCURRENCY", 2)
    manager = _manager(s3_root)
    data = os.urandom(36 * MiB)  # 7 full parts and a short last one
    started = time.monotonic()
    row = manager.dump(data, TRY_1)
    assert time.monotonic() - started >= 2.0
    first_done = events.index(("end", 1))
    assert ("start", 6) in events[:first_done], events  # parts 2-6 went up meanwhile, on one slot
    assert manager.load(row) == data
    assert _uploads(s3_server, s3_root) == []


@pytest.mark.parametrize("mb", [17, 100, 160, 500, 641, 1024, 2048, 10_000])
def test_whole_reads_use_full_waves_of_bounded_ranges(mb: int) -> None:
    """s3fs reads ranges in waves of ``max_concurrency``, holding a wave beside the whole object:
    every wave but a small object's is full, and a wave holds at most 64 MiB per connection."""
    from airflow_mlops_provider.artifacts.store import _read_ranges

    size, part = mb * MiB, 16 * MiB
    ranges = _read_ranges(size, 10, part)
    count = -(-size // ranges)
    assert part <= ranges <= 4 * part
    assert count <= 10 or count % 10 == 0 or (count + 1) % 10 == 0, count  # last range may be short
    assert -(-count // 10) == -(-size // (10 * 4 * part))  # no more waves than the bound needs


def test_a_column_read_fetches_record_batches_at_once(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column of a table of many record batches comes back exact, fetching about that column's
    share of the object, with several batches' ranges in flight at once (pyarrow alone asks for one
    buffer after the other)."""
    import numpy as np
    from relay import Relay

    from airflow_mlops_provider.artifacts import chunks
    from airflow_mlops_provider.artifacts.serializers import table_formats

    monkeypatch.setattr(table_formats, "_ARROW_BATCH_BYTES", MiB)  # 16 batches of 10 columns
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)  # at scale: 64 MiB batches, 1 MiB chunks
    with Relay(s3_server.port, latency=0.05) as relay:
        connection = json.loads(s3_server.connection_uri())
        connection["extra"]["endpoint_url"] = relay.url
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
        manager = _manager(s3_root)
        rng = np.random.default_rng(3)
        frame = pd.DataFrame({f"c{i}": rng.standard_normal(200_000) for i in range(10)})
        row = manager.dump(frame, TRY_1)
        relay.reset_counters()
        column = manager.load_lazy(row).load(columns=["c4"])
        pd.testing.assert_frame_equal(column, frame[["c4"]], check_exact=True)
        assert relay.peak_busy >= 4, relay.peak_busy
        assert relay.bytes_down < 0.35 * row["size_bytes"], (relay.bytes_down, row["size_bytes"])


def test_a_small_artifacts_objects_go_up_together(
    s3_server: S3Server, s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data, preview and manifest of a small frame: the objects beside the data are sent at once,
    not one round trip after the other, and a failure of one fails the write and leaves nothing."""
    from relay import Relay

    with Relay(s3_server.port, latency=0.1) as relay:
        connection = json.loads(s3_server.connection_uri())
        connection["extra"]["endpoint_url"] = relay.url
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
        manager = _manager(s3_root)
        frame = pd.DataFrame({"a": range(1000), "b": [f"s{i}" for i in range(1000)]})
        manager.dump(frame, TRY_1)  # connections opened, clients made
        relay.reset_counters()
        row = manager.dump(frame, TRY_1)
        assert relay.requests == 3 and relay.peak_busy == 2, (relay.requests, relay.peak_busy)
        pd.testing.assert_frame_equal(manager.load(row), frame, check_exact=True)
        assert manager.preview(manager.load_lazy(row).reference)["rows"] == 1000

        fs = manager.store.fs
        call_s3 = fs._call_s3

        async def manifest_fails(method: str, *args: Any, **kwargs: Any) -> Any:
            if method == "put_object" and kwargs.get("Key", "").endswith(".manifest.json"):
                raise ConnectionError("connection lost during the manifest's put_object")
            return await call_s3(method, *args, **kwargs)

        monkeypatch.setattr(fs, "_call_s3", manifest_fails)
        before = _objects(s3_server, s3_root)
        with pytest.raises(ArtifactStoreError, match=r"manifest\.json"):
            manager.dump(frame, TRY_2)
        assert _objects(s3_server, s3_root) == before  # data and preview of the failed write removed
