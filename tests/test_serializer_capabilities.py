"""What a serializer can offer beyond ``write``/``read``: partial table reads, read-back previews, and
declining a value. Handles and faces ask the serializer; none of them knows a format."""

from __future__ import annotations

import dataclasses
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider import ArtifactError, ArtifactIntegrityError, SerializerDeclined, TableSerializer
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Reference
from airflow_mlops_provider.artifacts.serializers import SerializerRegistry

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa

    from airflow_mlops_provider.artifacts.serializers import StoredObject


class Sheet:
    """A user's table type, stored as CSV by the serializer below."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame


class SheetSerializer(TableSerializer):
    name = "test.sheet"
    types = (Sheet,)
    format = "csv"
    extension = ".csv"

    def write(self, value: Any, sink: Any, settings: Any) -> dict[str, Any]:
        if value.frame.empty:
            raise SerializerDeclined("an empty sheet has no columns to write")
        sink.write(value.frame.to_csv(index=False).encode())
        return {"rows": len(value.frame)}

    def read(self, data: memoryview, reference: Reference, settings: Any) -> Any:
        return Sheet(pd.read_csv(io.BytesIO(data)))

    def read_columns(self, stored: StoredObject, columns: Sequence[str]) -> Any:
        with stored.open() as raw:
            return Sheet(pd.read_csv(raw, usecols=list(columns)))

    def iter_batches(
        self, stored: StoredObject, batch_size: int, columns: Sequence[str] | None
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        with stored.open() as raw:
            for chunk in pd.read_csv(raw, usecols=columns, chunksize=batch_size):
                yield pa.RecordBatch.from_pandas(chunk, preserve_index=False)


@pytest.fixture
def sheets(store: str) -> ArtifactManager:
    """A manager whose registry also holds the user's table serializer."""
    registry = SerializerRegistry()
    registry.register(SheetSerializer)
    return ArtifactManager(serializers=registry)


def test_a_user_table_serializer_serves_column_reads_and_batches(sheets, producer) -> None:
    frame = pd.DataFrame({"a": range(1000), "b": np.arange(1000) * 2.0, "c": ["x"] * 1000})
    ref = sheets.load_lazy(sheets.dump(Sheet(frame), producer))
    assert ref.is_table
    pd.testing.assert_frame_equal(ref.load(columns=["b"]).frame, frame[["b"]])
    batches = list(ref.iter_batches(batch_size=300, columns=["a"]))
    assert [b.num_rows for b in batches] == [300, 300, 300, 100]
    assert [v for b in batches for v in b.column("a").to_pylist()] == list(range(1000))
    assert {tuple(b.schema.names) for b in batches} == {("a",)}

    # Its partial reads are checked like the built-in ones: a truncated object is refused.
    path = sheets.store.fs_path(ref.uri)
    sheets.store.fs.pipe_file(path, sheets.store.fs.cat_file(path)[:100])
    with pytest.raises(ArtifactIntegrityError, match="does not match the size recorded") as err:
        ref.load(columns=["a"])
    assert ref.uri in str(err.value) and "task 'make'" in str(err.value)


def test_column_reads_need_a_table_serializer(manager, producer) -> None:
    ref = manager.load_lazy(manager.dump(np.arange(10_000), producer))
    assert not ref.is_table
    with pytest.raises(ArtifactError, match=r"load\(columns=...\)\(\) needs a table artifact"):
        ref.load(columns=["a"])
    with pytest.raises(ArtifactError, match="needs a table artifact"):
        next(ref.iter_batches())


def test_a_declining_serializer_hands_the_value_on(sheets, producer) -> None:
    """``SerializerDeclined`` (public) passes the value to the next candidate: here the pickle fallback."""
    row = sheets.dump(Sheet(pd.DataFrame()), producer)
    assert row["serializer"] == "cloudpickle"
    assert sheets.load(row).frame.empty


def test_tables_written_before_the_footer_copy_stay_readable(manager, producer) -> None:
    """Parquet artifacts without a recorded footer copy or chunk digests (written by earlier versions)
    are read through their own footer, size-checked and page-checksummed."""
    parquet = ArtifactManager(dataclasses.replace(manager.settings, table_format="parquet"))
    frame = pd.DataFrame({"a": np.arange(200_000), "b": np.random.default_rng(3).standard_normal(200_000)})
    row = parquet.dump(frame, producer)
    assert row["format"] == "parquet" and row["size_bytes"] > 1 << 20
    old = {**row, "details": {k: v for k, v in row["details"].items() if k != "sidecars"}}
    ref = manager.load_lazy(old)
    pd.testing.assert_frame_equal(ref.load(columns=["b"]), frame[["b"]])
    assert sum(b.num_rows for b in ref.iter_batches(columns=["a"])) == 200_000

    path = manager.store.fs_path(row["uri"])
    manager.store.fs.pipe_file(path, manager.store.fs.cat_file(path) + b"\0")  # one byte more
    with pytest.raises(ArtifactIntegrityError, match="does not match the size recorded"):
        ref.load(columns=["a"])


def test_the_preview_is_the_stored_one_or_read_back_by_the_serializer(manager, producer) -> None:
    """Never from a serializer that unpickles: an object without a stored preview has none."""
    import pyarrow as pa

    table = pa.table({"v": list(range(10))})
    streamed = Reference.from_row(
        manager.dump(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), producer)
    )
    preview = manager.preview(streamed)
    assert preview is not None and preview["rows"] == 10 and preview["stats"] == {}  # read back

    stored = Reference.from_row(manager.dump(table, producer))
    assert manager.preview(stored)["stats"]["v"]["max"] == 9  # the one written with the table

    pickled = Reference.from_row(manager.dump(Sheet(pd.DataFrame({"a": [1]})), producer))
    assert pickled.serializer == "cloudpickle"
    manager.store.fs.rm(manager.store.fs_path(pickled.preview_uri))
    assert manager.preview(pickled) is None


def test_streams_whose_batches_bring_their_own_dictionaries_round_trip(manager, producer) -> None:
    """An Arrow IPC file holds one dictionary per column; a stream may send a new one with every
    batch. Each batch is re-encoded against the dictionary so far (written as deltas), so every value
    comes back; a dictionary inside a nested column cannot be grown that way, and such a stream is
    written as Parquet instead."""
    import pyarrow as pa

    batches = [
        pa.record_batch({"city": pa.array(names).dictionary_encode(), "n": list(range(len(names)))})
        for names in (["oslo", "rome"], ["lima", "oslo", None], ["rome"], ["kyiv", "lima"])
    ]
    stream = pa.RecordBatchReader.from_batches(batches[0].schema, batches)
    row = manager.dump(stream, producer)
    assert row["format"] == "arrow"
    back = manager.load(row)
    assert back.column("city").to_pylist() == ["oslo", "rome", "lima", "oslo", None, "rome", "kyiv", "lima"]
    streamed = [b.column(0).to_pylist() for b in manager.load_lazy(row).iter_batches(columns=["city"])]
    assert streamed == [["oslo", "rome"], ["lima", "oslo", None], ["rome"], ["kyiv", "lima"]]

    nested_type = pa.list_(pa.dictionary(pa.int32(), pa.string()))
    nested = [pa.record_batch({"tags": pa.array([["a"], ["b", "a"]], nested_type)})]
    row = manager.dump(pa.RecordBatchReader.from_batches(nested[0].schema, nested), producer)
    assert row["format"] == "parquet"
    assert manager.load(row).column("tags").to_pylist() == [["a"], ["b", "a"]]
