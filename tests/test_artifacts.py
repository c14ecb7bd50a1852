"""The artifact layer on both stores: errors, integrity, signing, keys, purge, manifests."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_mlops_provider import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    PickleNotAllowedError,
    UnsupportedTypeError,
)
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Manifest, Producer, Reference
from airflow_mlops_provider.artifacts.store import MAX_KEY_BYTES


def _with(manager: ArtifactManager, **changes) -> ArtifactManager:
    settings = ArtifactSettings(**{**manager.settings.__dict__, **changes})
    return ArtifactManager(settings)


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n


def test_unsupported_type_error_names_task_key_type_and_fix(manager, producer) -> None:
    strict = _with(manager, allow_pickle=False)
    with pytest.raises(UnsupportedTypeError) as err:
        strict.dump(Opaque(1), producer)
    message = str(err.value)
    for needle in (
        "test_magic" if False else "test_dag",
        "'make'",
        "'return_value'",
        "Opaque",
        "allow_pickle = False",
        "register_serializer",
    ):
        assert needle in message
    assert strict.store.list_files(strict.store.root) == []


def test_unpicklable_value_fails_clearly_and_rolls_back_earlier_parts(manager, producer) -> None:
    with pytest.raises(UnsupportedTypeError) as err:
        manager.dump([pd.DataFrame({"a": [1]}), threading.Lock()], producer)
    assert "lock" in str(err.value).lower() and "'make'" in str(err.value)
    # The DataFrame written first was removed: nothing of the failed value is left readable.
    assert manager.store.list_files(manager.store.root) == []


def test_missing_object_is_an_error_naming_uri_and_producer(manager, producer) -> None:
    row = manager.dump(pd.DataFrame({"a": [1, 2]}), producer)
    manager.store.fs.rm(manager.store.fs_path(row["uri"]))
    with pytest.raises(ArtifactNotFoundError) as err:
        manager.load(row)
    assert row["uri"] in str(err.value)
    assert "task 'make'" in str(err.value) and "re-run" in str(err.value)


def test_modified_bytes_are_refused(manager, producer) -> None:
    row = manager.dump(np.arange(100), producer)
    manager.store.fs.pipe_file(manager.store.fs_path(row["uri"]), b"\x93NUMPY garbage")
    with pytest.raises(ArtifactIntegrityError) as err:
        manager.load(row)
    assert row["uri"] in str(err.value) and "task 'make'" in str(err.value)


def test_pickles_are_signed_and_checked(manager, producer) -> None:
    signed = _with(manager, signing_key=b"secret-1")
    row = signed.dump(Opaque(7), producer)
    assert row["format"] == "cloudpickle" and len(row["signature"]) == 64
    assert signed.load(row) == Opaque(7)

    with pytest.raises(PickleNotAllowedError, match="does not match"):
        _with(manager, signing_key=b"another-key").load(row)

    unsigned_row = manager.dump(Opaque(8), producer)
    assert "signature" not in unsigned_row
    with pytest.raises(PickleNotAllowedError, match="not signed"):
        signed.load(unsigned_row)

    forged = dict(row, signature="0" * 64)
    with pytest.raises(PickleNotAllowedError, match="does not match"):
        signed.load(forged)

    with pytest.raises(PickleNotAllowedError, match="allow_pickle is False"):
        _with(manager, allow_pickle=False).load(row)


def test_pickle_disabled_still_stores_data_formats(manager, producer) -> None:
    strict = _with(manager, allow_pickle=False)
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    assert strict.load(strict.dump(frame, producer)).equals(frame)
    with pytest.raises(UnsupportedTypeError, match=r"numpy\.ndarray do not accept"):
        strict.dump(np.array([1, "x"], dtype=object), producer)


@pytest.mark.parametrize(
    "value",
    [
        "s3://bucket/key.parquet",
        "/etc/passwd",
        {"__mlops__": "artifact", "uri": "file:///etc/passwd", "serializer": "cloudpickle"},
        [{"__mlops__": "tuple", "items": [1]}],
        {"__classname__": "builtins.tuple", "__data__": [1]},
    ],
)
def test_values_that_look_like_paths_or_references_come_back_unchanged(manager, producer, value) -> None:
    assert manager.load(manager.dump(value, producer)) == value
    big = {"payload": "x" * 10_000, "value": value}
    row = manager.dump(big, producer)
    assert row["__mlops__"] == "artifact"
    assert manager.load(row) == big


@pytest.mark.parametrize(
    ("dag_id", "run_id", "task_id", "key"),
    [
        ("d", "scheduled__2024-01-01T00:00:00+00:00", "t", "return_value"),
        ("d", "manual run with spaces: and + plus", "group.task", "my key/with slash"),
        ("d" * 250, "r" * 250, "t" * 250, "k" * 512),
        ("..", ".", "t", "../../escape"),
    ],
)
def test_awkward_ids_get_safe_distinct_keys(manager, dag_id, run_id, task_id, key) -> None:
    producer = Producer(dag_id, run_id, task_id, 4321, key, 3)
    row = manager.dump(pd.DataFrame({"a": [1]}), producer)
    relative = row["uri"][len(manager.store.root) :]
    assert len((manager.store._root_fs_path + relative).encode()) <= MAX_KEY_BYTES
    assert "/map_index=4321/" in relative and "/try=3-" in relative
    assert ".." not in relative.split("/") and " " not in relative
    assert manager.load(row)["a"].tolist() == [1]
    manifest = Manifest.from_json(manager.store.get_bytes(row["uri"].rsplit(".", 1)[0] + ".manifest.json"))
    assert manifest.reference.producer == producer  # the original ids, readable without Airflow


def test_similar_ids_do_not_share_folders(manager) -> None:
    a = manager.dump(b"a", Producer("d", "run:1", "t"))
    b = manager.dump(b"b", Producer("d", "run-1", "t"))
    assert a["uri"].split("/run_id=")[1].split("/")[0] != b["uri"].split("/run_id=")[1].split("/")[0]


def test_purge_deletes_the_objects_of_a_row(manager, producer) -> None:
    row = manager.dump({"frame": pd.DataFrame({"a": [1]}), "array": np.ones(3)}, producer)
    # two data objects, each with its manifest and preview (a small table has no chunk digests)
    assert len(manager.store.list_files(manager.store.root)) == 6
    manager.purge(row)
    assert manager.store.list_files(manager.store.root) == []
    manager.purge({"inline": 1})  # nothing stored, nothing to do


def test_a_returned_handle_shares_the_bytes_and_outlives_the_upstream(manager, producer) -> None:
    """A task returning a handle it received (as a cache hit does) gets its own reference: purging
    the upstream's row leaves it readable. On the local store both names are one file on disk."""
    import os

    frame = pd.DataFrame({"a": np.arange(200_000), "b": np.arange(200_000) * 0.5})
    upstream = manager.dump(frame, producer)
    downstream = manager.dump(manager.load_lazy(upstream), dataclasses.replace(producer, task_id="reuse"))
    assert downstream["uri"] != upstream["uri"] and downstream["details"]["copied_from"] == upstream["uri"]
    if manager.store.is_local:
        first, second = (os.stat(manager.store.fs_path(row["uri"])) for row in (upstream, downstream))
        assert (first.st_ino, first.st_dev) == (second.st_ino, second.st_dev) and second.st_nlink == 2
    manager.purge(upstream)
    pd.testing.assert_frame_equal(manager.load(downstream), frame, check_exact=True)
    pd.testing.assert_frame_equal(manager.load_lazy(downstream).load(columns=["b"]), frame[["b"]])


def test_manifest_describes_the_bytes(manager, producer) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    row = manager.dump(frame, producer)
    raw = manager.store.get_bytes(row["uri"].replace(".arrow", ".manifest.json"))
    body = json.loads(raw)
    assert body["format"] == "arrow" and body["format_version"] == 1
    assert body["media_type"] == "application/vnd.apache.arrow.file"
    assert body["size_bytes"] == row["size_bytes"] == len(manager.store.get_bytes(row["uri"]))
    assert body["sha256"] == row["sha256"]
    assert body["producer"]["task_id"] == "make" and body["producer"]["try_number"] == 1
    assert body["details"]["rows"] == 3 and body["details"]["dtypes"]["a"] == "int64"
    assert {"python", "pandas", "pyarrow", "airflow_mlops_provider"} <= set(body["versions"])
    assert body["created_at"].endswith("+00:00")
    reference = Reference.from_row(row)
    assert reference.summary == "DataFrame 3 rows x 2 columns"


def test_inline_threshold_is_configurable(manager, producer, monkeypatch) -> None:
    assert manager.dump({"a": 1}, producer) == {"a": 1}
    monkeypatch.setenv("AIRFLOW__MLOPS__INLINE_THRESHOLD_BYTES", "4")
    small_limit = ArtifactManager()
    row = small_limit.dump({"a": 1}, producer)
    assert row["format"] == "json+zstd"
    assert small_limit.load(row) == {"a": 1}


def test_every_option_change_reaches_the_configured_manager(monkeypatch) -> None:
    """``configured()`` is cached per environment: the variable of every ``[mlops]`` option that
    changes the settings must be part of that key, or a changed option goes unseen."""
    from airflow_mlops_provider.artifacts import config
    from airflow_mlops_provider.get_provider_info import get_provider_info

    options = get_provider_info()["config"]["mlops"]["options"]
    baseline = ArtifactSettings.from_airflow_config()
    changing = []
    for option, spec in options.items():
        value = {
            "aws_conn_id": "other",
            "parquet_compression": "snappy",
            "signing_key": "k",
            "inline_threshold_bytes": "9",
        }.get(option, spec.get("example"))
        with monkeypatch.context() as patch:
            patch.setenv(f"AIRFLOW__MLOPS__{option.upper()}", str(value))
            if ArtifactSettings.from_airflow_config() != baseline:
                changing.append(option)
                assert ArtifactSettings.current() != baseline, option
    assert "table_format" in changing and "artifact_root" in changing
    for option in changing:
        for suffix in ("", "_CMD", "_SECRET"):  # Airflow reads these forms too
            assert f"AIRFLOW__MLOPS__{option.upper()}{suffix}" in config._WATCHED


def test_arrow_compression_level_trades_bytes_for_speed_and_a_wrong_one_fails_clearly(
    manager, producer, monkeypatch
) -> None:
    """Tables are written at zstd's fast level -1 unless ``[mlops] arrow_compression_level`` asks
    for a smaller file; either comes back exactly, and a level zstd does not have is refused with
    the option's name and the levels it takes."""
    assert ArtifactSettings.from_airflow_config().arrow_compression_level == -1
    frame = pd.DataFrame({f"c{i}": np.arange(300_000) % (100 + i) for i in range(4)})  # compressible
    managers = {level: _with(manager, arrow_compression_level=level) for level in (1, 9)} | {-1: manager}
    rows = {level: m.dump(frame, producer) for level, m in managers.items()}
    sizes = {level: Reference.from_row(row).size_bytes for level, row in rows.items()}
    assert sizes[9] < sizes[1] < sizes[-1], sizes
    for level, m in managers.items():
        pd.testing.assert_frame_equal(m.load(rows[level]), frame)
    for bad in ("0", "23", "fast", "-200000"):
        monkeypatch.setenv("AIRFLOW__MLOPS__ARROW_COMPRESSION_LEVEL", bad)
        with pytest.raises(
            ValueError, match=rf"arrow_compression_level = '{bad}' is not a zstd level"
        ) as caught:
            ArtifactSettings.from_airflow_config()
        assert "AIRFLOW__MLOPS__ARROW_COMPRESSION_LEVEL" in str(caught.value)
    monkeypatch.setenv("AIRFLOW__MLOPS__ARROW_COMPRESSION_LEVEL", "3")
    assert ArtifactSettings.from_airflow_config().arrow_compression_level == 3


def test_strings_with_nul_never_go_inline(manager, producer) -> None:
    row = manager.dump("a\x00b", producer)  # PostgreSQL JSONB cannot hold NUL
    assert row["__mlops__"] == "artifact"
    assert manager.load(row) == "a\x00b"


def test_bytes_types_are_kept(manager, producer) -> None:
    assert manager.load(manager.dump(bytearray(b"ab"), producer)) == bytearray(b"ab")
    assert type(manager.load(manager.dump(bytearray(b"ab"), producer))) is bytearray
    assert type(manager.load(manager.dump(b"ab", producer))) is bytes


def test_lazy_handle_reads_columns_and_batches(manager, producer) -> None:
    frame = pd.DataFrame({f"c{i}": np.arange(10_000) * i for i in range(5)})
    ref = manager.load_lazy(manager.dump(frame, producer))
    assert ref.is_table and ref.details["rows"] == 10_000
    assert list(ref.load(columns=["c3"]).columns) == ["c3"]
    assert sum(b.num_rows for b in ref.iter_batches(batch_size=1_000)) == 10_000
    pd.testing.assert_frame_equal(ref.load(), frame)
    with pytest.raises(Exception, match="c9"):
        ref.load(columns=["c9"])


def test_column_reads_use_the_footer_copy_and_explain_failures(manager, producer) -> None:
    manager = ArtifactManager(dataclasses.replace(manager.settings, table_format="parquet"))
    frame = pd.DataFrame({f"c{i}": np.arange(20_000, dtype=np.float64) * i for i in range(4)})
    row = manager.dump(frame, producer)
    store = manager.store
    footer = f"{row['uri'].rsplit('/', 1)[0]}/0.footer.parquet"
    assert store.exists(footer) and set(row["details"]["sidecars"]) == {"footer.parquet"}
    ref = manager.load_lazy(row)
    pd.testing.assert_frame_equal(ref.load(columns=["c2"]), frame[["c2"]])

    store.fs.pipe_file(store.fs_path(footer), b"PAR1 not this file's footer PAR1")
    pd.testing.assert_frame_equal(ref.load(columns=["c3"]), frame[["c3"]])  # ignored: hash differs
    store.fs.rm(store.fs_path(footer))
    assert sum(b.num_rows for b in ref.iter_batches(columns=["c1"])) == 20_000  # not needed

    other = manager.dump(frame, producer)  # same size, other bytes; read through its footer copy
    path = store.fs_path(other["uri"])
    size = len(store.fs.cat_file(path))
    store.fs.pipe_file(path, b"PAR1" + b"\0" * (size - 8) + b"PAR1")
    with pytest.raises(ArtifactIntegrityError) as err:
        manager.load_lazy(other).load(columns=["c1"])
    assert other["uri"] in str(err.value) and "task 'make'" in str(err.value)

    data = store.fs_path(row["uri"])
    original = store.fs.cat_file(data)
    store.fs.pipe_file(data, original[: len(original) // 2])  # truncated
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        ref.load(columns=["c1"])
    store.fs.rm(data)
    for read in (lambda: ref.load(columns=["c1"]), lambda: next(ref.iter_batches())):
        with pytest.raises(ArtifactNotFoundError) as missing:
            read()
        assert row["uri"] in str(missing.value) and "task 'make'" in str(missing.value)


def test_partial_reads_check_each_chunk_they_fetch(manager, producer, monkeypatch) -> None:
    """Arrow IPC tables: a column read fetches only the chunks of that column (plus the chunks of the
    schema and the footer), a streamed read goes batch by batch, and a damaged chunk fails the reads that
    use it while the others still return the right data, never other data."""
    import pyarrow as pa

    from airflow_mlops_provider.artifacts import chunks

    readers: list[chunks.VerifiedReader] = []
    init = chunks.VerifiedReader.__init__

    def spy(self: chunks.VerifiedReader, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        readers.append(self)

    monkeypatch.setattr(chunks.VerifiedReader, "__init__", spy)
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"c{i}": rng.standard_normal(250_000) for i in range(8)})
    row = manager.dump(frame, producer)
    assert row["format"] == "arrow" and row["size_bytes"] > 8 * chunks.CHUNK_BYTES
    assert chunks.SIDECAR in row["details"]["sidecars"]
    ref = manager.load_lazy(row)
    pd.testing.assert_frame_equal(ref.load(columns=["c2"]), frame[["c2"]], check_exact=True)
    fetched, size = readers[-1].fetched_bytes, row["size_bytes"]
    assert fetched <= size / 8 + 4 * chunks.CHUNK_BYTES and fetched < 0.4 * size, (fetched, size)

    table = pa.Table.from_pandas(frame, preserve_index=False)
    stream = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=30_000))
    streamed = manager.load_lazy(manager.dump(stream, producer))
    batches = list(streamed.iter_batches(batch_size=10_000, columns=["c1"]))
    assert len(batches) == 8 * 3 + 1 and all(b.schema.names == ["c1"] for b in batches)
    assert np.array_equal(np.concatenate([b.column(0).to_numpy() for b in batches]), frame["c1"].to_numpy())

    store = manager.store
    path = store.fs_path(row["uri"])
    data = bytearray(store.fs.cat_file(path))
    data[len(data) // 2] ^= 0x01  # one bit, in one column's chunk
    store.fs.pipe_file(path, bytes(data))
    refused = []
    for name in frame.columns:
        try:
            column = ref.load(columns=[name])
        except ArtifactIntegrityError as err:
            assert row["uri"] in str(err) and "chunk" in str(err) and "task 'make'" in str(err), err
            refused.append(name)
        else:
            pd.testing.assert_frame_equal(column, frame[[name]], check_exact=True)
    assert 1 <= len(refused) < 8, refused
    with pytest.raises(ArtifactIntegrityError, match="content hash"):
        ref.load()

    # Digests gone (or damaged): a partial read falls back to the whole object and its sha256.
    store.fs.rm(store.fs_path(Reference.from_row(row).sibling(chunks.SIDECAR)))
    with pytest.raises(ArtifactIntegrityError, match="content hash"):
        ref.load(columns=[refused[0]])


def test_failed_upload_leaves_nothing(manager, producer) -> None:
    from airflow_mlops_provider.artifacts.serializers import Serializer, SerializerRegistry

    class Exploding(Serializer):
        name = "exploding"
        types = (Opaque,)
        format = "boom"

        def write(self, value, sink, settings):
            sink.write(b"x" * (6 * 1024 * 1024))  # past S3's multipart threshold: a real upload began
            raise RuntimeError("worker killed mid-upload")

        def read(self, data, reference, settings):
            raise AssertionError("never readable")

    registry = SerializerRegistry()
    registry.register(Exploding)
    exploding = ArtifactManager(manager.settings, serializers=registry)
    with pytest.raises(UnsupportedTypeError, match="worker killed mid-upload"):
        exploding.dump(Opaque(1), producer)
    assert exploding.store.list_files(exploding.store.root) == []


def test_uri_outside_the_root_is_refused(manager, producer) -> None:
    row = manager.dump(pd.DataFrame({"a": [1]}), producer)
    outside = dict(row, uri=row["uri"].replace("/dag_id=", "/../../dag_id="))
    with pytest.raises(Exception, match="outside the configured artifact root"):
        manager.load(outside)
    with pytest.raises(Exception, match="outside the configured artifact root"):
        manager.load(dict(row, uri="file:///etc/passwd"))


def test_previews_are_computed_at_write_time_and_bounded(manager, producer) -> None:
    from PIL import Image

    frame = pd.DataFrame(
        {"x": np.arange(1_000, dtype="float64"), "html": ["<script>alert(1)</script>"] * 1_000},
        index=pd.RangeIndex(1_000, name="row"),
    )
    frame["cat"] = pd.Categorical(["a", "b"] * 500)
    reference = Reference.from_row(manager.dump(frame, producer))
    preview = json.loads(manager.store.get_bytes(reference.preview_uri))
    assert preview["kind"] == "table" and preview["rows"] == 1_000 and len(preview["head"]) == 50
    assert preview["index"] == ["row"] and preview["head"][0] == [0, 0.0, "<script>alert(1)</script>", "a"]
    assert preview["stats"]["x"] == {
        "dtype": "float64",
        "nulls": 0,
        "min": 0.0,
        "max": 999.0,
        "mean": 499.5,
        "std": pytest.approx(288.675, rel=1e-4),
        "histogram": {"edges": pytest.approx([99.9 * i for i in range(11)]), "counts": [100] * 10},
    }
    assert preview["stats"]["cat"]["top"] == [["a", 500], ["b", 500]]

    wide = pd.DataFrame({f"c{i}": [1] for i in range(150)})
    wide_preview = json.loads(
        manager.store.get_bytes(Reference.from_row(manager.dump(wide, producer)).preview_uri)
    )
    assert len(wide_preview["schema"]) == 100 and wide_preview["truncated_columns"] is True

    image = Reference.from_row(manager.dump(Image.new("RGB", (1024, 512)), producer))
    thumb = json.loads(manager.store.get_bytes(image.preview_uri))
    assert thumb["kind"] == "image" and (thumb["width"], thumb["height"]) == (1024, 512)
    import base64
    import io

    assert Image.open(io.BytesIO(base64.b64decode(thumb["thumbnail_png_base64"]))).size == (256, 128)

    model = Reference.from_row(manager.dump(Opaque(3), producer))
    shown = json.loads(manager.store.get_bytes(model.preview_uri))
    assert shown["kind"] == "object" and shown["class"].endswith("Opaque")  # from the manifest, not unpickled

    array = Reference.from_row(manager.dump(np.arange(12).reshape(3, 4), producer))
    assert json.loads(manager.store.get_bytes(array.preview_uri))["stats"]["max"] == 11.0


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(0, 600_000), st.integers(0, 2**32)), max_size=8),
    handed=st.sampled_from(["bytes", "reused buffer", "reused Arrow buffer", "Arrow buffer"]),
)
@example(sizes=[(600_000, 1), (600_000, 2), (600_000, 3)], handed="reused buffer")  # past the first MiB
@example(sizes=[(600_000, 1), (600_000, 2), (600_000, 3)], handed="reused Arrow buffer")
def test_a_writes_hashes_are_those_of_its_bytes(sizes: list[tuple[int, int]], handed: str) -> None:
    """Past the first MiB the hashes run in threads of their own: they must still cover exactly the
    bytes written, in order, even when the writer reuses its buffer as soon as write() returns (a
    memoryview, or a mutable Arrow buffer over it). Immutable Arrow buffers (what Arrow IPC hands
    over) are hashed without a copy."""
    import hashlib
    import io
    import random
    import time

    import blake3
    import pyarrow as pa

    from airflow_mlops_provider.artifacts.chunks import ChunkDigests, parse_sidecar
    from airflow_mlops_provider.artifacts.store import HashingWriter

    class SlowDigests(ChunkDigests):  # its pass lags behind the writer, as under load
        def update(self, view: memoryview) -> None:
            time.sleep(0.002)
            super().update(view)

    sink, digests = io.BytesIO(), SlowDigests(chunk_bytes=1 << 18)
    writer = HashingWriter(sink, digests)
    pieces = [random.Random(seed).randbytes(size) for size, seed in sizes]
    buffer = bytearray(600_000)
    for piece in pieces:
        if handed.startswith("reused"):
            buffer[: len(piece)] = piece
            view = memoryview(buffer)[: len(piece)]
            writer.write(pa.py_buffer(view) if "Arrow" in handed else view)
            buffer[: len(piece)] = b"\xff" * len(piece)  # what a writer reusing its buffer does next
        else:
            writer.write(pa.py_buffer(piece) if "Arrow" in handed else piece)
    data = b"".join(pieces)
    writer.finish()
    assert sink.getvalue() == data
    algorithm, _, chunk_digests = parse_sidecar(digests.sidecar(), len(data))
    expected = [blake3.blake3(data[i : i + (1 << 18)]).digest() for i in range(0, len(data), 1 << 18)]
    assert algorithm == "blake3" and chunk_digests == expected
    # The content hash: the bytes' own sha256 up to one chunk, past it the sha256 of the digests.
    if len(data) <= 1 << 18:
        assert writer.sha256 == hashlib.sha256(data).hexdigest() and not digests.chunked
    else:
        assert writer.sha256 == hashlib.sha256(b"blake3 262144\n" + b"".join(expected)).hexdigest()
    plain = HashingWriter(io.BytesIO())
    for piece in pieces:
        plain.write(piece)
    assert plain.sha256 == hashlib.sha256(data).hexdigest()


def test_a_large_tables_hash_is_over_its_chunks_and_all_readers_check_it(manager, producer, tmp_path) -> None:
    """A table of more than one chunk is hashed once, per chunk: its reference's sha256 is the hash of
    the chunk digests, which a whole read, the CLI's save and a cache hit recompute from the bytes. A
    small table keeps the plain sha256 of its bytes. References written before (sha256 of the bytes,
    no ``chunk_bytes``) still load, and a reader that predates chunk hashes is told to upgrade."""
    import hashlib

    from airflow_mlops_provider import caching
    from airflow_mlops_provider.artifacts import chunks
    from airflow_mlops_provider.cli.artifacts_command import download

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({f"c{i}": rng.standard_normal(100_000) for i in range(4)})
    row = manager.dump(frame, producer)
    store, path = manager.store, manager.store.fs_path(row["uri"])
    data = store.fs.cat_file(path)
    reference = Reference.from_row(row)
    sidecar = store.get_bytes(reference.sibling(chunks.SIDECAR))
    assert row["v"] == 2 and row["chunk_bytes"] == chunks.CHUNK_BYTES == reference.chunk_bytes
    assert row["sha256"] == hashlib.sha256(sidecar).hexdigest() != hashlib.sha256(data).hexdigest()
    assert row["details"]["sidecars"][chunks.SIDECAR] == row["sha256"]
    assert chunks.content_sha256(data, chunks.CHUNK_BYTES)() == row["sha256"]
    assert "chunks' BLAKE3 digests" in reference.hash_description
    pd.testing.assert_frame_equal(manager.load(row), frame, check_exact=True)
    download(manager, reference, tmp_path / "saved.arrow", progress=False)
    assert (tmp_path / "saved.arrow").read_bytes() == data
    assert caching._problem(manager, row) is None

    small = manager.dump(frame.head(100), producer)
    small_data = store.fs.cat_file(store.fs_path(small["uri"]))
    assert small["v"] == 1 and "chunk_bytes" not in small
    assert small["sha256"] == hashlib.sha256(small_data).hexdigest()

    # A reference written before chunk hashes: the sha256 of the bytes, version 1, and a sidecar of
    # SHA-256 chunk digests whose first line is the chunk size alone. Whole and column reads work.
    legacy = chunks.ChunkDigests(algorithm=chunks.SHA256)
    legacy.update(memoryview(data))
    assert legacy.sidecar().startswith(b"%d\n" % chunks.CHUNK_BYTES)
    store.put_bytes(reference.sibling(chunks.SIDECAR), legacy.sidecar())
    old = {**row, "v": 1, "sha256": hashlib.sha256(data).hexdigest()}
    legacy_hash = hashlib.sha256(legacy.sidecar()).hexdigest()
    old["details"] = {**row["details"], "sidecars": {chunks.SIDECAR: legacy_hash}}
    del old["chunk_bytes"]
    pd.testing.assert_frame_equal(manager.load(old), frame, check_exact=True)
    column = manager.load_lazy(old).load(columns=["c1"])
    pd.testing.assert_frame_equal(column, frame[["c1"]], check_exact=True)
    assert caching._problem(manager, old) is None
    # A reader that predates chunk hashes refuses version 2 rows; this one refuses newer ones.
    with pytest.raises(ValueError, match="newer airflow-mlops-provider"):
        Reference.from_row({**row, "v": 3})
    for forged in (0, -1, 1 << 40, 17):
        with pytest.raises(ValueError, match="chunk size"):
            Reference.from_row({**row, "chunk_bytes": forged})

    # One bit changed: every reader refuses it, each saying what the hash is of.
    damaged = bytearray(data)
    damaged[2 * len(damaged) // 3] ^= 0x04  # a chunk of column data, not the batch's metadata
    store.fs.pipe_file(path, bytes(damaged))
    with pytest.raises(ArtifactIntegrityError, match="chunks' BLAKE3 digests"):
        manager.load(row)
    with pytest.raises(ArtifactIntegrityError, match="chunks' BLAKE3 digests"):
        download(manager, reference, tmp_path / "damaged.arrow", progress=False)
    assert not (tmp_path / "damaged.arrow").exists()
    assert "no longer matches its content hash" in (caching._problem(manager, row) or "")
    with pytest.raises(ArtifactIntegrityError):
        manager.load(old)
    refused = 0
    for name in frame.columns:  # the old sidecar's SHA-256 digests catch the changed chunk too
        try:
            column = manager.load_lazy(old).load(columns=[name])
        except ArtifactIntegrityError as err:
            assert "chunk" in str(err), err
            refused += 1
        else:
            pd.testing.assert_frame_equal(column, frame[[name]], check_exact=True)
    assert 1 <= refused < len(frame.columns)


def test_loaded_values_are_not_kept_alive(manager, producer) -> None:
    """Which artifact a value came from is remembered while the value lives (cached tasks key their
    inputs by it), and no longer: a notebook loading frame after frame does not keep them all."""
    import gc
    import weakref

    from airflow_mlops_provider.artifacts import lineage

    row = manager.dump(pd.DataFrame({"a": np.arange(50_000)}), producer)
    value = manager.load(row)
    assert lineage.loaded_from(value) == Reference.from_row(row)
    assert lineage.loaded_from(value.copy()) is None
    alive = weakref.ref(value)
    del value
    gc.collect()
    assert alive() is None
    held = [entry for entry, _ in lineage._loaded.values() if isinstance(entry, weakref.ref)]
    assert all(entry() is not None for entry in held)


def test_large_objects_of_every_kind_are_hashed_per_chunk(manager, producer) -> None:
    """An array (or a model, or any object) above one chunk gets the same one-pass content hash as a
    table, without the sidecar only partial reads need; a whole read recomputes it and refuses a
    changed byte. One chunk or less keeps the sha256 of its bytes."""
    import hashlib

    from airflow_mlops_provider.artifacts import chunks

    array = np.random.default_rng(5).standard_normal(300_000)
    row = manager.dump(array, producer)
    store, path = manager.store, manager.store.fs_path(row["uri"])
    data = store.fs.cat_file(path)
    assert row["format"] == "npy" and row["chunk_bytes"] == chunks.CHUNK_BYTES and row["v"] == 2
    assert (
        row["sha256"] == chunks.content_sha256(data, chunks.CHUNK_BYTES)() != hashlib.sha256(data).hexdigest()
    )
    assert chunks.SIDECAR not in (row["details"].get("sidecars") or {})
    assert np.array_equal(manager.load(row), array)
    small = manager.dump(array[:1000], producer)
    assert "chunk_bytes" not in small
    assert small["sha256"] == hashlib.sha256(store.fs.cat_file(store.fs_path(small["uri"]))).hexdigest()
    damaged = bytearray(data)
    damaged[-5] ^= 0x10
    store.fs.pipe_file(path, bytes(damaged))
    with pytest.raises(ArtifactIntegrityError, match="BLAKE3 digests"):
        manager.load(row)
