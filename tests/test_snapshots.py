"""DAG structure snapshots per run: model, structural diff, storage, background recorder, listener."""

from __future__ import annotations

import json
import os
import time
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pendulum
import pytest
from conftest import DAGS_DIR, TESTS_DIR, set_unreachable_s3_connection

from airflow_mlops_provider.artifacts.store import ArtifactStore
from airflow_mlops_provider.snapshots import DagSnapshot, SnapshotStore, TaskSnapshot, diff_snapshots
from airflow_mlops_provider.snapshots.recorder import (
    DagNotSerializedError,
    DagRunSnapshotListener,
    SnapshotRecorder,
    default_spool_dir,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_mlops_provider.snapshots.diff import SnapshotDiff

STRUCTURE = (TESTS_DIR / "dags" / "mlops_snap_structure.py").read_text()

# v2 of the structure DAG: one edit per kind of change the diff reports.
V2_EDITS = (
    ("        return value + 1\n", "        return value + 2\n"),  # predict: body changed
    ("    def report(predictions) -> int:", "    def summarize(predictions) -> int:"),  # renamed
    ("    report(predictions)\n", "    summarize(predictions) >> done\n"),  # ...and a new edge
    (
        '        publish = BashOperator(task_id="publish", bash_command="echo publish")\n'
        '    done = EmptyOperator(task_id="done")\n',
        '        publish = BashOperator(task_id="publish", bash_command="echo publish v2")\n'
        '        done = EmptyOperator(task_id="done")\n',
    ),  # publish: command changed; done: moved into the "ship" group (same task id)
    (
        '    PythonOperator(task_id="helper", python_callable=module_helper)\n',
        '    EmptyOperator(task_id="audit")\n',
    ),  # helper removed, audit added
    ("    per_shard.expand(shard=[1, 2])\n", "    per_shard(1)\n"),  # no longer mapped
)


def edit(source: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert source.count(old) == 1, f"edit target not unique in the DAG source: {old!r}"
        source = source.replace(old, new)
    return source


def snapshot_of(source: str, tmp_path: Path) -> DagSnapshot:
    """Parse a DAG file, serialize it as the DAG processor stores it, snapshot the stored form."""
    from airflow_runner import dagbag_class

    DagBag = dagbag_class()
    from airflow.serialization.serialized_objects import DagSerialization

    path = tmp_path / f"snap_{uuid.uuid4().hex[:8]}.py"
    path.write_text(source)
    bag = DagBag(dag_folder=str(path), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    data = json.loads(json.dumps(DagSerialization.to_dict(dag)))  # what SerializedDagModel.data holds
    return DagSnapshot.from_serialized_data(data, source)


# -- model -------------------------------------------------------------------------------------------


def test_snapshot_of_groups_mapping_classic_and_ml_tasks(tmp_path: Path) -> None:
    snap = snapshot_of(STRUCTURE, tmp_path)
    tasks = snap.task_dict
    assert snap.dag_id == "mlops_snap_structure"
    assert {t: (s.kind, s.group_id, s.mapped) for t, s in tasks.items()} == {
        "extract": ("@task", None, False),
        "prepare.clean": ("@task", "prepare", False),
        "prepare.scale": ("@task", "prepare", False),
        "predict": ("@ml.task", None, True),
        "predictions_positive": ("@ml.check", None, False),
        "report": ("@task", None, False),
        "per_shard.shard_work": ("@task", "per_shard", True),  # mapped through its task group
        "publish": ("BashOperator", "ship", False),
        "done": ("EmptyOperator", None, False),
        "helper": ("PythonOperator", None, False),
    }
    assert tasks["predict"].operator_class == "MLDecoratedOperator"
    # TaskFlow code: the function found in the file by qualname, from ``def`` on (no decorators).
    assert tasks["predict"].callable_name == "mlops_snap_structure.<locals>.predict"
    assert tasks["predict"].code_origin == "source"
    assert tasks["predict"].source == "def predict(value: int) -> int:\n    return value + 1\n"
    assert tasks["prepare.clean"].source.startswith("def clean(values: list[int])")
    assert tasks["helper"].source.startswith("def module_helper()")  # module-level callable
    # Classic operators: their template fields.
    assert tasks["publish"].code_origin == "template_fields"
    assert json.loads(tasks["publish"].source) == {"bash_command": "echo publish"}
    assert snap.edges == (
        ("extract", "prepare.clean"),
        ("predict", "predictions_positive"),
        ("predict", "report"),
        ("predictions_positive", "publish"),
        ("prepare.clean", "prepare.scale"),
        ("prepare.scale", "predict"),
        ("publish", "done"),
    )
    assert snap.upstream("predict") == ["prepare.scale"]


def test_snapshot_json_round_trip_and_content_id(tmp_path: Path) -> None:
    snap = snapshot_of(STRUCTURE, tmp_path)
    again = snapshot_of(STRUCTURE, tmp_path)  # another parse of the same file
    assert again.id == snap.id and len(snap.id) == 64
    loaded = DagSnapshot.from_json(snap.to_json())
    assert loaded == snap and loaded.id == snap.id
    assert json.loads(snap.to_json())["snapshot_version"] == 2
    with pytest.raises(ValueError, match="snapshot_version 99"):
        DagSnapshot.from_dict({**snap.to_dict(), "snapshot_version": 99})


def test_airflow_decorator_arguments_and_unrelated_code_do_not_change_the_snapshot(tmp_path: Path) -> None:
    base = snapshot_of(STRUCTURE, tmp_path)
    edited = snapshot_of(
        edit(
            STRUCTURE,
            ("    @task\n    def extract()", "    @task(retries=2)\n    def extract()"),
            ('    return "helper"\n', '    return "helper"\n\n\ndef unused() -> None:\n    pass\n'),
        ),
        tmp_path,
    )
    assert edited.id == base.id
    assert diff_snapshots(base, edited).is_empty


def test_snapshot_without_source_falls_back_to_callable_name(tmp_path: Path) -> None:
    from airflow_runner import dagbag_class

    DagBag = dagbag_class()
    from airflow.serialization.serialized_objects import DagSerialization

    path = tmp_path / "nosource.py"
    path.write_text(STRUCTURE)
    (dag,) = DagBag(dag_folder=str(path), safe_mode=False).dags.values()
    data = json.loads(json.dumps(DagSerialization.to_dict(dag)))
    snap = DagSnapshot.from_serialized_data(data, source=None)
    predict = snap.task_dict["predict"]
    assert predict.code_origin == "callable_name" and predict.callable_name.endswith(".predict")
    assert snap.task_dict["publish"].code_origin == "template_fields"


# -- diff --------------------------------------------------------------------------------------------


def _v1_v2(tmp_path: Path) -> tuple[DagSnapshot, DagSnapshot, SnapshotDiff]:
    old = snapshot_of(STRUCTURE, tmp_path)
    new = snapshot_of(edit(STRUCTURE, *V2_EDITS), tmp_path)
    return old, new, diff_snapshots(old, new)


def test_diff_reports_code_rename_group_mapping_and_edges(tmp_path: Path) -> None:
    old, new, diff = _v1_v2(tmp_path)
    assert not diff.is_empty and diff.old_id == old.id and diff.new_id == new.id
    assert [t.task_id for t in diff.added] == ["audit"]
    assert [t.task_id for t in diff.removed] == ["helper"]
    # Same body, new function name (and so task id): a rename, not removed + added.
    assert [(r.old_id, r.new_id, r.changes) for r in diff.renamed] == [("report", "summarize", {})]
    changed = {c.task_id: c for c in diff.changed}
    assert set(changed) == {"done", "per_shard.shard_work", "predict", "publish"}
    assert changed["done"].changes == {"group_id": (None, "ship")}
    assert changed["per_shard.shard_work"].changes == {"mapped": (True, False)}
    assert set(changed["predict"].changes) == {"code_hash"} and changed["predict"].code_changed
    assert "-    return value + 1\n+    return value + 2\n" in changed["predict"].code_diff
    assert changed["predict"].code_diff.startswith("--- predict (old)\n+++ predict (new)\n")
    assert '-  "bash_command": "echo publish"\n+  "bash_command": "echo publish v2"\n' in (
        changed["publish"].code_diff
    )
    # The rename does not show up as rewiring; the one new dependency does.
    assert diff.edges_added == (("summarize", "done"),)
    assert diff.edges_removed == ()
    assert diff.summary() == "1 task added, 1 task removed, 1 task renamed, 4 tasks changed, +1 edge"


def test_diff_to_dict_is_json_for_the_ui(tmp_path: Path) -> None:
    _, _, diff = _v1_v2(tmp_path)
    data = json.loads(json.dumps(diff.to_dict()))
    assert data["is_empty"] is False
    assert data["renamed"] == [
        {
            "old_id": "report",
            "new_id": "summarize",
            "description": "task report renamed to summarize",
            "changes": {},
            "settings": {},
        }
    ]
    assert data["added"][0] == {
        "task_id": "audit",
        "kind": "EmptyOperator",
        "group_id": None,
        "mapped": False,
        "code_hash": data["added"][0]["code_hash"],
    }
    assert data["edges_added"] == [["summarize", "done"]]
    predict = next(c for c in data["changed"] if c["task_id"] == "predict")
    assert list(predict["changes"]) == ["code_hash"] and "+    return value + 2" in predict["code_diff"]
    assert predict["description"] == "task predict: code changed" and predict["code_changes"] == ["function"]
    assert data["descriptions"] == [
        "task audit added (EmptyOperator)",
        "task helper removed",
        "task report renamed to summarize",
        "task done: group none -> ship",
        "task per_shard.shard_work: mapped True -> False",
        "task predict: code changed",
        "task publish: code changed",
        "edge summarize >> done added",
    ]
    reverse = diff_snapshots(*reversed(_v1_v2(tmp_path)[:2]))
    assert reverse.edges_removed == (("summarize", "done"),)
    assert [(r.old_id, r.new_id) for r in reverse.renamed] == [("summarize", "report")]


GROUPED = """
from __future__ import annotations
import pendulum
from airflow.sdk import dag, task, task_group

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_snap_grouped():
    @task
    def start() -> int:
        return 1

    @task_group
    def GROUP(x):
        @task
        def work(x: int) -> int:
            return x + 1

        return work(x)

    GROUP(start())

mlops_snap_grouped()
"""


def test_task_moved_between_prefixed_groups_is_a_rename_with_a_group_change(tmp_path: Path) -> None:
    old = snapshot_of(GROUPED.replace("GROUP", "features"), tmp_path)
    new = snapshot_of(GROUPED.replace("GROUP", "training"), tmp_path)
    diff = diff_snapshots(old, new)
    assert [(r.old_id, r.new_id, r.changes) for r in diff.renamed] == [
        ("features.work", "training.work", {"group_id": ("features", "training")})
    ]
    assert not diff.added and not diff.removed and not diff.changed
    assert diff.edges_added == () and diff.edges_removed == ()


def _task(task_id: str, code: str = "h", kind: str = "EmptyOperator", **kw: Any) -> TaskSnapshot:
    return TaskSnapshot(task_id, kind, kind, kw.get("group_id"), kw.get("mapped", False), code, "source")


def test_ambiguous_rename_candidates_stay_added_and_removed() -> None:
    old = DagSnapshot("d", (_task("a"), _task("b"), _task("x", code="1")), (("a", "b"),))
    new = DagSnapshot("d", (_task("c"), _task("e"), _task("y", code="1", kind="@task")), (("c", "e"),))
    diff = diff_snapshots(old, new)
    assert not diff.renamed  # two empties on each side, and x/y differ in kind
    assert [t.task_id for t in diff.removed] == ["a", "b", "x"]
    assert [t.task_id for t in diff.added] == ["c", "e", "y"]
    assert diff.edges_removed == (("a", "b"),) and diff.edges_added == (("c", "e"),)
    assert diff_snapshots(old, old).is_empty


SETTINGS = """
from __future__ import annotations
import pendulum
from airflow.sdk import BaseNotifier, dag, task
from airflow_mlops_provider.decorators import Regression, ml_check, ml_metric, ml_task

FEATURES = ["age", "income"]
UNUSED = 1


class PagerNotifier(BaseNotifier):
    def notify(self, context) -> None:
        pass


def _scale(value: float) -> float:
    return value * _factor()


def _factor() -> float:
    return 2.0


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_structure_settings():
    @task
    def extract() -> dict:
        return {"age": 1.0, "income": 2.0, "city": 3.0}

    @ml_task(memory_warning_mb=500)
    def predict(row: dict) -> list:
        return [_scale(row[name]) for name in FEATURES]

    @task
    def count(row: dict) -> int:
        return len(row)

    @ml_check(severity="warning")
    def scores(values: list) -> bool:
        return all(v >= 0 for v in values)

    @ml_metric(lower=0.7)
    def auc(values: list) -> float:
        return 0.9

    row = extract()
    values = predict(row)
    count(row)
    scores(values)
    auc(values)


mlops_structure_settings()
"""


def test_a_changed_module_constant_or_helper_changes_the_tasks_that_use_it(tmp_path: Path) -> None:
    base = snapshot_of(SETTINGS, tmp_path)
    predict = base.task_dict["predict"]
    assert set(predict.dependencies) == {"FEATURES", "_scale", "_factor"}
    assert base.task_dict["count"].dependencies == {}
    assert '\n# FEATURES\nFEATURES = ["age", "income"]\n' in predict.source

    features = snapshot_of(
        edit(SETTINGS, ('FEATURES = ["age", "income"]', 'FEATURES = ["age", "income", "city"]')), tmp_path
    )
    diff = diff_snapshots(base, features)
    assert [c.description for c in diff.changed] == ["task predict: code changed (FEATURES)"]
    assert '-FEATURES = ["age", "income"]\n+FEATURES = ["age", "income", "city"]\n' in (
        diff.changed[0].code_diff
    )
    assert diff.summary() == "1 task changed"

    helper = snapshot_of(edit(SETTINGS, ("    return 2.0\n", "    return 3.0\n")), tmp_path)
    assert [c.description for c in diff_snapshots(base, helper).changed] == [
        "task predict: code changed (_factor)"  # used through _scale
    ]
    body = snapshot_of(edit(SETTINGS, ("    return len(row)\n", "    return len(row) + 1\n")), tmp_path)
    assert [c.description for c in diff_snapshots(base, body).changed] == ["task count: code changed"]

    unused = snapshot_of(edit(SETTINGS, ("UNUSED = 1", "UNUSED = 2")), tmp_path)
    assert unused.id == base.id and diff_snapshots(base, unused).is_empty


def test_ml_decorator_settings_are_recorded_and_diffed(tmp_path: Path) -> None:
    base = snapshot_of(SETTINGS, tmp_path)
    tasks = base.task_dict
    assert tasks["scores"].settings == {"severity": "'warning'"}
    assert tasks["auc"].settings == {"lower": "0.7"}
    assert tasks["predict"].settings == {"memory_warning_mb": "500"}
    assert tasks["count"].settings == {}  # Airflow's own @task: no ML settings

    severity = snapshot_of(
        edit(SETTINGS, ('@ml_check(severity="warning")', '@ml_check(severity="error")')), tmp_path
    )
    diff = diff_snapshots(base, severity)
    assert not diff.is_empty and diff.summary() == "1 task changed"
    assert [c.description for c in diff.changed] == ["check scores: severity warning -> error"]
    assert not diff.changed[0].code_changed

    metric = snapshot_of(
        edit(
            SETTINGS,
            (
                "@ml_metric(lower=0.7)",
                "@ml_metric(lower=0.8, regression=Regression(window=3, max_drop=0.05))",
            ),
        ),
        tmp_path,
    )
    (change,) = diff_snapshots(base, metric).changed
    assert change.description == (
        "metric auc: lower 0.7 -> 0.8, regression added (Regression(window=3, max_drop=0.05))"
    )
    assert change.to_dict()["settings"] == {
        "lower": ["0.7", "0.8"],
        "regression": [None, "Regression(window=3, max_drop=0.05)"],
    }

    more = snapshot_of(
        edit(
            SETTINGS,
            ("@ml_task(memory_warning_mb=500)", "@ml_task"),
            ('@ml_check(severity="warning")', '@ml_check(severity="warning", notifier=PagerNotifier())'),
        ),
        tmp_path,
    )
    assert [c.description for c in diff_snapshots(base, more).changed] == [
        "task predict: memory_warning_mb removed (was 500)",
        # The notifier is defined in the DAG file: the check now depends on its code (and import).
        "check scores: code changed (BaseNotifier, PagerNotifier), notifier added (PagerNotifier())",
    ]


def test_diff_with_file_hashes_reports_a_file_change_outside_the_tasks(tmp_path: Path) -> None:
    base = snapshot_of(SETTINGS, tmp_path)
    diff = diff_snapshots(base, base, old_file_hash="a" * 64, new_file_hash="b" * 64)
    assert diff.is_empty and diff.file_changed is True
    assert diff.summary() == "no structural change, but the DAG file changed"
    assert diff.to_dict()["descriptions"] == ["DAG file changed (no task's code or settings)"]
    assert diff_snapshots(base, base).file_changed is None  # not recorded: unknown, not "unchanged"
    assert (
        diff_snapshots(base, base, old_file_hash="a", new_file_hash="a").summary() == "no structural change"
    )


def test_version_1_snapshots_are_read_and_compared_by_function_only(tmp_path: Path) -> None:
    """Snapshots recorded before dependencies and settings existed do not make every task "changed"."""
    current = snapshot_of(SETTINGS, tmp_path)
    legacy = current.to_dict() | {"snapshot_version": 1}
    legacy["tasks"] = [
        {k: v for k, v in task.items() if k not in ("function_hash", "dependencies", "settings")}
        | ({"code_hash": task["function_hash"]} if task["function_hash"] else {})
        for task in legacy["tasks"]
    ]
    old = DagSnapshot.from_dict(legacy)
    assert old.task_dict["scores"].settings is None and old.task_dict["predict"].dependencies is None
    assert diff_snapshots(old, current).is_empty
    changed = snapshot_of(edit(SETTINGS, ("    return 0.9\n", "    return 0.8\n")), tmp_path)
    assert [c.description for c in diff_snapshots(old, changed).changed] == ["metric auc: code changed"]


def test_runtime_code_hash_matches_the_snapshot(tmp_path: Path) -> None:
    """``callable_code`` (used by ``@ml.task`` in the worker) hashes a task as the snapshot does."""
    import importlib.util

    from airflow_mlops_provider.snapshots.code import callable_code

    def load(source: str, name: str) -> Any:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    snap = snapshot_of(SETTINGS, tmp_path)
    module = load(SETTINGS, "mlops_structure_runtime_v1")
    predict = module.mlops_structure_settings().task_dict["predict"].python_callable
    source, code_hash = callable_code(predict)
    assert code_hash == snap.task_dict["predict"].code_hash
    assert source == snap.task_dict["predict"].source
    changed = load(edit(SETTINGS, ('"income"]', '"income", "city"]')), "mlops_structure_runtime_v2")
    assert (
        callable_code(changed.mlops_structure_settings().task_dict["predict"].python_callable)[1] != code_hash
    )

    lam = lambda: 1  # noqa: E731  # not findable by name: its own source text
    assert callable_code(lam)[0].startswith("lam = lambda: 1")


# -- store -------------------------------------------------------------------------------------------


def test_store_is_content_addressed_with_run_pointers(store: str, tmp_path: Path) -> None:
    snapshots = SnapshotStore(ArtifactStore(store, "aws_default"))
    v1 = snapshot_of(STRUCTURE, tmp_path)
    v2 = snapshot_of(edit(STRUCTURE, *V2_EDITS), tmp_path)
    assert snapshots.runs(v1.dag_id) == [] and snapshots.snapshot_for_run(v1.dag_id, "nope") is None

    snapshots.record(v1, "manual__2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00")
    snapshots.record(v1, "manual__2024-01-02T00:00:00+00:00", "2024-01-02T00:00:00+00:00")
    assert snapshots.snapshot_ids(v1.dag_id) == [v1.id]  # one object for two runs
    pointer = snapshots.record(v2, "scheduled/3", None, dag_version_id="abc")
    assert pointer["snapshot_id"] == v2.id and pointer["dag_version_id"] == "abc"
    assert snapshots.snapshot_ids(v1.dag_id) == sorted([v1.id, v2.id])
    assert (
        snapshots.snapshot_url(v1.dag_id, v1.id)
        == f"{store}/_snapshots/dag_id=mlops_snap_structure/{v1.id}.json"
    )

    runs = snapshots.runs(v1.dag_id)
    assert [r["run_id"] for r in runs] == [  # in the order the runs started (were recorded)
        "manual__2024-01-01T00:00:00+00:00",
        "manual__2024-01-02T00:00:00+00:00",
        "scheduled/3",  # no logical date: still placed by when it started, not first
    ]
    assert set(runs[1]) == {"snapshot_id", "dag_id", "run_id", "recorded_at", "logical_date"}
    assert snapshots.snapshot_for_run(v1.dag_id, "manual__2024-01-02T00:00:00+00:00") == v1
    assert snapshots.get(v1.dag_id, v2.id) == v2
    diff = snapshots.diff_runs(v1.dag_id, "manual__2024-01-01T00:00:00+00:00", "scheduled/3")
    assert diff is not None and [(r.old_id, r.new_id) for r in diff.renamed] == [("report", "summarize")]


def test_store_refuses_a_tampered_snapshot(tmp_path: Path) -> None:
    from airflow_mlops_provider import ArtifactIntegrityError

    artifacts = ArtifactStore((tmp_path / "artifacts").as_uri())
    snapshots = SnapshotStore(artifacts)
    snap = snapshot_of(STRUCTURE, tmp_path)
    snapshots.record(snap, "r1", None)
    url = snapshots.snapshot_url(snap.dag_id, snap.id)
    artifacts.put_bytes(url, artifacts.get_bytes(url).replace(b"echo publish", b"rm -rf /tmp/x"))
    with pytest.raises(ArtifactIntegrityError, match="does not match its content hash"):
        snapshots.snapshot_for_run(snap.dag_id, "r1")


# -- recorder ----------------------------------------------------------------------------------------


def _fake_run(run_id: str, dag_id: str = "mlops_snap_structure") -> SimpleNamespace:
    return SimpleNamespace(dag_id=dag_id, run_id=run_id, created_dag_version_id=None, logical_date=None)


@pytest.fixture
def broken_s3_store(monkeypatch: pytest.MonkeyPatch) -> SnapshotStore:
    set_unreachable_s3_connection(monkeypatch, "snap_broken_s3")
    return SnapshotStore(ArtifactStore("s3://nowhere/prefix", "snap_broken_s3"))


def test_store_outage_spools_then_flushes_on_the_next_successful_write(
    broken_s3_store: SnapshotStore, tmp_path: Path
) -> None:
    snap = snapshot_of(STRUCTURE, tmp_path)
    built: list[str] = []

    def builder(dag_id: str, version_id: str | None) -> tuple[DagSnapshot, dict[str, Any]]:
        built.append(dag_id)
        return snap, {"dag_version_id": "v1"}

    rec = SnapshotRecorder(
        broken_s3_store, spool_dir=tmp_path / "spool", retries=2, backoff=0.01, builder=builder
    )
    listener = DagRunSnapshotListener(rec)
    listener.on_dag_run_running(dag_run=_fake_run("r1"), msg="started")
    assert rec.flush(60)
    assert rec.stats["spooled"] == 1 and rec.stats["recorded"] == 0
    (spooled,) = rec.spooled()
    document = json.loads(spooled.read_text())
    assert document["job"]["run_id"] == "r1" and document["snapshot"]["dag_id"] == snap.dag_id

    # Completion of a spooled run does not build or spool it again.
    listener.on_dag_run_success(dag_run=_fake_run("r1"), msg="success")
    assert rec.flush(60) and built == ["mlops_snap_structure"] and len(rec.spooled()) == 1

    # During the cooldown a job gets a single attempt, so an outage does not build a backlog.
    started = time.monotonic()
    listener.on_dag_run_running(dag_run=_fake_run("r2"), msg="started")
    assert rec.flush(60) and rec.stats["spooled"] == 2 and len(rec.spooled()) == 2
    single_attempt = time.monotonic() - started

    good = SnapshotStore(ArtifactStore((tmp_path / "artifacts").as_uri()))
    rec.store = good
    listener.on_dag_run_running(dag_run=_fake_run("r3"), msg="started")
    assert rec.flush(60)
    assert rec.spooled() == []
    assert rec.stats["recorded"] == 1 and rec.stats["unspooled"] == 2
    assert [p["run_id"] for p in good.runs(snap.dag_id)] == ["r1", "r2", "r3"]
    assert good.snapshot_ids(snap.dag_id) == [snap.id]
    assert good.pointer(snap.dag_id, "r1")["spooled"] is True
    assert good.snapshot_for_run(snap.dag_id, "r2") == snap
    assert single_attempt < 30


def test_spool_survives_the_process_and_is_flushed_explicitly(tmp_path: Path) -> None:
    snap = snapshot_of(STRUCTURE, tmp_path)
    spool = tmp_path / "spool"

    def failing_builder(dag_id: str, version_id: str | None) -> Any:
        raise ConnectionError("metadata DB unavailable")

    first = SnapshotRecorder(
        SnapshotStore(ArtifactStore((tmp_path / "a").as_uri())),
        spool_dir=spool,
        retries=1,
        backoff=0.01,
        builder=failing_builder,
    )
    first.enqueue(_fake_run("r1"))
    assert first.flush(30) and first.stats["spooled"] == 1
    assert json.loads(first.spooled()[0].read_text())["snapshot"] is None  # rebuilt when flushed

    store = SnapshotStore(ArtifactStore((tmp_path / "a").as_uri()))
    second = SnapshotRecorder(store, spool_dir=spool, builder=lambda d, v: (snap, {"dag_version_id": "v"}))
    assert second.flush_spool() == 1 and second.spooled() == []
    assert store.pointer(snap.dag_id, "r1")["rebuilt_from_spool"] is True


def test_running_then_success_records_once(tmp_path: Path) -> None:
    snap = snapshot_of(STRUCTURE, tmp_path)
    store = SnapshotStore(ArtifactStore((tmp_path / "a").as_uri()))
    rec = SnapshotRecorder(store, spool_dir=tmp_path / "spool", builder=lambda d, v: (snap, {}))
    listener = DagRunSnapshotListener(rec)
    listener.on_dag_run_running(dag_run=_fake_run("r1"), msg="started")
    assert rec.flush(30)
    listener.on_dag_run_success(dag_run=_fake_run("r1"), msg="success")
    listener.on_dag_run_failed(dag_run=_fake_run("r2"), msg="failed")  # never seen running
    assert rec.flush(30)
    assert rec.stats["recorded"] == 2 and rec.stats["skipped"] == 1
    # A new process (empty memory) asks the store before re-recording a finished run.
    fresh = SnapshotRecorder(store, spool_dir=tmp_path / "spool", builder=lambda d, v: (snap, {}))
    fresh.enqueue(_fake_run("r1"), if_missing=True)
    assert fresh.flush(30) and fresh.stats == {**fresh.stats, "recorded": 0, "skipped": 1}


def test_enqueue_is_cheap_and_never_raises(tmp_path: Path) -> None:
    rec = SnapshotRecorder(
        SnapshotStore(ArtifactStore((tmp_path / "a").as_uri())),
        spool_dir=tmp_path / "spool",
        builder=lambda d, v: (_ for _ in ()).throw(DagNotSerializedError("gone")),
    )
    assert rec.enqueue(object()) is False  # not a DAG run: logged, not raised
    runs = [_fake_run(f"r{i}") for i in range(2000)]
    started = time.perf_counter()
    for run in runs:
        rec.enqueue(run)
    per_call = (time.perf_counter() - started) / len(runs)
    assert rec.flush(60)
    assert per_call < 0.001, f"enqueue took {per_call * 1e6:.1f} µs"


def test_recorder_works_in_a_forked_child(tmp_path: Path) -> None:
    snap = snapshot_of(STRUCTURE, tmp_path)
    store = SnapshotStore(ArtifactStore((tmp_path / "a").as_uri()))
    rec = SnapshotRecorder(store, spool_dir=tmp_path / "spool", builder=lambda d, v: (snap, {}))
    rec.enqueue(_fake_run("parent"))
    assert rec.flush(30)  # the parent's thread exists before the fork
    pid = os.fork()
    if pid == 0:  # child: a new queue and thread, not the parent's
        ok = rec.enqueue(_fake_run("child")) and rec.flush(30) and rec.stats["recorded"] == 2
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(p["run_id"] for p in store.runs(snap.dag_id)) == ["child", "parent"]


def test_default_spool_dir_is_under_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_spool_dir() == tmp_path / "mlops_spool" / "snapshots"


# -- end to end: the listener in real DAG runs --------------------------------------------------------


def _start_queued_run_like_the_scheduler(dag_id: str) -> str:
    """Queue a run and let ``SchedulerJobRunner._start_queued_dagruns`` start it (then finish it)."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select, update

    run_id = f"scheduler_path_{uuid.uuid4().hex[:8]}"
    with create_session() as session:
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        dag.create_dagrun(
            run_id=run_id,
            run_after=pendulum.now("UTC").subtract(minutes=1),  # SQLite compares with whole seconds
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.QUEUED,
            session=session,
        )
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=False))
    with create_session() as session:
        SchedulerJobRunner(job=Job())._start_queued_dagruns(session)
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        assert dag_run.state == DagRunState.RUNNING
        dag_run.state = DagRunState.SUCCESS  # do not leave a running run behind
    return run_id


@pytest.mark.slow
def test_each_run_points_to_the_structure_it_ran_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.listeners.listener import get_listener_manager
    from airflow_runner import run_dag

    from airflow_mlops_provider.snapshots.recorder import default_store, recorder, snapshot_listener

    root = (tmp_path / "artifacts").as_uri()
    monkeypatch.setenv("AIRFLOW__MLOPS__ARTIFACT_ROOT", root)
    # Let dag.test() write the edited DAG right away (the DAG processor waits 30 s by default).
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    dag_file = DAGS_DIR / "mlops_snap_evolving.py"
    v1_source = STRUCTURE.replace("mlops_snap_structure", "mlops_snap_evolving")
    v2_source = edit(v1_source, *V2_EDITS)
    manager = get_listener_manager()
    wired_by_plugin = manager.pm.is_registered(snapshot_listener)
    manager.add_listener(snapshot_listener)
    try:
        dag_file.write_text(v1_source)
        first = run_dag("mlops_snap_evolving")
        # dag.test() runs are recorded before dag.test() returns (the completion hook waits).
        assert default_store().pointer("mlops_snap_evolving", first.run_id) is not None
        second = run_dag("mlops_snap_evolving")
        assert recorder.flush(60)
        dag_file.write_text(v2_source)
        third = run_dag("mlops_snap_evolving")
        assert recorder.flush(60)
        # dag.test() creates its run as running, so only the completion hook fired so far; this is
        # the scheduler's own queued -> running transition, which fires on_dag_run_running.
        scheduled_run_id = _start_queued_run_like_the_scheduler("mlops_snap_evolving")
        assert recorder.flush(60)
    finally:
        if not wired_by_plugin:
            manager.pm.unregister(snapshot_listener)
        dag_file.unlink(missing_ok=True)
    assert first.state == second.state == third.state == "success", third.task_states

    store = default_store()
    assert store.artifacts.root == root
    dag_id = "mlops_snap_evolving"
    v1, v2 = snapshot_of(v1_source, tmp_path), snapshot_of(v2_source, tmp_path)
    # Built in the recorder from the metadata DB (SerializedDagModel + DagCode of the run's version),
    # identical to a snapshot of the file parsed here.
    assert store.snapshot_for_run(dag_id, first.run_id) == v1
    assert store.snapshot_for_run(dag_id, second.run_id) == v1
    assert store.snapshot_for_run(dag_id, third.run_id) == v2
    pointers = {p["run_id"]: p for p in store.runs(dag_id)}
    assert set(pointers) == {first.run_id, second.run_id, third.run_id, scheduled_run_id}
    assert pointers[first.run_id]["dag_version_id"] == pointers[second.run_id]["dag_version_id"]
    assert pointers[third.run_id]["dag_version_number"] > pointers[first.run_id]["dag_version_number"]
    # Two runs of the unchanged DAG cost one snapshot object; the edited DAG adds one.
    assert store.snapshot_ids(dag_id) == sorted([v1.id, v2.id])

    assert store.snapshot_for_run(dag_id, scheduled_run_id) == v2

    diff = store.diff_runs(dag_id, second.run_id, third.run_id)
    assert diff is not None
    assert [(r.old_id, r.new_id) for r in diff.renamed] == [("report", "summarize")]
    assert {c.task_id for c in diff.changed} == {"done", "per_shard.shard_work", "predict", "publish"}
    assert diff.edges_added == (("summarize", "done"),)
    assert store.diff_runs(dag_id, first.run_id, second.run_id).is_empty
