"""What ``airflow mlops`` commands write where: pure JSON on stdout, files only inside ``-o DIR``.

``--output json`` is meant for ``| jq`` and scripts, so stdout holds the JSON and nothing else:
Airflow's loggers (the amazon provider logs at INFO when a hook reads its connection) go to stderr.
The real ``airflow`` entry point runs in subprocesses, with the console log level at INFO.

``artifacts get -o DIR`` names the file after the object's URI, which comes from the store (an XCom
row or a manifest anyone who can write there may forge): a name that is not a plain file name must
never write outside ``DIR``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest
from airflow_runner import run_dag, set_raw_xcom
from conftest import requires_provider_cli
from test_cli import airflow, assert_clean_error, cli

if TYPE_CHECKING:
    from pathlib import Path

DAG = "mlops_cli_pipeline"
# The amazon provider's INFO line when an S3 hook reads its connection (it used to land on stdout).
AWS_LOG = "credentials retrieved"

pytestmark = requires_provider_cli


def _info_env() -> dict[str, str]:
    return {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}


def _json(proc: Any) -> Any:
    """The command's stdout as JSON: the whole of it, with exit code 0."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"stdout is not pure JSON:\n{proc.stdout[:1500]}")


def test_json_output_is_pure_json_on_stdout(store: str) -> None:
    result = run_dag(DAG)
    run = result.run_id
    uri = {task: result.row(task)["uri"] for task in ("extract", "features", "train")}
    env = _info_env()
    on_s3 = store.startswith("s3://")

    proc = airflow("mlops", "artifacts", "list", DAG, "--run", run, "--output", "json", env=env)
    items = {(i["task_id"], i["key"], i["path"]): i for i in _json(proc)}
    assert items[("features", "return_value", "")]["uri"] == uri["features"]
    assert items[("features", "return_value", "")]["status"] == "ok"
    assert items[("summary", "return_value", "")]["value"] == {"status": "ok", "rows": 120}
    if on_s3:  # the log line the provider wrote is still there, on stderr
        assert AWS_LOG in proc.stderr, proc.stderr[-3000:]
        assert AWS_LOG not in proc.stdout

    proc = airflow("mlops", "artifacts", "show", DAG, run, "features", "--output", "json", env=env)
    shown = _json(proc)
    assert shown["xcom"]["task_id"] == "features" and shown["xcom"]["key"] == "return_value"
    [artifact] = shown["artifacts"]
    assert artifact["manifest"]["uri"] == uri["features"] and artifact["manifest"]["sha256"]
    assert artifact["preview"]["kind"] == "table" and artifact["preview"]["rows"] == 120

    proc = airflow("mlops", "artifacts", "show", uri["train"], "--output", "json", env=env)
    shown = _json(proc)
    assert shown["manifest"]["uri"] == uri["train"] and shown["preview"]["kind"] == "object"

    proc = airflow("mlops", "lineage", DAG, run, "train", "--output", "json", env=env)
    tree = _json(proc)
    assert tree["uri"] == uri["train"] and tree["status"] == "ok"
    assert tree["inputs"][0]["uri"] == uri["features"]
    assert tree["inputs"][0]["inputs"][0]["uri"] == uri["extract"]

    proc = airflow("mlops", "checks", DAG, "--output", "json", env=env)
    assert _json(proc) == []  # the pipeline has no checks

    if on_s3:  # the human-readable output is free of log lines too
        proc = airflow("mlops", "artifacts", "list", DAG, "--run", run, "--task", "train", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.startswith("RUN_ID") and AWS_LOG not in proc.stdout
        assert AWS_LOG in proc.stderr


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_show_json_exit_codes(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``show --output json`` exits 0 when it shows the artifact, 4 when its object was altered."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    result = run_dag(DAG)
    run = result.run_id
    for task in ("extract", "train", "weights", "blob", "chart", "history", "summary", "shards"):
        code, out, err = cli(capsys, "mlops", "artifacts", "show", DAG, run, task, "--output", "json")
        assert code == 0, (task, err)
        assert json.loads(out)["xcom"]["task_id"] == task

    weights = result.row("weights")["uri"]
    ArtifactManager().store.put_bytes(weights, b"truncated")
    proc = airflow("mlops", "artifacts", "show", weights, "--output", "json", env=_info_env())
    assert_clean_error(proc, 4, weights, "does not match the size recorded")
    assert not proc.stdout


# -- get -o DIR: file names from the store ------------------------------------------------------------


def _forge_row(run_id: str, task_id: str, key: str, row: dict[str, Any]) -> None:
    """Write an XCom row straight to the metadata DB, as anyone with access to it could."""

    set_raw_xcom(key, row, dag_id=DAG, task_id=task_id, run_id=run_id)


def _files(*folders: Path) -> set[Path]:
    return {path for folder in folders for path in folder.rglob("*")}


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_get_into_a_folder_never_writes_outside_it(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Manifest

    # Deduplicated: the bytes live in a shared object, so a row or manifest may name any "uri" and
    # still download real bytes (on S3 a key may end in "/." or "/.." anyway).
    monkeypatch.setenv("AIRFLOW__MLOPS__DEDUPLICATE", "True")
    result = run_dag(DAG)
    run = result.run_id
    row = result.row("weights")
    assert row.get("blob"), row
    folder = row["uri"].rsplit("/", 1)[0]
    outside = tmp_path / "outside"
    downloads = outside / "downloads"
    downloads.mkdir(parents=True)

    # A forged XCom row: its uri ends in ".", ".." or "/".
    for index, tail in enumerate((".", "..", "")):
        key = f"forged_{index}"
        forged = {**row, "uri": f"{folder}/{tail}"}
        _forge_row(run, "weights", key, forged)
        before = _files(outside)
        code, out, err = cli(
            capsys, "mlops", "artifacts", "get", DAG, run, "weights", "--key", key,
            "-o", str(downloads), "--force",
        )  # fmt: skip
        assert code == 1, (tail, code, out, err)
        assert "Traceback" not in err
        for fragment in ("task 'weights'", f"key '{key}'", forged["uri"], "is not a plain file name"):
            assert fragment in err, (fragment, err)
        assert "Nothing was saved" in err
        assert _files(outside) == before, tail  # no file, no .part, inside or outside the folder

    # The same through a manifest whose uri was altered (get URI reads the manifest).
    manager = ArtifactManager()
    manifest_uri = f"{folder}/0.manifest.json"
    manifest = Manifest.from_json(manager.store.get_bytes(manifest_uri))
    manifest.reference.uri = f"{folder}/."
    manager.store.put_bytes(manifest_uri, manifest.to_json())
    code, _, err = cli(capsys, "mlops", "artifacts", "get", row["uri"], "-o", str(downloads), "--force")
    assert code == 1 and f"{folder}/." in err and "task 'weights'" in err and "Traceback" not in err
    assert not list(downloads.iterdir()) and {p.name for p in outside.iterdir()} == {"downloads"}

    # A name that is a symlink leading out of the folder is refused too; a plain name still works.
    good = result.row("extract")
    target = outside / "elsewhere.arrow"
    target.write_bytes(b"keep me")
    (downloads / "0.arrow").symlink_to(target)
    code, _, err = cli(capsys, "mlops", "artifacts", "get", good["uri"], "-o", str(downloads), "--force")
    assert code == 1 and "outside" in err and target.read_bytes() == b"keep me"
    (downloads / "0.arrow").unlink()
    code, out, err = cli(capsys, "mlops", "artifacts", "get", good["uri"], "-o", str(downloads))
    assert code == 0, err
    assert (downloads / "0.arrow").stat().st_size == good["size_bytes"]
