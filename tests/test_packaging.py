"""The provider is visible to Airflow the way users check it: CLI commands in a fresh process."""

from __future__ import annotations

import os
import subprocess

from conftest import BIN


def _airflow(*args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "airflow"), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_providers_list_shows_the_provider() -> None:
    assert "airflow-mlops-provider" in _airflow("providers", "list")


def test_config_list_documents_the_mlops_options() -> None:
    out = _airflow("config", "list", "--section", "mlops", "--include-descriptions")
    for option in ("artifact_root", "aws_conn_id", "inline_threshold_bytes", "allow_pickle", "signing_key"):
        assert f"{option} =" in out
    assert "HMAC" in out  # descriptions come from get_provider_info()


def test_plugin_is_registered_through_its_entry_point() -> None:
    out = _airflow("plugins", "--output", "json")
    assert '"mlops"' in out and "airflow_mlops_provider.listeners" in out
