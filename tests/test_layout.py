"""The store layout both ways: every path the provider builds parses back into what it is.

gc deletes by what :func:`layout.parse` says a path is, so a path that parsed differently from how
it was built would either leak (never collected) or, worse, be collected as something else.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.artifacts.layout import (
    Area,
    FolderObject,
    ObjectKind,
    RunHistoryPath,
    SharedObject,
    SnapshotPath,
    SnapshotRunPath,
    Unknown,
    WriteFolder,
    safe_component,
)
from airflow_mlops_provider.artifacts.manifest import Producer
from airflow_mlops_provider.artifacts.store import ArtifactStore
from airflow_mlops_provider.exceptions import ArtifactNotFoundError

if TYPE_CHECKING:
    from pathlib import Path

# Any text: slashes, dots, "..", "", unicode, "=", "~" and ids too long for one segment.
ids = st.text(max_size=300) | st.sampled_from(["", ".", "..", "a/b", "dag_id=x", "run~1", "é" * 200])
sha256s = st.binary().map(lambda data: hashlib.sha256(data).hexdigest())
extensions = st.sampled_from(
    ["", ".parquet", ".arrow", ".chunks.sha256", ".npy", ".json.zst", ".pkl", ".png", ".bin"]
)
SUFFIX_KINDS = {
    ".parquet": ObjectKind.DATA,
    ".json.zst": ObjectKind.DATA,
    ".manifest.json": ObjectKind.MANIFEST,
    ".preview.json": ObjectKind.PREVIEW,
    ".footer.parquet": ObjectKind.FOOTER,
    ".npy.tmp-0a1b2c3d": ObjectKind.TEMPORARY,
}


@st.composite
def write_folders(draw: st.DrawFn) -> WriteFolder:
    producer = Producer(
        dag_id=draw(ids),
        run_id=draw(ids),
        task_id=draw(ids),
        map_index=draw(st.integers(-1, 10**6)),
        key=draw(ids),
        try_number=draw(st.integers(0, 10**4)),
    )
    return WriteFolder.of(producer, draw(st.text("0123456789abcdef", min_size=1, max_size=32)))


@given(write_folders(), st.integers(0, 10**4), st.sampled_from(sorted(SUFFIX_KINDS)))
def test_objects_of_a_write_folder_parse_back(folder: WriteFolder, index: int, suffix: str) -> None:
    built = FolderObject(folder, index, suffix)
    parsed = layout.parse(built.relative)
    assert parsed == built
    assert parsed.kind is SUFFIX_KINDS[suffix]
    assert parsed.linked_sha256 is None


@given(write_folders(), st.integers(0, 10**4), extensions, sha256s)
def test_siblings_and_links_sit_beside_their_data_object(
    folder: WriteFolder, index: int, extension: str, sha256: str
) -> None:
    data = FolderObject(folder, index, extension).relative
    for suffix, kind in ((layout.MANIFEST, ObjectKind.MANIFEST), (layout.PREVIEW, ObjectKind.PREVIEW)):
        sibling = layout.parse(layout.sibling(data, suffix))
        assert (sibling.folder, sibling.index, sibling.kind) == (folder, index, kind)
    link = layout.parse(layout.link(data, sha256))
    assert (link.folder, link.index, link.kind) == (folder, index, ObjectKind.LINK)
    assert link.linked_sha256 == sha256


@given(write_folders(), st.sampled_from(["s3://bucket/prefix", "file:///mnt/artifacts/", "gs://b"]))
def test_a_uri_names_its_write_folder_under_any_root(folder: WriteFolder, root: str) -> None:
    """XCom rows written with the root spelled differently still protect their folders from gc."""
    assert layout.write_folder_of(f"{root.rstrip('/')}/{folder.relative}/0.parquet") == folder
    assert layout.write_folder_of(f"{root}/elsewhere/0.parquet") is None


@given(ids, ids, ids, sha256s, extensions)
def test_shared_snapshot_and_history_paths_parse_back(
    dag_id: str, run_id: str, snapshot_id: str, sha256: str, extension: str
) -> None:
    for built in (
        SharedObject(sha256, extension),
        SnapshotPath.of(dag_id, snapshot_id),
        SnapshotRunPath.of(dag_id, run_id),
        RunHistoryPath.of(dag_id, run_id),
    ):
        assert layout.parse(built.relative) == built


@given(ids)
def test_ids_become_one_segment_kept_as_is_when_safe(value: str) -> None:
    segment = safe_component(value)
    assert "/" not in segment and segment not in ("", ".", "..") and len(segment) <= 120
    is_safe = re.fullmatch(r"[A-Za-z0-9_.\-]{1,120}", value) is not None and value not in (".", "..")
    assert (segment == value) == is_safe
    producer = Producer(value, value, value, key=value)
    folder = layout.parse(f"{WriteFolder.of(producer, 'ab').relative}/0.npy").folder
    assert folder.dag_id == folder.run_id == folder.task_id == folder.key == segment


@given(ids, ids)
def test_different_ids_never_share_a_segment(a: str, b: str) -> None:
    assert (safe_component(a) == safe_component(b)) == (a == b)


def test_what_the_provider_does_not_write_is_unknown() -> None:
    folder = WriteFolder("d", "r", "t", -1, "return_value", 1, "0123456789ab")
    assert layout.parse(f"{folder.relative}/notes.txt") == Unknown(
        f"{folder.relative}/notes.txt", Area.WRITE_FOLDERS, folder
    )
    assert layout.parse(f"{folder.relative}/sub/0.bin").folder == folder
    assert layout.parse("notes/readme.txt") == Unknown("notes/readme.txt", Area.OTHER)
    assert layout.parse("dag_id=x/run_id=y/0.bin").area is Area.OTHER  # not a whole write folder
    sha = "ab" + "0" * 62
    assert layout.parse(f"_cas/sha256/ab/{sha}.npy.tmp-1234").area is Area.SHARED
    assert isinstance(layout.parse(f"_cas/sha256/cd/{sha}.npy"), Unknown)  # wrong fan-out folder
    assert layout.parse("_snapshots/dag_id=x/abc.json.tmp-1234").area is Area.SNAPSHOTS
    assert layout.parse("_runs/dag_id=x/notes.txt").area is Area.RUN_HISTORY


# -- the store's listing ---------------------------------------------------------------------------


def test_walk_lists_objects_below_a_prefix_freshly(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path.as_uri())
    store.put_bytes(store.url("a/one.bin"), b"1")
    store.put_bytes(store.url("a/b/two.bin"), b"22")
    store.put_bytes(store.url("c/three.bin"), b"333")
    listed = {o.relative: o.size for o in store.walk()}
    assert listed == {"a/one.bin": 1, "a/b/two.bin": 2, "c/three.bin": 3}
    assert {o.relative for o in store.walk("a")} == {"a/one.bin", "a/b/two.bin"}
    assert list(store.walk("missing")) == []
    age = time.time() - next(iter(store.walk("c"))).modified.timestamp()
    assert 0 <= age < 60

    os.remove(tmp_path / "a" / "one.bin")  # another process deletes an object
    assert {o.relative for o in store.walk()} == {"a/b/two.bin", "c/three.bin"}
    assert store.info(store.url("a/b/two.bin")).size == 2
    with pytest.raises(ArtifactNotFoundError):
        store.info(store.url("a/one.bin"))


def test_delete_dir_prunes_only_the_folders_it_empties(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path.as_uri())
    store.put_bytes(store.url("x/y/z/0.bin"), b"0")
    store.put_bytes(store.url("x/keep.bin"), b"k")
    store.delete_dir(store.url("x/y/z"), prune_parents=True)
    assert not (tmp_path / "x" / "y").exists()
    assert (tmp_path / "x" / "keep.bin").exists() and tmp_path.exists()
