"""A task walking the outputs of a mapped upstream on an object store reads ahead: several artifacts
are fetched at once instead of one request after the other, and every value is still exact and
verified against its hash."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from airflow_runner import run_dag

from airflow_mlops_provider import ArtifactIntegrityError, ArtifactNotFoundError

if TYPE_CHECKING:
    from conftest import S3Server

    from airflow_mlops_provider.artifacts.manager import ArtifactManager

DAG = "mlops_read_ahead"


@pytest.fixture
def relay(s3_server: S3Server, store: str, monkeypatch: pytest.MonkeyPatch):
    """The S3 test server behind a relay that delays each request by 50 ms, as a far store does."""
    from relay import Relay

    with Relay(s3_server.port, latency=0.05) as relay:
        connection = json.loads(s3_server.connection_uri())
        connection["extra"]["endpoint_url"] = relay.url
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
        yield relay


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_a_reduce_fetches_the_next_outputs_while_it_reads_one(relay) -> None:
    result = run_dag(DAG)
    assert set(result.task_states.values()) == {"success"}, result.task_states
    assert result.row("reduce") == 24 and result.row("pick") == 7  # every frame compared exactly
    # Each task writes its objects one after the other, and without reading ahead the reduce
    # reads one artifact at a time: several requests at once come from reading ahead.
    assert relay.peak_busy >= 4, relay.peak_busy


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_prefetched_bytes_are_checked_when_used(manager: ArtifactManager, producer, s3_server) -> None:
    frames = {i: pd.DataFrame({"i": range(i, i + 100)}) for i in range(3)}
    rows = {i: manager.dump(f, dataclasses.replace(producer, map_index=i)) for i, f in frames.items()}
    store = manager.store
    damaged, deleted = store.fs_path(rows[1]["uri"]), store.fs_path(rows[2]["uri"])
    data = bytearray(store.fs.cat_file(damaged))
    data[len(data) // 2] ^= 0x01
    store.fs.pipe_file(damaged, bytes(data))
    store.fs.rm_file(deleted)
    assert manager.prefetch(list(rows.values())) == 3
    pd.testing.assert_frame_equal(manager.load(rows[0]), frames[0], check_exact=True)
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        manager.load(rows[1])
    with pytest.raises(ArtifactNotFoundError, match="task 'make'"):
        manager.load(rows[2])
