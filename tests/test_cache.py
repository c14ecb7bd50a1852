"""``@ml.task(cache=...)``: hits reuse verified outputs, every change misses, nothing breaks another run.

The DAG file is written from a template so a test can change one thing at a time: the code of a
task, the cache version, the upstream data (an environment variable the upstream reads), the params.
Each cached function appends its name to a calls file, so "the function ran" is read, not guessed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from airflow_runner import RunResult, load_dags, run_dag
from conftest import DAGS_DIR, airflow

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Reference
from airflow_mlops_provider.records import TASK_KEY

if TYPE_CHECKING:
    from pathlib import Path

DAG_ID = "mlops_cache_pipeline"
TEMPLATE = """
from __future__ import annotations

import os

import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml


def called(name: str) -> None:
    with open(os.environ["MLOPS_CACHE_CALLS"], "a") as calls:
        calls.write(name + "\\n")


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, params={"factor": 2})
def DAG_ID():
    @ml.task
    def load() -> pd.DataFrame:
        rows = int(os.environ.get("MLOPS_CACHE_ROWS", "4"))
        return pd.DataFrame({"x": range(rows), "name": [f"n{i}" for i in range(rows)]})

    @ml.task
    def sizes() -> list[int]:
        return [int(s) for s in os.environ.get("MLOPS_CACHE_SIZES", "1,2,3").split(",")]

    @ml.task(cache=True)
    def features(df: pd.DataFrame) -> pd.DataFrame:
        called("features")
        return df.assign(double=df["x"] * 2)  # FEATURES

    @ml.task(cache=ml.Cache(version=os.environ.get("MLOPS_CACHE_VERSION", "1")), multiple_outputs=True)
    def train(df: pd.DataFrame, params=None) -> dict:
        called("train")
        return {"model": {"weights": [float(df["double"].sum()) * params["factor"]]}, "rows": len(df)}

    @ml.task(cache=True)
    def score(size: int, threshold: float = 0.5) -> dict:
        called(f"score[{size}]")
        return {"size": size, "above": size > threshold}

    model = train(features(load()))
    score.expand(size=sizes())
    return model


DAG_ID()
""".replace("DAG_ID", DAG_ID)


def write_dag(source: str = TEMPLATE) -> None:
    (DAGS_DIR / f"{DAG_ID}.py").write_text(source)


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls.txt"
    path.touch()
    monkeypatch.setenv("MLOPS_CACHE_CALLS", str(path))
    write_dag()
    yield path
    (DAGS_DIR / f"{DAG_ID}.py").unlink(missing_ok=True)


def run(calls: Path, **kwargs: Any) -> tuple[RunResult, list[str]]:
    """Run the DAG; returns the run and the cached functions that ran in it."""
    before = calls.read_text().splitlines()
    result = run_dag(DAG_ID, **kwargs)
    assert result.state == "success", result.task_states
    return result, calls.read_text().splitlines()[len(before) :]


def cache_info(result: RunResult, task_id: str, map_index: int = -1) -> dict[str, Any]:
    return result.row(task_id, TASK_KEY, map_index)["cache"]


def references(row: Any) -> list[Reference]:
    from airflow_mlops_provider.artifacts import codec

    return [Reference.from_row(r) for _, r in codec.iter_references(row)]


def test_a_rerun_with_nothing_changed_reuses_every_output(
    store: str, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, ran = run(calls)
    assert sorted(ran) == ["features", "score[1]", "score[2]", "score[3]", "train"]
    assert cache_info(first, "features")["hit"] is None

    loaded: list[str] = []
    read = ArtifactManager.load_reference

    def load_reference(self: ArtifactManager, reference: Reference) -> Any:
        loaded.append(reference.producer.task_id)
        return read(self, reference)

    monkeypatch.setattr(ArtifactManager, "load_reference", load_reference)
    second, ran = run(calls)
    assert ran == [], "a cached function ran although nothing changed"
    # A hit never loads its inputs (the key needs their hashes only), yet records them as read.
    assert not {"load", "features"} & set(loaded), loaded
    (read_by_features,) = second.row("features", TASK_KEY)["inputs"]
    assert read_by_features["producer"]["task_id"] == "load"
    hit = cache_info(second, "features")
    assert hit["key"] == cache_info(first, "features")["key"]
    assert (hit["hit"]["run_id"], hit["hit"]["task_id"]) == (first.run_id, "features")
    assert [cache_info(second, "score", i)["hit"]["map_index"] for i in range(3)] == [0, 1, 2]

    # The new rows point at this run's own folder, holding the same bytes.
    manager = ArtifactManager.configured()
    (old,), (new,) = references(first.row("features")), references(second.row("features"))
    assert new.sha256 == old.sha256 and new.uri != old.uri
    assert layout.write_folder_of(new.uri).run_id == layout.safe_component(second.run_id)
    pd.testing.assert_frame_equal(manager.load(second.row("features")), manager.load(first.row("features")))
    # multiple_outputs: each key and the whole dict come back as they were computed.
    assert manager.load(second.row("train", "model")) == {"weights": [24.0]}
    assert manager.load(second.row("train", "rows")) == 4
    assert manager.load(second.row("score", map_index=2)) == {"size": 3, "above": True}
    # The manifest of the reused artifact says where it came from.
    manifest = json.loads(manager.store.get_bytes(new.manifest_uri))
    assert manifest["execution"]["cache"]["hit"]["run_id"] == first.run_id
    assert new.details["reused_from"] == old.uri
    # The hit's staging copy (see caching.claim) is gone once the rows are written.
    assert not [i.relative for i in manager.store.walk() if "mlops.cache_staging" in i.relative]


def test_each_change_misses_exactly_where_it_should(
    store: str, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(calls)
    # Upstream data changed: features and train miss (train's input changed), score hits.
    monkeypatch.setenv("MLOPS_CACHE_ROWS", "5")
    _, ran = run(calls)
    assert sorted(ran) == ["features", "train"]
    # A param changed: every cached task's key includes the params.
    result, ran = run(calls, run_conf={"factor": 3})
    assert sorted(ran) == ["features", "score[1]", "score[2]", "score[3]", "train"]
    manager = ArtifactManager.configured()
    assert manager.load(result.row("train", "model")) == {"weights": [60.0]}
    # The cache version changed: only train (the task with that policy) misses.
    monkeypatch.setenv("MLOPS_CACHE_VERSION", "2")
    _, ran = run(calls)
    assert ran == ["train"]
    # One mapped input changed: only that map index misses.
    monkeypatch.setenv("MLOPS_CACHE_SIZES", "1,2,4")
    _, ran = run(calls)
    assert ran == ["score[4]"]
    # The code of features changed: it misses, and so does train (its input's bytes changed).
    write_dag(TEMPLATE.replace('df["x"] * 2)  # FEATURES', 'df["x"] * 2.0)  # FEATURES'))
    _, ran = run(calls)
    assert sorted(ran) == ["features", "train"]
    # Nothing changed, but the run says cache=False: every cached task runs.
    result, ran = run(calls, run_conf={"cache": False})
    assert sorted(ran) == ["features", "score[1]", "score[2]", "score[4]", "train"]
    assert cache_info(result, "features")["disabled"] is True
    _, ran = run(calls)
    assert ran == []


def test_a_deleted_or_corrupted_cached_object_is_a_miss(store: str, calls: Path) -> None:
    first, _ = run(calls)
    manager = ArtifactManager.configured()
    (reference,) = references(first.row("features"))
    expected = manager.load(first.row("features"))
    data = manager.store.get_bytes(reference.data_uri)
    manager.store.put_bytes(reference.data_uri, data[:-8] + b"\0" * 8)  # same size, other bytes
    # The entry still points at the first run's folder only if nothing rewrote it: run twice, the
    # second run's hit must not have happened on corrupted bytes.
    second, ran = run(calls)
    assert "features" in ran, "a corrupted cached object was reused"
    pd.testing.assert_frame_equal(manager.load(second.row("features")), expected)

    (reference,) = references(second.row("features"))
    manager.store.delete_dir(reference.data_uri)
    third, ran = run(calls)
    assert "features" in ran, "a deleted cached object was reused"
    pd.testing.assert_frame_equal(manager.load(third.row("features")), expected)


def test_outputs_gone_between_verification_and_copy_are_a_miss_not_a_failed_try(
    store: str, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc or a purge may delete a hit's source after it verified: the task runs instead of failing."""
    from airflow_mlops_provider import caching

    first, _ = run(calls)
    expected = ArtifactManager.configured().load(first.row("features"))
    verified = caching.find_hit

    def verify_then_lose(manager: ArtifactManager, *args: Any, task_id: str, **kwargs: Any) -> Any:
        entry = verified(manager, *args, task_id=task_id, **kwargs)
        if entry is not None and task_id == "features":  # gc or a purge strikes right after the check
            manager.purge(entry.row)
        return entry

    with monkeypatch.context() as patched:
        patched.setattr(caching, "find_hit", verify_then_lose)
        second, ran = run(calls)  # asserts the run succeeded
    assert ran == ["features"]  # a miss: the function ran; train's input has the same bytes: a hit
    info = cache_info(second, "features")
    assert info["hit"] is None and info["lost"] == f"{first.run_id}/features"
    pd.testing.assert_frame_equal(ArtifactManager.configured().load(second.row("features")), expected)
    _, ran = run(calls)
    assert ran == [], "the miss did not record its outputs for the next run"


def test_gc_drops_cache_entries_whose_outputs_are_gone(store: str, calls: Path) -> None:
    first, _ = run(calls)
    manager = ArtifactManager.configured()
    manager.purge(first.row("features"))  # as `airflow db clean` + gc, or a purge, would leave it
    gc = airflow("mlops", "gc", "--grace", "0s", "--output", "json")
    assert gc.returncode == 0, gc.stderr[-3000:]
    entries = json.loads(gc.stdout)["cache_entries"]
    assert entries["dropped"] == 1 and entries["kept"] == 4, entries
    assert "task_id=features/" in entries["items"][0]
    gc = airflow("mlops", "gc", "--grace", "0s")
    assert "Cache entries: dropped 0 whose outputs are gone, kept 4" in gc.stdout, gc.stdout
    _, ran = run(calls)
    assert ran == ["features"]


def test_purging_and_gc_of_the_computing_run_never_break_the_run_that_reused_it(
    store: str, calls: Path
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_mlops_provider.cli.gc import collect_garbage
    from airflow_mlops_provider.xcom.backend import ArtifactXComBackend

    first, _ = run(calls)
    second, ran = run(calls)
    assert ran == []
    manager = ArtifactManager.configured()
    with create_session() as session:  # the first run's XComs go, as `airflow db clean` would do
        rows = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=first.run_id).all()
        for row in rows:
            ArtifactXComBackend.purge(row)
            session.delete(row)
    (first_features,) = references(first.row("features"))
    assert not manager.store.exists(first_features.data_uri), "the first run's artifacts were not purged"
    collect_garbage(manager.store, grace=timedelta(0))
    assert manager.load(second.row("features"))["double"].tolist() == [0, 2, 4, 6]
    assert manager.load(second.row("train", "model")) == {"weights": [24.0]}
    # The cache lives on through the run that reused it: the entry was rewritten to its copies.
    third, ran = run(calls)
    assert ran == []
    assert cache_info(third, "features")["hit"]["run_id"] == second.run_id


def test_deduplicated_hits_link_the_same_shared_object(
    store: str, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DEDUPLICATE", "True")
    first, _ = run(calls)
    second, ran = run(calls)
    assert ran == []
    (old,), (new,) = references(first.row("features")), references(second.row("features"))
    assert old.blob is not None and new.blob == old.blob
    pd.testing.assert_frame_equal(
        ArtifactManager.configured().load(second.row("features")),
        ArtifactManager.configured().load(first.row("features")),
    )


def test_cache_clear_forgets_one_task_or_the_whole_dag(store: str, calls: Path) -> None:
    run(calls)
    clear = airflow("mlops", "cache", "clear", DAG_ID, "features", "--output", "json")
    assert clear.returncode == 0, clear.stderr[-3000:]
    report = json.loads(clear.stdout)
    assert len(report["deleted"]) == 1 and "task_id=features/" in report["deleted"][0]
    _, ran = run(calls)
    assert ran == ["features"]  # its output is byte-identical, so train still hits

    clear = airflow("mlops", "cache", "clear", DAG_ID)
    assert clear.returncode == 0, clear.stderr[-3000:]
    assert "Cleared 5 cache entries of DAG 'mlops_cache_pipeline'" in clear.stdout
    _, ran = run(calls)
    assert sorted(ran) == ["features", "score[1]", "score[2]", "score[3]", "train"]


MAPPED_GROUP = """
from __future__ import annotations

import os

import pandas as pd
import pendulum
from airflow.sdk import dag, task_group

from airflow_mlops_provider import ml


def called(name: str) -> None:
    with open(os.environ["MLOPS_CACHE_CALLS"], "a") as calls:
        calls.write(name + "\\n")


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_cache_mapped_group():
    @ml.task
    def sizes() -> list[int]:
        return [int(s) for s in os.environ.get("MLOPS_CACHE_SIZES", "2,3").split(",")]

    @task_group
    def per_size(size: int):
        @ml.task
        def make(size: int) -> pd.DataFrame:
            return pd.DataFrame({"x": range(size)})

        @ml.task(cache=True)
        def total(df: pd.DataFrame) -> pd.DataFrame:
            called(f"total[{len(df)}]")
            return df.assign(t=df["x"] * 10)

        return total(make(size))

    @ml.task(cache=True)
    def combine(frames: list[pd.DataFrame]) -> int:
        called("combine")
        return int(sum(frame["t"].sum() for frame in frames))

    combine(per_size.expand(size=sizes()))


mlops_cache_mapped_group()
"""


def test_a_cached_task_in_an_expanded_task_group_hits_per_map_index(
    store: str, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs from inside a mapped task group (same index, or all of them downstream) key and reuse right."""
    (DAGS_DIR / "mlops_cache_mapped_group.py").write_text(MAPPED_GROUP)
    try:

        def run_group() -> tuple[RunResult, list[str], list[int], int]:
            before = calls.read_text().splitlines()
            result = run_dag("mlops_cache_mapped_group")
            assert result.state == "success", result.task_states
            manager = ArtifactManager.configured()
            frames = [manager.load(result.row("per_size.total", map_index=i)) for i in range(2)]
            combined = manager.load(result.row("combine"))
            return (
                result,
                calls.read_text().splitlines()[len(before) :],
                [f["t"].tolist() for f in frames],
                combined,
            )

        first, ran, totals, combined = run_group()
        assert sorted(ran) == ["combine", "total[2]", "total[3]"]
        assert (totals, combined) == ([[0, 10], [0, 10, 20]], 40)
        second, ran, totals, combined = run_group()
        assert ran == [], "a cached task in or after a mapped task group ran although nothing changed"
        assert (totals, combined) == ([[0, 10], [0, 10, 20]], 40)
        for i in range(2):
            hit = cache_info(second, "per_size.total", i)["hit"]
            assert (hit["run_id"], hit["map_index"]) == (first.run_id, i)
        monkeypatch.setenv("MLOPS_CACHE_SIZES", "2,4")
        third, ran, totals, combined = run_group()
        assert sorted(ran) == ["combine", "total[4]"]
        assert (totals, combined) == ([[0, 10], [0, 10, 20, 30]], 70)
        assert cache_info(third, "per_size.total", 0)["hit"]["map_index"] == 0
        assert cache_info(third, "per_size.total", 1)["hit"] is None
    finally:
        (DAGS_DIR / "mlops_cache_mapped_group.py").unlink(missing_ok=True)


UNCACHEABLE = {
    "ti": ("def f(ti):\n        return 1\n", "parameter 'ti' receives Airflow's live 'ti' object"),
    "kwargs": ("def f(x: int, **context):\n        return x\n", "**context receives Airflow's whole context"),
    "default": (
        "def f(lock=threading.Lock()):\n        return 1\n",
        "the default of parameter 'lock' is a _thread.lock",
    ),
}


@pytest.mark.parametrize("case", sorted(UNCACHEABLE))
def test_uncacheable_inputs_fail_at_parse_time_naming_the_parameter(case: str) -> None:
    body, message = UNCACHEABLE[case]
    path = DAGS_DIR / "mlops_cache_uncacheable.py"
    path.write_text(
        "import threading\n\nimport pendulum\nfrom airflow.sdk import dag\n\n"
        "from airflow_mlops_provider import ml\n\n\n"
        "@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1))\n"
        f"def mlops_cache_uncacheable():\n    @ml.task(cache=True)\n    {body}\n\n"
        "mlops_cache_uncacheable()\n"
    )
    try:
        from airflow_runner import dagbag_class

        bag = dagbag_class()(dag_folder=str(path), safe_mode=False)
        (error,) = bag.import_errors.values()
        assert "Task 'f' has cache=True, but" in error and message in error, error
    finally:
        path.unlink(missing_ok=True)


def test_a_literal_live_object_argument_fails_at_parse_time(calls: Path) -> None:
    write_dag(
        TEMPLATE.replace("score.expand(size=sizes())", "features(threading.Lock())").replace(
            "import os\n", "import os\nimport threading\n", 1
        )
    )
    with pytest.raises(AssertionError, match=r"parameter .{1,3}df.{1,3} is a _thread.lock"):
        load_dags(DAG_ID)


SCOPED = """
from __future__ import annotations

import os
from datetime import datetime, timedelta

import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml


def called(name: str) -> None:
    with open(os.environ["MLOPS_CACHE_CALLS"], "a") as calls:
        calls.write(name + "\\n")


def build(dag_id: str, policy: ml.Cache):
    @dag(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
    def scoped():
        @ml.task
        def load() -> pd.DataFrame:
            return pd.DataFrame({"x": [1, 2, 3]})

        @ml.task(cache=policy)
        def features(df: pd.DataFrame) -> pd.DataFrame:
            called(dag_id)
            return df.assign(y=df["x"] + 1)

        features(load())

    return scoped()


build("mlops_cache_global_a", ml.Cache(scope="global"))
build("mlops_cache_global_b", ml.Cache(scope="global"))
build("mlops_cache_dag_scoped", ml.Cache())
build("mlops_cache_expiring", ml.Cache(expire=timedelta(hours=1)))
"""


def test_global_scope_reuses_another_dags_outputs_and_expire_ages_them_out(
    store: str, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_mlops_provider import caching

    (DAGS_DIR / "mlops_cache_scoped.py").write_text(SCOPED)
    try:

        def run_scoped(dag_id: str) -> tuple[RunResult, list[str]]:
            before = calls.read_text().splitlines()
            result = run_dag("mlops_cache_scoped", dag_id)
            assert result.state == "success", result.task_states
            return result, calls.read_text().splitlines()[len(before) :]

        a, ran = run_scoped("mlops_cache_global_a")
        assert ran == ["mlops_cache_global_a"]
        b, ran = run_scoped("mlops_cache_global_b")
        assert ran == [], "a global-scope task did not reuse another DAG's outputs"
        assert cache_info(b, "features")["hit"]["dag_id"] == "mlops_cache_global_a"
        (old,), (new,) = references(a.row("features")), references(b.row("features"))
        assert new.sha256 == old.sha256
        assert layout.write_folder_of(new.uri).dag_id == "mlops_cache_global_b"  # its own copy
        _, ran = run_scoped("mlops_cache_dag_scoped")
        assert ran == ["mlops_cache_dag_scoped"], "a DAG-scoped task reused another DAG's outputs"

        _, ran = run_scoped("mlops_cache_expiring")
        assert ran == ["mlops_cache_expiring"]
        _, ran = run_scoped("mlops_cache_expiring")
        assert ran == []

        class AnHourLater(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:
                return datetime.now(tz) + timedelta(hours=1, seconds=1)

        monkeypatch.setattr(caching, "datetime", AnHourLater)
        _, ran = run_scoped("mlops_cache_expiring")
        assert ran == ["mlops_cache_expiring"], "expired outputs were reused"
    finally:
        (DAGS_DIR / "mlops_cache_scoped.py").unlink(missing_ok=True)
