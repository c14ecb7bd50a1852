"""An unreachable or misconfigured store fails clearly: the root URL and the connection are named."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import set_unreachable_s3_connection

from airflow_mlops_provider import ArtifactStoreError
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer

PRODUCER = Producer("dag_x", "run_1", "extract", -1, "return_value", 1)


def test_unreachable_s3_endpoint(monkeypatch) -> None:
    set_unreachable_s3_connection(monkeypatch, "broken_s3")
    manager = ArtifactManager(ArtifactSettings("s3://nowhere/prefix", conn_id="broken_s3"))
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(pd.DataFrame({"a": [1]}), PRODUCER)
    assert "s3://nowhere/prefix" in str(err.value) and "'broken_s3'" in str(err.value)


def test_missing_bucket(s3_server, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", s3_server.connection_uri())
    manager = ArtifactManager(ArtifactSettings("s3://no-such-bucket/prefix", conn_id="aws_default"))
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(pd.DataFrame({"a": [1]}), PRODUCER)
    assert "s3://no-such-bucket/prefix" in str(err.value)


def test_unwritable_local_folder(tmp_path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    manager = ArtifactManager(ArtifactSettings((blocker / "artifacts").as_uri()))
    with pytest.raises(ArtifactStoreError) as err:
        manager.dump(pd.DataFrame({"a": [1]}), PRODUCER)
    assert str(blocker) in str(err.value)
