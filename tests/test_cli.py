"""``airflow mlops ...`` commands: as subprocesses (registration, exit codes, stderr) and in-process.

Each ``airflow`` subprocess costs a few seconds, so every subprocess call checks a lot, and the
variants (other preview kinds, JSON output, gc options) go through Airflow's real CLI parser in
this process instead.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from airflow_runner import run_dag
from conftest import airflow, requires_provider_cli, set_unreachable_s3_connection

from airflow_mlops_provider import ArtifactNotFoundError
from airflow_mlops_provider.notebook import load_artifact

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

DAG = "mlops_cli_pipeline"

pytestmark = requires_provider_cli


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``airflow ...`` through Airflow's own CLI parser, in this process: (exit code, stdout, stderr)."""
    from airflow.cli import cli_parser

    capsys.readouterr()
    namespace = cli_parser.get_parser().parse_args(list(args))
    try:
        namespace.func(namespace)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """A failed command: the exit code, one ``Error:`` line naming the fragments, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    for fragment in fragments:
        assert fragment in line, line
    return line


def folder(uri: str) -> str:
    return uri.rsplit("/", 1)[0]


def exists(uri: str) -> bool:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    try:
        ArtifactManager().store.info(uri)  # asked afresh: objects are deleted by other processes
    except ArtifactNotFoundError:
        return False
    return True


# -- list / show / get / lineage -------------------------------------------------------------------


def test_artifact_commands(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_dag(DAG)
    assert result.state == "success"
    run = result.run_id
    uri = {
        task: result.row(task)["uri"] for task in ("extract", "features", "train", "weights", "blob", "chart")
    }
    code_hash = {t: result.row(t, key="mlops.task")["code_hash"] for t in ("extract", "features", "train")}

    # list --output json: manifests plus where they were found, inline values marked.
    proc = airflow("mlops", "artifacts", "list", DAG, "--run", run, "--output", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {(i["task_id"], i["key"], i["path"]): i for i in json.loads(proc.stdout)}
    extract = items[("extract", "return_value", "")]
    assert extract["uri"] == uri["extract"] and extract["status"] == "ok" and not extract["inline"]
    assert extract["execution"]["code_hash"] == code_hash["extract"]
    assert extract["details"]["rows"] == 120 and extract["media_type"] == "application/vnd.apache.arrow.file"
    assert items[("summary", "return_value", "")]["inline"] is True
    assert items[("summary", "return_value", "")]["value"] == {"status": "ok", "rows": 120}
    assert items[("shards", "return_value", "[1]")]["format"] == "arrow"
    assert not any(key.startswith("mlops.") for _, key, _ in items)

    # show URI: a table's manifest, then the preview the ML view shows: schema, statistics, first rows.
    proc = airflow("mlops", "artifacts", "show", uri["features"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert f"Artifact:   {uri['features']}" in out
    assert "Producer:   dag 'mlops_cli_pipeline'" in out and "task 'features'" in out
    assert f"Execution:  @ml.task, code sha256 {code_hash['features']}" in out
    assert f"Inputs:     {uri['extract']} (task 'extract')" in out
    assert "Preview (table): 120 rows x 6 columns" in out
    listed = out.split("  columns:\n", 1)[1].splitlines()[2:8]
    columns = {line.split()[0]: line.split()[1:] for line in listed}
    assert columns["spend_per_year"][:2] == ["float64", "0"]  # dtype and nulls
    assert columns["customer_id"][2:6] == ["min", "0;", "max", "119;"]  # statistics over all rows
    assert columns["segment"][:3] == ["category", "0", "top"]
    head = out.split("first 20 of 120 rows:\n", 1)[1].splitlines()
    assert head[0].split() == ["customer_id", "age", "spend", "segment", "spend_per_year", "churned"]
    assert [line.split()[1] for line in head[2:22]] == [str(i) for i in range(20)] and len(head) == 22

    # get DAG_ID RUN_ID TASK_ID: the verified data object.
    dest = tmp_path / "extract.arrow"
    proc = airflow("mlops", "artifacts", "get", DAG, run, "extract", "-o", str(dest))
    assert proc.returncode == 0, proc.stderr[-3000:]
    sha = result.row("extract")["sha256"]
    size = f"{result.row('extract')['size_bytes']:,}"
    assert proc.stdout.strip() == f"Saved {uri['extract']} to {dest} ({size} bytes, sha256 {sha} verified)."
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    assert pd.read_feather(dest).shape == (120, 4)  # an Arrow IPC file (Feather v2)

    # lineage URI: train <- features <- extract, with code hashes and params.
    proc = airflow("mlops", "lineage", uri["train"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == uri["train"]
    assert lines[1] == "  LogisticRegression (pickled object)"
    tree = proc.stdout
    assert tree.index(uri["train"]) < tree.index(uri["features"]) < tree.index(uri["extract"])
    assert f"  `-- {uri['features']}" in tree and f"      `-- {uri['extract']}" in tree
    for task in ("extract", "features", "train"):
        assert f"@ml.task: code sha256 {code_hash[task][:16]}" in tree
    assert tree.count('params: {"alpha": 0.5, "rows": 120}') == 3
    assert tree.rstrip().endswith("inputs: none")

    # -- variants through the same parser, in this process ------------------------------------------
    code, out, _ = cli(capsys, "mlops", "artifacts", "list", DAG, "--run", run, "--task", "extract")
    assert code == 0 and out.splitlines()[0].split() == [
        "RUN_ID", "TASK_ID", "MAP", "XCOM", "STATUS", "FORMAT", "SIZE", "SUMMARY", "URI"
    ]  # fmt: skip
    assert uri["extract"] in out and "1 stored artifact(s)" in out

    # Pickles are never unpickled: show works with every unpickling function booby-trapped.
    import cloudpickle

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("show must never unpickle")

    with pytest.MonkeyPatch.context() as trap:
        for module, name in (
            (pickle, "loads"),
            (pickle, "load"),
            (cloudpickle, "loads"),
            (cloudpickle, "load"),
        ):
            trap.setattr(module, name, refuse)
        trap.setattr(pickle, "Unpickler", refuse)
        trap.setenv("AIRFLOW__MLOPS__ALLOW_PICKLE", "False")
        code, out, err = cli(capsys, "mlops", "artifacts", "show", DAG, "latest", "train")
    assert code == 0, err
    assert "Preview (object; recorded when it was written, never unpickled):" in out
    assert "  class:  sklearn.linear_model._logistic.LogisticRegression" in out
    assert "  repr:   LogisticRegression(C=0.5, max_iter=200)" in out
    assert "C=0.5" in out.split("  params: ", 1)[1] and "max_iter=200" in out

    previews = {
        "weights": ["Preview (array): shape 3 x 4, dtype float64", "first values: [0.0, 1.0, 2.0, 3.0"],
        "blob": ["Preview (bytes): 1,032 bytes", "first bytes: 89 4d 4c 4f 50 53 00 01 00 01 02"],
        "chart": ["Preview (image): 16 x 9 pixels, mode RGB"],
        "history": ["Preview (JSON, truncated):", '"epochs": [', '"loss": 1.0'],
        "summary": ["stored inline in the XCom row", '"status": "ok"'],
        "shards": ["holds 2 artifacts", "Preview (table): 2 rows x 1 columns"],
    }
    for task, expected in previews.items():
        code, out, err = cli(capsys, "mlops", "artifacts", "show", DAG, run, task)
        assert code == 0, err
        for fragment in expected:
            assert fragment in out, (task, fragment, out)
    code, out, _ = cli(capsys, "mlops", "artifacts", "show", DAG, run, "history", "--key", "epochs")
    assert code == 0 and len(out.split("Preview (JSON, truncated):", 1)[1].splitlines()) <= 62

    code, out, _ = cli(capsys, "mlops", "artifacts", "show", uri["features"], "--output", "json")
    shown = json.loads(out)
    assert shown["manifest"]["uri"] == uri["features"] and shown["manifest"]["execution"]["source"]
    assert shown["preview"]["kind"] == "table" and shown["preview"]["rows"] == 120
    assert len(shown["preview"]["head"]) == 50 and shown["preview"]["schema"][-1]["name"] == "churned"
    assert shown["preview"]["stats"]["customer_id"]["max"] == 119

    code, out, _ = cli(capsys, "mlops", "lineage", DAG, run, "train", "--output", "json")
    lineage = json.loads(out)
    features = lineage["inputs"][0]
    assert lineage["producer"]["task_id"] == "train" and lineage["execution"]["params"]["alpha"] == 0.5
    assert features["producer"]["task_id"] == "features" and features["sha256_matches"] is True
    assert features["inputs"][0]["execution"]["code_hash"] == code_hash["extract"]
    assert features["inputs"][0]["inputs"] == []

    # get URI into a folder, with the progress bar forced on; refuses to overwrite without --force.
    code, out, err = cli(
        capsys, "mlops", "artifacts", "get", uri["weights"], "-o", str(tmp_path), "--progress"
    )
    assert code == 0 and (tmp_path / "0.npy").exists() and "100.0%" in err
    code, _, err = cli(capsys, "mlops", "artifacts", "get", uri["weights"], "-o", str(tmp_path))
    assert code == 2 and "already exists; pass --force" in err

    # A tampered object: get fails (exit 4) and leaves no file behind; show refuses it too.
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    ArtifactManager().store.put_bytes(uri["extract"], b"x" * result.row("extract")["size_bytes"])
    before = set(tmp_path.iterdir())
    code, _, err = cli(
        capsys, "mlops", "artifacts", "get", uri["extract"], "-o", str(tmp_path / "bad.parquet")
    )
    assert code == 4 and "does not match the hash recorded" in err and "Nothing was saved" in err
    assert set(tmp_path.iterdir()) == before
    # show prints the preview computed when the object was written, once it finds the object with
    # the recorded size: a truncated one is refused.
    ArtifactManager().store.put_bytes(uri["extract"], b"PAR1")
    code, _, err = cli(capsys, "mlops", "artifacts", "show", DAG, run, "extract")
    assert code == 4 and "does not match the size recorded" in err and "is 4 bytes in the store" in err
    # A lost manifest with intact data: show, like list, still shows the artifact (from the row).
    store = ArtifactManager().store
    store.fs.rm(store.fs_path(uri["features"].rsplit(".", 1)[0] + ".manifest.json"))
    code, out, _ = cli(capsys, "mlops", "artifacts", "show", DAG, run, "features")
    assert code == 0 and "manifest missing" in out and "DataFrame 120 rows x 6 columns" in out


def test_show_reads_a_bounded_preview_back_when_none_was_stored(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A streamed table has no stored preview (write consumed it): its serializer reads the footer and
    the first rows back, at most 100 columns and 50 rows, and claims no statistics over rows unread."""
    import pyarrow as pa

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Producer, Reference

    batches = [
        pa.record_batch({f"c{i}": list(range(n, n + 1000)) for i in range(120)}) for n in (0, 1000, 2000)
    ]
    stream = pa.RecordBatchReader.from_batches(batches[0].schema, batches)  # one record batch each
    manager = ArtifactManager()
    row = manager.dump(stream, Producer("adhoc", "run", "wide", -1, "return_value", 1))
    assert not manager.store.exists(Reference.from_row(row).preview_uri)
    code, out, err = cli(capsys, "mlops", "artifacts", "show", row["uri"], "--output", "json")
    assert code == 0, err
    preview = json.loads(out)["preview"]
    assert preview["kind"] == "table" and preview["rows"] == 3000 and preview["columns"] == 120
    assert preview["batches"] == 3 and preview["stats"] == {} and preview["truncated_columns"]
    assert preview["schema"] == [{"name": f"c{i}", "dtype": "int64"} for i in range(100)]
    assert [r[1] for r in preview["head"]] == list(range(50))  # after the (unnamed) index cell
    code, out, _ = cli(capsys, "mlops", "artifacts", "show", row["uri"])
    assert "Preview (table): 3,000 rows x 120 columns, 3 record batch(es)" in out
    assert "... 20 more columns" in out and "first 20 of 3,000 rows:" in out


# -- gc ------------------------------------------------------------------------------------------------


def _clear_xcoms(run_id: str, *task_ids: str) -> None:
    """Delete XCom rows the way the UI / REST API do: through the ORM, without the backend's purge."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for task_id in task_ids:
            XComModel.clear(dag_id=DAG, task_id=task_id, run_id=run_id, session=session)


def _set_run_state(run_id: str, state: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun).where(DagRun.dag_id == DAG, DagRun.run_id == run_id).values(state=state)
        )


def test_gc(store: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.cli.gc import collect_garbage

    first, second = run_dag(DAG), run_dag(DAG, run_conf={"rows": 30})
    manager = ArtifactManager()
    # Never touched: snapshots, other files, and a try= folder holding something unexpected.
    foreign = [
        f"{store}/_snapshots/dag_id=x/abc.json",
        f"{store}/notes/readme.txt",
        f"{store}/dag_id=x/run_id=y/task_id=z/map_index=-1/key=return_value/try=1-0123456789ab/notes.txt",
        f"{store}/dag_id=x/run_id=y/task_id=z/map_index=-1/key=return_value/try=1-0123456789ac/0.bin",
        f"{store}/dag_id=x/run_id=y/task_id=z/map_index=-1/key=return_value/try=1-0123456789ac/sub/0.bin",
    ]
    for path in foreign:
        manager.store.put_bytes(path, b"keep me")

    # Cleared from the UI / API: blob and chart of the first run are orphaned.
    _clear_xcoms(first.run_id, "blob", "chart")
    orphans = {folder(first.row(t)["uri"]) for t in ("blob", "chart")}
    referenced_first = {folder(r["uri"]) for r in _refs(first) if folder(r["uri"]) not in orphans}

    proc = airflow("mlops", "gc", "--dry-run", "--grace", "0s", "--output", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert {i["uri"] for i in report["would_delete"]["items"]} == orphans
    assert report["freed_bytes"] == 0 and report["would_delete"]["bytes"] > 0
    assert report["kept_referenced"]["folders"] == len(referenced_first) + len(_folders(second))
    assert report["skipped_snapshot_objects"] >= 1 and len(report["skipped_paths"]) == 4
    assert all(exists(f"{o}/0.manifest.json") for o in orphans)  # --dry-run deleted nothing

    # Fresh folders are within the default grace period (1h): nothing is deleted.
    code, out, err = cli(capsys, "mlops", "gc")
    assert code == 0, err
    assert "deleted (orphaned): 0 folder(s)" in out and "younger than the grace period (1h)" in out
    assert all(exists(f"{o}/0.manifest.json") for o in orphans)

    proc = airflow("mlops", "gc", "--grace", "0s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "deleted (orphaned): 2 folder(s)" in proc.stdout and "(2 folder(s) deleted)." in proc.stdout
    assert not any(exists(f"{o}/0.manifest.json") for o in orphans)
    assert all(exists(path) for path in foreign)
    assert len(load_artifact(DAG, first.run_id, "extract")) == 120  # live artifacts stay

    # Referenced artifacts: only with an explicit --older-than plus --include-referenced.
    code, _, err = cli(capsys, "mlops", "gc", "--include-referenced", "--grace", "0s")
    assert code == 2 and "needs an explicit --older-than" in err
    monkeypatch.setenv("AIRFLOW__MLOPS__RETENTION_DAYS", "30")
    code, out, _ = cli(capsys, "mlops", "gc", "--dry-run", "--output", "json")
    assert json.loads(out)["older_than_seconds"] == 30 * 86400
    code, _, err = cli(capsys, "mlops", "gc", "--include-referenced", "--grace", "0s")
    assert code == 2  # the setting alone never deletes referenced artifacts
    code, out, _ = cli(capsys, "mlops", "gc", "--grace", "0s", "--older-than", "0s", "--output", "json")
    report = json.loads(out)
    assert report["deleted"]["folders"] == 0
    assert report["kept_expired_referenced"]["folders"] == len(referenced_first) + len(_folders(second))
    # The same through the library, as if 31 days had passed: reported, kept.
    later = collect_garbage(grace=timedelta(0), older_than=timedelta(days=30), now=_in(days=31))
    assert not later.deleted and len(later.kept_expired) == report["kept_expired_referenced"]["folders"]

    _set_run_state(second.run_id, "running")  # an unfinished run's artifacts are never deleted
    try:
        args = ("--grace", "0s", "--older-than", "0s", "--include-referenced", "--output", "json")
        code, out, err = cli(capsys, "mlops", "gc", *args)
    finally:
        _set_run_state(second.run_id, "success")
    assert code == 0, err
    report = json.loads(out)
    assert {i["uri"] for i in report["deleted"]["items"]} == referenced_first
    assert {i["uri"] for i in report["kept_expired_referenced"]["items"]} == _folders(second)
    with pytest.raises(ArtifactNotFoundError):
        load_artifact(DAG, first.run_id, "extract")
    assert len(load_artifact(DAG, second.run_id, "extract")) == 30

    # `airflow db clean` deletes XCom rows without purging: everything left becomes orphaned.
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    clean = (
        "--clean-before-timestamp",
        tomorrow,
        "--tables",
        "xcom",
        "--dag-ids",
        DAG,
        "--skip-archive",
        "-y",
    )
    proc = airflow("db", "clean", *clean)
    assert proc.returncode == 0, proc.stderr[-3000:]
    code, _, err = cli(capsys, "mlops", "gc", "--grace", "0s")
    assert code == 1 and "Refusing to delete" in err and "--force" in err  # wrong metadata DB?
    assert all(exists(f"{f}/0.manifest.json") for f in _folders(second))
    code, out, err = cli(capsys, "mlops", "gc", "--grace", "0s", "--force")
    assert code == 0, err
    assert f"deleted (orphaned): {len(_folders(second))} folder(s)" in out
    assert not any(exists(f"{f}/0.manifest.json") for f in _folders(second))
    assert all(exists(path) for path in foreign)


def _refs(result: Any) -> list[dict[str, Any]]:
    from airflow_mlops_provider.artifacts import codec

    return [ref for row in result.xcom_rows.values() for _, ref in codec.iter_references(row)]


def _folders(result: Any) -> set[str]:
    return {folder(ref["uri"]) for ref in _refs(result)}


def _in(days: int) -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=days)


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_cli_errors(store: str, capsys: pytest.CaptureFixture[str], monkeypatch, tmp_path: Path) -> None:
    result = run_dag(DAG)
    run = result.run_id
    features = result.row("features")["uri"]
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    # Expected errors: one line on stderr, a non-zero exit code, no traceback.
    proc = airflow("mlops", "artifacts", "show", DAG, "manual__nope", "extract")
    assert_clean_error(proc, 1, "has no run 'manual__nope'", run)
    proc = airflow("mlops", "lineage", "file:///etc/passwd")
    assert_clean_error(proc, 1, "file:///etc/passwd is outside the configured artifact root", store)

    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    ArtifactManager().store.fs.rm(ArtifactManager().store.fs_path(features))  # the object, not its manifest
    proc = airflow("mlops", "artifacts", "get", DAG, run, "features", "-o", str(downloads / "f.parquet"))
    assert_clean_error(proc, 1, f"The artifact {features}", "task 'features'", "missing from the store")
    assert not list(downloads.iterdir())

    # The same classes of errors in this process.
    code, _, err = cli(capsys, "mlops", "artifacts", "get", DAG, run, "nope", "-o", str(downloads / "x"))
    assert code == 1 and "There is no task 'nope'" in err and "blob, chart, extract" in err
    code, _, err = cli(capsys, "mlops", "artifacts", "list", "no_such_dag")
    assert code == 1 and "DAG 'no_such_dag' is not in Airflow's metadata DB" in err
    code, _, err = cli(capsys, "mlops", "artifacts", "show", features)
    assert code == 1 and f"The artifact {features}" in err and "is missing from the store" in err
    code, _, err = cli(capsys, "mlops", "lineage", DAG, run, "summary")
    assert code == 1 and "stored inline in the XCom row" in err
    code, _, err = cli(capsys, "mlops", "artifacts", "show", DAG, run)
    assert code == 2 and "Expected URI or DAG_ID RUN_ID TASK_ID" in err
    code, _, err = cli(capsys, "mlops", "gc", "--older-than", "soon")
    assert code == 2 and "cannot read 'soon' as a duration" in err
    code, _, err = cli(capsys, "mlops", "artifacts", "get", DAG, run, "shards", "-o", str(downloads / "x"))
    assert code == 2 and "holds 2 artifacts; pass one of their URIs" in err

    # An unreachable store (exit code 3) names the root and the connection.
    root = "s3://unreachable-bucket/artifacts"
    set_unreachable_s3_connection(monkeypatch, "aws_default")
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", root)
    proc = airflow("mlops", "gc", "--dry-run")
    assert_clean_error(proc, 3, f"Could not list {root}", "'aws_default'")
    assert not proc.stdout
