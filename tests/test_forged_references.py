"""A reference in one DAG's XCom row that points at another DAG's artifact is refused everywhere.

Anyone who may write DAG A's XComs can write a row whose reference names DAG B's artifact. The
catalog refuses it (nothing of B's artifact is read), the ML view shows it as refused on every page
and JSON route of both faces, and the notebook API raises instead of loading. Legitimate references
outside a plain write of the row's task (deduplicated objects, an ``ArtifactRef`` returned by a task
and copied, unsafe DAG ids) stay ``ok``.

The views are exercised in-process: the FastAPI app through its test client, the FAB view's methods
inside a Flask request context, with a stand-in auth manager.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from airflow_runner import run_dag, set_raw_xcom
from conftest import DAGS_DIR

from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Manifest, Producer, Reference
from airflow_mlops_provider.artifacts.refs import ArtifactRef
from airflow_mlops_provider.catalog.artifacts import artifact_entries
from airflow_mlops_provider.catalog.records import XComEntry
from airflow_mlops_provider.exceptions import RefusedReferenceError

if TYPE_CHECKING:
    from collections.abc import Iterator

A, B = "dag_a", "dag_b"


def _producer(dag_id: str) -> Producer:
    return Producer(dag_id, "manual__1", "make", -1, "return_value", 1)


def _row(value: Any, dag_id: str = A) -> XComEntry:
    return XComEntry(dag_id, "manual__1", "make", -1, "return_value", value)


def _only(rows: list[XComEntry], manager: ArtifactManager) -> Any:
    (entry,) = artifact_entries(rows, manager, previews=True)
    return entry


# -- the catalog ---------------------------------------------------------------------------------------


def test_a_reference_into_another_dags_folder_is_refused_unread(manager: ArtifactManager) -> None:
    theirs = manager.dump(np.arange(5), _producer(B))
    claimed = {**theirs, "producer": {**theirs["producer"], "dag_id": A}}  # the row also lies about it

    for forged in (theirs, claimed):
        entry = _only([_row(forged)], manager)
        assert entry.status == "refused" and entry.points_to == f"DAG {B!r}"
        assert f"write folder of DAG {B!r}" in entry.error
        assert entry.preview is None and entry.manifest is None and entry.preview_error is None
        error = entry.refusal()
        assert isinstance(error, RefusedReferenceError)
        assert all(text in str(error) for text in (repr(A), repr(B), "'make'", "'return_value'"))


def test_references_the_manifest_disagrees_with_are_refused(manager: ArtifactManager) -> None:
    ours = manager.dump(np.arange(5), _producer(A))
    theirs = manager.dump(np.arange(7), _producer(B))
    # The row names our folder but another object's bytes: the shared object of B's content hash.
    blob = manager.store.content_url(theirs["sha256"], ".npy")
    swapped = {**ours, "blob": blob, "sha256": theirs["sha256"], "size_bytes": theirs["size_bytes"]}
    entry = _only([_row(swapped)], manager)
    assert entry.status == "refused" and "manifest records other bytes" in entry.error
    # A "shared object" that is another DAG's write-folder object.
    entry = _only([_row({**ours, "blob": theirs["uri"]})], manager)
    assert entry.status == "refused" and "not the shared object" in entry.error
    # The manifest beside our object says another DAG wrote it.
    reference = Reference.from_row(ours)
    manifest = Manifest.from_json(manager.store.get_bytes(reference.manifest_uri))
    other = dataclasses.replace(manifest.reference, producer=_producer(B))
    manager.store.put_bytes(reference.manifest_uri, dataclasses.replace(manifest, reference=other).to_json())
    entry = _only([_row(ours)], manager)
    assert entry.status == "refused" and f"manifest says DAG {B!r}" in entry.error
    assert entry.preview is None and entry.manifest is None


def test_a_reference_outside_any_write_folder_is_refused(manager: ArtifactManager) -> None:
    ours = manager.dump(np.arange(5), _producer(A))
    forged = {**ours, "uri": manager.store.url(f"_snapshots/dag_id={B}/abc.json")}
    entry = _only([_row(forged)], manager)
    assert entry.status == "refused" and entry.points_to == "no DAG's artifact"


@pytest.mark.parametrize("dedup", [False, True], ids=["plain", "dedup"])
def test_legitimate_references_are_not_refused(
    store: str, monkeypatch: pytest.MonkeyPatch, dedup: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DEDUPLICATE", str(dedup))
    manager = ArtifactManager()
    upstream = manager.dump(np.arange(5), _producer(B))
    same_bytes = manager.dump(np.arange(5), _producer(A))  # deduplicated: B's shared object
    # A task of A returns an ArtifactRef it received from B (xcom_pull across DAGs): copied.
    handle = ArtifactRef(Reference.from_row(upstream), manager)
    copied = manager.dump({"model": handle, "also": [handle]}, _producer(A))
    unsafe = "team a/etl.v2"
    odd = manager.dump(np.arange(3), _producer(unsafe))

    entries = artifact_entries([_row(same_bytes), _row(copied), _row(odd, unsafe)], manager, previews=True)

    assert [(e.path, e.status) for e in entries] == [
        ("", "ok"),
        ("['model']", "ok"),
        ("['also'][0]", "ok"),
        ("", "ok"),
    ]
    assert all(e.manifest is not None and e.preview is not None for e in entries)
    if dedup:
        assert same_bytes["blob"] == upstream["blob"] == copied["model"]["blob"]


# -- the notebook API and the ML view, on real runs -----------------------------------------------------

DAG_FILE = """
from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.decorators import ml_task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_forged_reader():
    @ml_task
    def own() -> pd.DataFrame:
        return pd.DataFrame({"ours": [1, 2]})

    @task
    def boom() -> None:
        raise ValueError("boom")

    own()
    boom()


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_forged_secret():
    @ml_task
    def secret() -> pd.DataFrame:
        # TOP-SECRET-CODE
        return pd.DataFrame({"secret": ["TOP-SECRET-PREVIEW"]})

    secret()


mlops_forged_reader()
mlops_forged_secret()
"""
READER, SECRET = "mlops_forged_reader", "mlops_forged_secret"
TRACEBACK = "Traceback (most recent call last):\n  ...\nValueError: SECRET-TRACEBACK-LINE"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, str]]:

    path = DAGS_DIR / "mlops_forged.py"
    path.write_text(DAG_FILE)
    try:
        reader = run_dag("mlops_forged", READER)
        secret = run_dag("mlops_forged", SECRET)
        theirs = secret.row("secret")
        root = ArtifactManager().store.root
        odd = {
            **theirs,
            "uri": f"{root}/dag_id={XSS}/run_id=r/task_id=t/map_index=-1/key=k/try=1-ab/0.parquet",
        }
        set_raw_xcom("forged", [theirs, odd], dag_id=READER, task_id="own", run_id=reader.run_id)
        yield {"reader": reader.run_id, "secret": secret.run_id}
    finally:
        path.unlink(missing_ok=True)


def test_the_notebook_api_refuses_to_load(runs: dict[str, str]) -> None:
    from airflow_mlops_provider.notebook import get_xcom, list_artifacts, load_artifact

    for call in (load_artifact, get_xcom):
        with pytest.raises(RefusedReferenceError) as raised:
            call(READER, runs["reader"], "own", key="forged")
        message = str(raised.value)
        for text in (repr(READER), "'own'", "'forged'", f"DAG {SECRET!r}"):
            assert text in message, (text, message)
    assert len(load_artifact(READER, runs["reader"], "own")) == 2  # its own artifact loads
    listed = list_artifacts(READER, runs["reader"], "own", key="forged")
    assert [(item["path"], item["status"]) for item in listed] == [("[0]", "refused"), ("[1]", "refused")]
    assert all("created_at" not in item for item in listed)  # nothing read from B's manifest


class User:
    def __init__(self, name: str, logs: bool) -> None:
        self.name, self.logs = name, logs

    def get_id(self) -> str:
        return self.name

    def get_name(self) -> str:
        return self.name


class AuthManager:
    """Reads every DAG; reads task logs only when the user may."""

    def __init__(self, user: User) -> None:
        self.user = user

    def is_authorized_dag(
        self, *, method: str, access_entity: Any = None, details: Any = None, user: Any = None
    ) -> bool:
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

        assert method == "GET" and user is self.user
        return user.logs or access_entity != DagAccessEntity.TASK_LOGS

    def get_authorized_dag_ids(self, *, user: Any = None, method: str = "GET", **_: Any) -> set[str]:
        return {READER, SECRET}

    def get_user(self) -> User:
        return self.user


@pytest.fixture(params=[True, False], ids=["logs", "no-logs"])
def user(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> User:
    import airflow.api_fastapi.app
    import airflow.api_fastapi.core_api.security

    from airflow_mlops_provider.catalog import task_logs

    who = User("reader", logs=request.param)
    manager = AuthManager(who)
    for module in (airflow.api_fastapi.app, airflow.api_fastapi.core_api.security):
        monkeypatch.setattr(module, "get_auth_manager", lambda: manager)
    # dag.test() logs to the console: the failed task's traceback comes from this stand-in log reader.
    monkeypatch.setattr(task_logs, "read_task_exit", lambda *a, **k: task_logs.TaskExit(traceback=TRACEBACK))
    return who


def _fastapi_pages(run_id: str, user: User) -> dict[str, str]:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from airflow_mlops_provider.ui.app import create_app

    app = create_app()
    app.dependency_overrides[get_user] = lambda: user
    client = TestClient(app)
    out = {}
    for name, path in (
        ("overview", "/"),
        ("overview.json", "/api/overview"),
        ("run", f"/dags/{READER}/runs/{run_id}"),
        ("run.json", f"/api/dags/{READER}/runs/{run_id}"),
        ("task", f"/dags/{READER}/runs/{run_id}/tasks/own"),
        ("task.json", f"/api/dags/{READER}/runs/{run_id}/tasks/own"),
        ("boom", f"/dags/{READER}/runs/{run_id}/tasks/boom"),
        ("boom.json", f"/api/dags/{READER}/runs/{run_id}/tasks/boom?map_index=%7BMAP_INDEX%7D"),
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:2000])
        out[name] = response.text
    return out


def _fab_pages(run_id: str) -> dict[str, str]:
    from flask import Flask

    from airflow_mlops_provider.ui.fab_view import MLOpsFabView

    view, app = MLOpsFabView(), Flask(__name__)
    out = {}
    for name, method, kwargs, query in (
        ("overview", MLOpsFabView.overview, {}, ""),
        ("run", MLOpsFabView.run, {"run_id": run_id}, ""),
        ("task", MLOpsFabView.task, {"run_id": run_id, "task_id": "own"}, ""),
        ("boom", MLOpsFabView.task, {"run_id": run_id, "task_id": "boom"}, "?map_index=-1"),
    ):
        if name != "overview":
            kwargs = {"dag_id": READER, **kwargs}
        with app.test_request_context(f"/mlops/{query}"):
            # The permission decorators need the FAB app; this calls what they guard.
            out[name] = method.__wrapped__(view, **kwargs)
    return out


def _assert_refused_and_escaped(pages: dict[str, str]) -> None:
    for name, text in pages.items():
        assert "TOP-SECRET" not in text, name
        assert name.endswith(".json") or XSS not in text, name  # JSON carries the row's text as is
    for name in ("run", "task"):
        assert "status-refused" in pages[name] and f"DAG {SECRET!r}".replace("'", "&#39;") in pages[name]
        assert "&lt;img src=x onerror=alert(1)&gt;" in pages[name]
    for name in ("run.json", "task.json"):
        if name in pages:
            assert pages[name].count('"status":"refused"') == 2


def _assert_logs(pages: dict[str, str], user: User) -> None:
    for name in ("boom", "run", "overview", "boom.json", "run.json", "overview.json"):
        if name in pages:
            assert ("SECRET-TRACEBACK-LINE" in pages[name]) is user.logs, name


def test_the_fastapi_view_shows_refused_references_as_refused(runs: dict[str, str], user: User) -> None:
    pages = _fastapi_pages(runs["reader"], user)
    _assert_refused_and_escaped(pages)
    assert "TOP-SECRET-CODE" not in pages["task"] and "def own" in pages["task"]


def test_the_fab_view_shows_refused_references_as_refused(runs: dict[str, str], user: User) -> None:
    _assert_refused_and_escaped(_fab_pages(runs["reader"]))


def test_the_fastapi_view_shows_log_excerpts_only_with_log_access(runs: dict[str, str], user: User) -> None:
    _assert_logs(_fastapi_pages(runs["reader"], user), user)


def test_the_fab_view_shows_log_excerpts_only_with_log_access(runs: dict[str, str], user: User) -> None:
    _assert_logs(_fab_pages(runs["reader"]), user)
