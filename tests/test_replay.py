"""``ml.replay`` / ``airflow mlops replay``: a task instance of a past run, run again in this process.

Real runs (``dag.test()``) on both stores; the replay reads their XCom rows and artifacts back,
and must leave the metadata DB and the store as it found them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from airflow_runner import run_dag
from conftest import DAGS_DIR, airflow, requires_provider_cli

from airflow_mlops_provider import ml
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.catalog import records, task_inputs
from airflow_mlops_provider.local.dags import DagLoadError
from airflow_mlops_provider.local.inputs import ReplayInputError
from airflow_mlops_provider.local.replay import ReplayError

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

PIPELINE = "mlops_replay_pipeline"
PLAIN = "mlops_replay_plain"
CHANGING = "mlops_replay_changing"
FAILURE = "threshold 500 is above the limit 100"


def run_pipeline() -> tuple[str, str]:
    """A successful run and one whose ``features`` raised (threshold above its limit)."""
    ok = run_dag(PIPELINE)
    failed = run_dag(PIPELINE, run_conf={"threshold": 500})
    assert ok.state == "success", ok.task_states
    assert failed.state == "failed" and failed.task_states[("features", -1)] == "failed"
    return ok.run_id, failed.run_id


def db_counts() -> dict[str, int]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (DagRun, TaskInstance, XComModel)
        }


def store_objects() -> set[str]:
    return {info.relative for info in ArtifactManager.configured().store.walk("")}


@pytest.fixture(scope="module")
def pipeline_runs() -> tuple[str, str]:
    """Runs on the session's default (local) store, for the tests that need no second store."""
    return run_pipeline()


@pytest.fixture
def snapshots() -> Iterator[None]:
    """Structure snapshots recorded for every run (as the plugin's listener does in production)."""
    from airflow.listeners.listener import get_listener_manager

    from airflow_mlops_provider.snapshots.recorder import recorder, snapshot_listener

    manager = get_listener_manager()
    wired = manager.pm.is_registered(snapshot_listener)
    if not wired:
        manager.add_listener(snapshot_listener)
    yield
    assert recorder.flush(60)
    if not wired:
        manager.pm.unregister(snapshot_listener)


@pytest.fixture
def changing_dag() -> Iterator[Any]:
    """The DAG file, restored after the test rewrote it."""
    path = DAGS_DIR / f"{CHANGING}.py"
    original = path.read_text()
    yield path
    path.write_text(original)


# -- both stores ----------------------------------------------------------------------------------


def test_replay_reproduces_a_failure_and_reruns_a_success_writing_nothing(store: str) -> None:
    ok_run, failed_run = run_pipeline()
    before_db, before_store = db_counts(), store_objects()

    # The failed task raises again, here: the type its record names, the message it raised.
    recorded_error = task_inputs.task_record(PIPELINE, failed_run, "features").error
    with pytest.raises(ValueError) as raised:
        ml.replay(PIPELINE, "features", failed_run)
    assert type(raised.value).__name__ == recorded_error == "ValueError"
    assert str(raised.value) == FAILURE
    # "latest" is the last run in which the task ran, failed or not.
    with pytest.raises(ValueError, match=FAILURE):
        ml.replay(PIPELINE, "features")

    # The successful one gives the recorded table back, from the inputs and params it recorded.
    result = ml.replay(PIPELINE, "features", ok_run)
    assert isinstance(result.value, pd.DataFrame) and list(result.value.columns) == [
        "id",
        "amount",
        "city",
        "large",
    ]
    assert result.params["threshold"] == 10 and result.inputs == {"raw": [("raw", "return_value", -1)]}
    assert result.code == "current" and not result.code_changed
    assert result.has_recorded and result.differs is False and result.comparison is None
    pd.testing.assert_frame_equal(result.value, result.recorded)
    assert "recorded output: equal" in result.summary()
    assert json.loads(json.dumps(result.to_json()))["value"] == "DataFrame with 2 rows x 4 columns"

    # A mapped instance gets the inputs of its map index: expand(part=[3 frames], factor=[1, 100]),
    # the last argument varying fastest, so index 5 is part 2 (20+21+22) times 100.
    mapped = ml.replay(PIPELINE, "scaled", ok_run, map_index=5)
    assert mapped.value == 6300 and mapped.recorded == 6300 and mapped.differs is False
    assert mapped.inputs == {"part": [("parts", "return_value", -1)]}
    assert ml.replay(PIPELINE, "scaled", ok_run, map_index=2).value == (10 + 11 + 12) * 1

    assert db_counts() == before_db
    assert store_objects() == before_store

    saved = ml.replay(PIPELINE, "features", ok_run, save=True)
    added = store_objects() - before_store
    assert added and all(path.startswith("_scratch/replays/") for path in added), sorted(added)
    assert saved.saved_uris and all("/_scratch/replays/" in uri for uri in saved.saved_uris)
    pd.testing.assert_frame_equal(ArtifactManager.configured().load(saved.saved), result.value)
    assert db_counts() == before_db


def test_as_recorded_runs_the_old_code_and_a_changed_table_is_compared(
    store: str, snapshots: None, changing_dag: Any
) -> None:
    from airflow_mlops_provider.snapshots.recorder import recorder

    run = run_dag(CHANGING)
    assert run.state == "success"
    assert recorder.flush(60)
    changing_dag.write_text(
        changing_dag.read_text().replace(
            'return frame[frame["score"] >= MINIMUM].reset_index(drop=True)',
            'return frame.assign(segment=["low" if s < MINIMUM else "high" for s in frame["score"]])',
        )
    )

    now = ml.replay(CHANGING, "transform", run.run_id)
    assert now.code == "current" and now.code_changed
    assert len(now.value) == 10 and "segment" in now.value.columns
    assert now.differs is True
    comparison = now.comparison
    assert comparison is not None and comparison["kind"] == "table"
    assert comparison["rows"] == {"before": 6, "after": 10, "delta": 4}
    assert [c["name"] for c in comparison["added"]] == ["segment"]
    assert comparison["columns"]["score"]["mean"]["delta"] == pytest.approx(4.5 - 6.5)
    summary = now.summary()
    assert "rows 6 -> 10 (delta +4)" in summary and "added column segment" in summary

    recorded = ml.replay(CHANGING, "transform", run.run_id, as_recorded=True)
    assert recorded.code == "recorded" and not recorded.code_changed
    assert list(recorded.value["score"]) == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert recorded.differs is False and recorded.comparison is None

    if requires_provider_cli.args[0]:  # `airflow mlops` absent (Airflow 3.1)
        return
    cli = airflow("mlops", "replay", CHANGING, "transform", "--run", run.run_id, "--as-recorded")
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert f"Replayed {CHANGING}/transform of run {run.run_id} with the recorded code" in cli.stdout
    assert "value: DataFrame with 6 rows x" in cli.stdout and "recorded output: equal" in cli.stdout
    cli = airflow("mlops", "replay", CHANGING, "transform", "--run", run.run_id)
    assert "(code changed since the run)" in cli.stdout and "rows 6 -> 10 (delta +4)" in cli.stdout, (
        cli.stdout
    )


# -- bad input ------------------------------------------------------------------------------------


def test_bad_input_names_what_is_wrong_and_what_exists(pipeline_runs: tuple[str, str]) -> None:
    ok_run, _ = pipeline_runs
    with pytest.raises(
        DagLoadError, match=r"DAG 'mlops_replay_pipelin' is not in .* Did you mean: mlops_replay_pipeline"
    ):
        ml.replay("mlops_replay_pipelin", "features")
    with pytest.raises(ReplayError, match=r"no task 'featurs'.*Did you mean: features"):
        ml.replay(PIPELINE, "featurs")
    assert ml.replay(PIPELINE, "plain", ok_run).value == 6  # a plain @task replays too
    with pytest.raises(ReplayError, match=r"no run 'manual__nope'. Newest runs: manual__"):
        ml.replay(PIPELINE, "features", "manual__nope")
    with pytest.raises(ReplayError, match=r"'scaled' is mapped: pass the map index"):
        ml.replay(PIPELINE, "scaled", ok_run)
    with pytest.raises(ReplayError, match=r"no recorded try in run .* Runs with a record"):
        ml.replay(PIPELINE, "scaled", ok_run, map_index=9)


def test_an_input_whose_artifact_was_deleted_is_named(pipeline_runs: tuple[str, str]) -> None:
    ok_run, _ = pipeline_runs
    (row,) = records.xcoms(PIPELINE, ok_run, "raw", key="return_value")
    manager = ArtifactManager.configured()
    uri = row.references[0].uri
    manager.store.fs.rm(manager.store.fs_path(uri))
    with pytest.raises(ReplayInputError) as raised:
        ml.replay(PIPELINE, "features", ok_run)
    message = str(raised.value)
    assert "Input 'raw' of task 'features'" in message and uri in message
    assert "Rerun the DAG" in message


# -- the CLI --------------------------------------------------------------------------------------


@requires_provider_cli
def test_cli_prints_the_result_or_the_traceback(pipeline_runs: tuple[str, str]) -> None:
    ok_run, failed_run = pipeline_runs

    def mlops(*args: str) -> subprocess.CompletedProcess[str]:
        return airflow("mlops", *args)

    failed = mlops("replay", PIPELINE, "features", "--run", failed_run)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "Traceback" in failed.stderr and f"ValueError: {FAILURE}" in failed.stderr
    assert f"Replay of {PIPELINE}/features of run {failed_run} (current code) raised" in failed.stderr

    ok = mlops("replay", PIPELINE, "scaled", "--run", ok_run, "--map-index", "5")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert f"Replayed {PIPELINE}/scaled[5] of run {ok_run} with the current code" in ok.stdout
    assert "value: 6300" in ok.stdout and "recorded output: equal" in ok.stdout

    bad = mlops("replay", PIPELINE, "featurs", "--run", ok_run)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert any(
        line.startswith("Error: DAG 'mlops_replay_pipeline' has no task 'featurs'")
        for line in bad.stderr.splitlines()
    ), bad.stderr[-2000:]

    # --save writes below _scratch/replays/ (parts: a plain @task returning three tables).
    saved = mlops("replay", PIPELINE, "parts", "--run", ok_run, "--save", "--output", "json")
    assert saved.returncode == 0, saved.stderr[-3000:]
    uris = json.loads(saved.stdout)["saved"]
    assert len(uris) == 3 and all("/_scratch/replays/" in uri for uri in uris), uris
    frame = ArtifactManager.configured().load_reference(_saved_reference(uris[2]))
    assert frame["v"].tolist() == [20, 21, 22]


def _saved_reference(uri: str) -> Any:
    """The reference of a saved replay value, read from the manifest beside it."""
    from airflow_mlops_provider.artifacts import layout
    from airflow_mlops_provider.artifacts.manifest import Manifest

    store = ArtifactManager.configured().store
    return Manifest.from_json(store.get_bytes(layout.sibling(uri, layout.MANIFEST))).reference


@requires_provider_cli
def test_cli_pdb_opens_the_debugger_where_the_task_raised(pipeline_runs: tuple[str, str]) -> None:
    _, failed_run = pipeline_runs
    replay = ("mlops", "replay", PIPELINE, "features", "--run", failed_run, "--pdb")
    debug = airflow(*replay, stdin="p threshold\np LIMIT\nq\n")
    assert debug.returncode == 1, debug.stderr[-3000:]
    assert f"ValueError: {FAILURE}" in debug.stderr
    lines = debug.stdout.splitlines()
    assert any(line.startswith("(Pdb)") for line in lines), debug.stdout[-3000:]
    assert "(Pdb) 500" in debug.stdout and "(Pdb) 100" in debug.stdout, debug.stdout[-3000:]


# -- plain TaskFlow tasks -------------------------------------------------------------------------


def test_a_plain_task_replays_on_its_upstream_xcoms_and_the_run_params(store: str) -> None:
    failed = run_dag(PLAIN)  # rows 4 > limit 3
    ok = run_dag(PLAIN, run_conf={"limit": 10})
    assert failed.task_states[("check_rows", -1)] == "failed" and ok.state == "success"
    before_db, before_store = db_counts(), store_objects()

    # The failure again, here; "latest" finds the last run in which the task ran.
    with pytest.raises(RuntimeError, match=r"^4 rows, above the limit 3$"):
        ml.replay(PLAIN, "check_rows", failed.run_id)
    result = ml.replay(PLAIN, "check_rows")
    assert result.run_id == ok.run_id and result.value == 4 and result.recorded == 4
    assert result.differs is False and result.params == {"rows": 4, "limit": 10}
    assert result.inputs == {"frame": [("raw", "return_value", -1)]}
    # A mapped plain task: its expand() element and its partial() upstream XCom.
    assert ml.replay(PLAIN, "shout", ok.run_id, map_index=1).value == "B4"
    assert db_counts() == before_db and store_objects() == before_store

    classic = r"'classic' of DAG 'mlops_replay_plain' is a EmptyOperator \(a classic operator\)"
    with pytest.raises(
        ReplayError, match=classic + r".*@task, @ml.task.*airflow tasks test mlops_replay_plain"
    ):
        ml.replay(PLAIN, "classic", ok.run_id)
