"""The ML view through a real ``airflow api-server`` with the FAB auth manager.

One module-scoped fixture runs the test DAGs with ``dag.test()`` (so XComs, artifacts, previews
and structure snapshots are real), creates two FAB users (``admin``, and ``limited`` who may read
only ``mlops_ui_other``), starts the API server with the plugin mounted at ``/mlops`` and logs both
users in through ``POST /auth/token``. The tests then speak HTTP to it, as the UI's iframe does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from conftest import DAGS_DIR, api_server_process

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SCRIPT = "<script>alert(1)</script>"

EVOLVING_V1 = """
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.decorators import ml_metric


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_ui_evolving():
    @task
    def extract() -> int:
        return 1

    @task
    def legacy(value: int) -> int:
        return value

    @ml_metric(lower=0.5, severity="warning")
    def quality(value: int) -> float:
        return 0.9

    value = extract()
    legacy(value)
    quality(value)


mlops_ui_evolving()
"""
EVOLVING_V2 = EVOLVING_V1.replace(
    "    value = extract()\n    legacy(value)\n    quality(value)\n",
    "    @task\n    def clean(value: int) -> int:\n        return value * 2\n\n"
    "    quality(clean(extract()))\n",
).replace("return 0.9", "return 0.4")

# Run in a subprocess with the FAB auth manager: users and roles, then a smoke test of the FAB view.
FAB_SETUP = r"""
import json, sys
from flask_login import login_user
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

out = {}
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    sm.sync_roles()
    admin = sm.find_role("Admin")
    if not sm.find_user("admin"):
        sm.add_user("admin", "Ad", "Min", "admin@example.com", admin, password="admin-pw")
    role = sm.find_role("OneDag") or sm.add_role("OneDag")
    perms = (("can_read", "DAG:mlops_ui_other"), ("menu_access", "Browse"), ("can_read", "Website"))
    for action, resource in perms:
        sm.add_permission_to_role(role, sm.create_permission(action, resource))
    if not sm.find_user("limited"):
        sm.add_user("limited", "Lim", "Ited", "limited@example.com", role, password="limited-pw")
    app = appbuilder.get_app
    out["fab_views"] = [type(v).__name__ for v in appbuilder.baseviews]
    view = next(v for v in appbuilder.baseviews if type(v).__name__ == "MLOpsFabView")
    run_id = sys.argv[1]
    for name in ("admin", "limited"):
        with app.test_request_context(f"/mlops/dags/mlops_ui_shop/runs/{run_id}"):
            login_user(sm.find_user(name))
            result = view.run(dag_id="mlops_ui_shop", run_id=run_id)
            body = result if isinstance(result, str) else getattr(result, "status_code", repr(result))
            out[name] = body if isinstance(body, (str, int)) else str(body)
        with app.test_request_context("/mlops/"):
            login_user(sm.find_user(name))
            out[name + "_overview"] = view.overview()
print("RESULT" + json.dumps(out, default=str))
"""


def _airflow_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__API_AUTH__JWT_SECRET": "mlops-ui-test-secret",
        "AIRFLOW__API__SECRET_KEY": "mlops-ui-test-secret",
        **extra,
    }


def _run_dags() -> dict[str, Any]:
    from airflow_runner import run_before_and_after_change, run_dag

    shop = run_dag("mlops_ui_shop")
    other = run_dag("mlops_ui_other")
    first, second = run_before_and_after_change(DAGS_DIR / "mlops_ui_evolving.py", EVOLVING_V1, EVOLVING_V2)
    tables = [run_dag("mlops_compare", run_conf={"variant": v}).run_id for v in (1, 2)]
    return {"shop": shop, "other": other, "first": first, "second": second, "tables": tables}


def _forge_reference(shop_run_id: str, outside: Path) -> None:
    """A tampered XCom row whose reference points outside the artifact root (never read)."""
    from airflow_runner import set_raw_xcom

    root = os.environ["AIRFLOW__MLOPS__ARTIFACT_ROOT"]
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "0.preview.json").write_text(json.dumps({"kind": "json", "text": "TOP-SECRET-CONTENT"}))
    base = {
        "__mlops__": "artifact",
        "v": 1,
        "type": "dict",
        "serializer": "json",
        "format": "json",
        "format_version": 1,
        "size_bytes": 1,
        "sha256": "0" * 64,
        "producer": {"dag_id": "mlops_ui_shop", "run_id": shop_run_id, "task_id": "make_number"},
    }
    forged = [
        {**base, "uri": f"{outside.as_uri()}/0.json"},
        {**base, "uri": f"{root}/../{outside.name}/0.json"},
    ]
    set_raw_xcom("forged", forged, dag_id="mlops_ui_shop", task_id="make_number", run_id=shop_run_id)


def _forge_cross_dag(shop: Any, other_run_id: str) -> None:
    """A row of mlops_ui_other (which the limited user may read) pointing at mlops_ui_shop's frame
    (which they may not): anyone who can write other's XComs could write it."""
    from airflow_runner import set_raw_xcom

    stolen = shop.row("make_frame")
    set_raw_xcom("borrowed", stolen, dag_id="mlops_ui_other", task_id="quality", run_id=other_run_id)


def _run_with_the_executor(dag_id: str, env: dict[str, str], url: str) -> str:
    """``airflow dags test DAG --use-executor``: task processes run by the LocalExecutor through the
    API server's Task Execution API, so each try writes its log file as on a cluster (``dag.test()``
    in this process logs to the console only). Returns the run id."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from conftest import BIN

    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", dag_id, "--use-executor"],
        env={**env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None and run.state == "failed", proc.stdout[-3000:] + proc.stderr[-3000:]
        return run.run_id


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    runs = _run_dags()
    _forge_reference(runs["shop"].run_id, Path(os.environ["AIRFLOW_HOME"]) / "outside")
    _forge_cross_dag(runs["shop"], runs["other"].run_id)
    env = _airflow_env()
    setup = subprocess.run(
        [sys.executable, "-c", FAB_SETUP, runs["shop"].run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-5000:]
    fab = json.loads(setup.stdout.split("RESULT", 1)[1])

    log = tmp_path_factory.mktemp("api") / "api-server.log"
    try:
        with api_server_process(env, log) as url, httpx.Client(base_url=url, timeout=60) as client:
            tokens = {}
            for user, password in (("admin", "admin-pw"), ("limited", "limited-pw")):
                response = client.post("/auth/token", json={"username": user, "password": password})
                assert response.status_code in (200, 201), response.text
                tokens[user] = response.json()["access_token"]
            runs["failing"] = _run_with_the_executor("mlops_ui_failing", env, url)
            yield {"client": client, "tokens": tokens, "runs": runs, "fab": fab, "log": log}
    finally:
        (DAGS_DIR / "mlops_ui_evolving.py").unlink(missing_ok=True)


def get(ui: dict[str, Any], path: str, user: str | None = "admin", *, cookie: bool = False) -> httpx.Response:
    """GET as ``user``: bearer token, or the UI's ``_token`` cookie (what the tab's iframe sends)."""
    client: httpx.Client = ui["client"]
    if user is None:
        return client.get(path)
    token = ui["tokens"][user]
    if cookie:
        return client.get(path, headers={"Cookie": f"_token={token}"})
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# -- security ----------------------------------------------------------------------------------------


def test_plugin_is_mounted_and_registers_nav_and_tabs(ui: dict[str, Any]) -> None:
    plugins = get(ui, "/api/v2/plugins").json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "mlops"]
    assert {v["destination"]: v["href"] for v in ours["external_views"]} == {
        "nav": "/mlops/",
        "dag": "/mlops/dags/{DAG_ID}",
        "dag_run": "/mlops/dags/{DAG_ID}/runs/{RUN_ID}",
        "task_instance": "/mlops/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}?map_index={MAP_INDEX}",
    }
    assert [a["url_prefix"] for a in ours["fastapi_apps"]] == ["/mlops"]


@pytest.mark.parametrize(
    "path",
    [
        "/mlops/",
        "/mlops/api/overview",
        "/mlops/dags/mlops_ui_shop",
        "/mlops/api/dags/mlops_ui_shop/metrics",
        "/mlops/dags/mlops_ui_shop/runs/x",
        "/mlops/dags/mlops_ui_shop/runs/x/tasks/make_frame",
        "/mlops/static/uPlot.iife.min.js",
    ],
)
def test_unauthenticated_requests_are_refused(ui: dict[str, Any], path: str) -> None:
    assert get(ui, path, None).status_code == 401
    bad = ui["client"].get(path, headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code in (401, 403)
    assert SCRIPT not in bad.text and "make_frame" not in bad.text


def test_cookie_authenticates_iframe_requests(ui: dict[str, Any]) -> None:
    response = get(ui, "/mlops/", cookie=True)
    assert response.status_code == 200
    assert "mlops_ui_shop" in response.text
    script = get(ui, "/mlops/static/uPlot.iife.min.js", cookie=True)
    assert script.status_code == 200 and "uPlot" in script.text
    assert get(ui, "/mlops/static/mlops.css", cookie=True).status_code == 200
    assert get(ui, "/mlops/static/..%2F..%2Fquery.py", cookie=True).status_code == 404


def test_a_user_sees_only_the_dags_they_may_read(ui: dict[str, Any]) -> None:
    shop, other = ui["runs"]["shop"].run_id, ui["runs"]["other"].run_id
    overview = get(ui, "/mlops/api/overview", "limited").json()
    assert [d["dag_id"] for d in overview["dags"]] == ["mlops_ui_other"]
    page = get(ui, "/mlops/", "limited").text
    assert "mlops_ui_other" in page and "mlops_ui_shop" not in page
    for path in (
        "/mlops/dags/mlops_ui_shop",
        "/mlops/api/dags/mlops_ui_shop/metrics",
        "/mlops/api/dags/mlops_ui_shop/checks",
        f"/mlops/dags/mlops_ui_shop/runs/{q(shop)}",
        f"/mlops/api/dags/mlops_ui_shop/runs/{q(shop)}",
        f"/mlops/dags/mlops_ui_shop/runs/{q(shop)}/tasks/make_frame",
        f"/mlops/api/dags/mlops_ui_shop/runs/{q(shop)}/tasks/make_frame",
    ):
        response = get(ui, path, "limited")
        assert response.status_code == 403, path
        assert "alert" not in response.text and "def make_frame" not in response.text
    assert get(ui, "/mlops/dags/mlops_ui_other", "limited").status_code == 200
    assert get(ui, f"/mlops/dags/mlops_ui_other/runs/{q(other)}", "limited").status_code == 200
    admin = [d["dag_id"] for d in get(ui, "/mlops/api/overview").json()["dags"]]
    assert {"mlops_ui_shop", "mlops_ui_other", "mlops_ui_evolving"} <= set(admin)


def test_a_forged_row_never_shows_another_dags_artifact(ui: dict[str, Any]) -> None:
    """A row of a readable DAG pointing at an unreadable DAG's frame: refused on every page, for
    every user, and nothing of the frame (preview, schema, code) is in the response."""
    other = q(ui["runs"]["other"].run_id)
    for path in (
        f"/mlops/dags/mlops_ui_other/runs/{other}",
        f"/mlops/api/dags/mlops_ui_other/runs/{other}",
        f"/mlops/dags/mlops_ui_other/runs/{other}/tasks/quality",
        f"/mlops/api/dags/mlops_ui_other/runs/{other}/tasks/quality",
    ):
        for user in ("limited", "admin"):
            response = get(ui, path, user)
            assert response.status_code == 200, (path, user, response.text[:500])
            assert "refused" in response.text and "mlops_ui_shop" in response.text, path
            assert "alert" not in response.text and "def make_frame" not in response.text, path


@pytest.mark.parametrize(
    "path",
    [
        "/mlops/dags/..%2F..%2Fetc",
        "/mlops/dags/%2E%2E",
        "/mlops/dags/mlops_ui_shop/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/mlops/dags/mlops_ui_shop/runs/%2E%2E",
        "/mlops/dags/mlops_ui_shop/runs/x/tasks/..%2F..",
        "/mlops/api/dags/%2E%2E/metrics",
    ],
)
def test_path_traversal_in_ids_is_refused(ui: dict[str, Any], path: str) -> None:
    response = get(ui, path)
    assert response.status_code in (400, 403, 404), (path, response.status_code)
    assert "root:" not in response.text


def test_references_outside_the_artifact_root_are_never_read(ui: dict[str, Any]) -> None:
    run_id = ui["runs"]["shop"].run_id
    data = get(ui, f"/mlops/api/dags/mlops_ui_shop/runs/{q(run_id)}").json()
    forged = [a for a in data["artifacts"] if a["key"] == "forged"]
    assert [(a["path"], a["status"]) for a in forged] == [("[0]", "outside_root"), ("[1]", "outside_root")]
    for entry in forged:
        assert entry["preview"] is None
        assert "outside the configured artifact root" in entry["preview_error"]
    page = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(run_id)}").text
    assert "TOP-SECRET-CONTENT" not in page


# -- pages -------------------------------------------------------------------------------------------


def test_run_page_escapes_previewed_content(ui: dict[str, Any]) -> None:
    run_id = ui["runs"]["shop"].run_id
    page = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(run_id)}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert SCRIPT not in page.text
    assert "&lt;b&gt;bold&lt;/b&gt; note number 7" in page.text and "<b>bold</b>" not in page.text


def test_run_page_shows_the_graph_with_states_and_warnings(ui: dict[str, Any]) -> None:
    run = ui["runs"]["shop"]
    data = get(ui, f"/mlops/api/dags/mlops_ui_shop/runs/{q(run.run_id)}").json()
    nodes = {n["task_id"]: n for n in data["graph"]["nodes"]}
    assert data["graph"]["recorded"]
    assert set(nodes) == {t for t, _ in run.task_states}
    assert nodes["scores_high"]["state"] == "success_with_warnings"
    assert nodes["evaluate"]["state"] == "success_with_warnings"
    assert nodes["make_frame"]["state"] == "success"
    assert nodes["explode"]["state"] == "failed"
    assert {(e["from"], e["to"]) for e in data["graph"]["edges"]} == {
        ("make_frame", "scores_high"),
        ("make_frame", "evaluate"),
    }
    assert nodes["scores_high"]["x"] > nodes["make_frame"]["x"]  # longest-path layers
    assert nodes["scores_high"]["colour"] != nodes["make_frame"]["colour"]
    page = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(run.run_id)}").text
    assert 'data-task-id="scores_high" data-state="success_with_warnings"' in page
    assert "<svg" in page
    checks = data["checks"]
    assert [(c["task_id"], c["status"]) for c in checks] == [("scores_high", "warning")]
    assert checks[0]["samples"]["rows"]  # the failing row is shown
    assert {(m["name"], m["status"]) for m in data["metrics"]} == {("accuracy", "warning"), ("loss", "ok")}


def test_previews_of_each_kind(ui: dict[str, Any]) -> None:
    run_id = ui["runs"]["shop"].run_id
    data = get(ui, f"/mlops/api/dags/mlops_ui_shop/runs/{q(run_id)}").json()
    by_task = {(a["task_id"], a["key"]): a for a in data["artifacts"]}
    table = by_task[("make_frame", "return_value")]["preview"]
    assert table["kind"] == "table" and table["rows"] == 3
    assert [c["name"] for c in table["schema"]] == ["name", "score"]
    assert table["stats"]["score"]["max"] == 0.75
    array = by_task[("make_array", "return_value")]["preview"]
    assert array["kind"] == "array" and array["shape"] == [3, 4] and array["dtype"] == "float32"
    image = by_task[("make_image", "return_value")]["preview"]
    assert image["kind"] == "image" and image["thumbnail_png_base64"]
    assert by_task[("make_document", "return_value")]["preview"]["kind"] == "json"
    model = by_task[("train", "return_value")]["preview"]
    assert model["kind"] == "object" and "LogisticRegression" in model["class"]
    number, flag = by_task[("make_number", "return_value")], by_task[("make_flag", "return_value")]
    assert (number["inline"], number["kind"], number["text"]) == (True, "value", "42")
    assert (flag["kind"], flag["text"]) == ("value", "true")
    page = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(run_id)}").text
    assert 'src="data:image/png;base64,' in page
    assert "shape 3 \u00d7 4" in page and "LogisticRegression" in page
    assert '<p class="value">42</p>' in page


def test_task_page_shows_manifest_code_and_trend(ui: dict[str, Any]) -> None:
    run_id = ui["runs"]["shop"].run_id
    data = get(ui, f"/mlops/api/dags/mlops_ui_shop/runs/{q(run_id)}/tasks/make_frame?map_index=-1").json()
    (artifact,) = data["artifacts"]
    assert artifact["format"] == "arrow" and len(artifact["sha256"]) == 64
    assert artifact["manifest"]["execution"]["code_hash"]
    assert "def make_frame" in data["code"] and "manifest" in data["code_origin"]
    assert data["tasks"][0]["peak_rss_mb"] > 0 and data["trend"]["duration"]
    trend = data["trend"]  # on an axis of runs, the task's runs oldest first
    assert trend["x"] == list(range(1, len(trend["run_ids"]) + 1)) and trend["run_ids"][-1] == run_id
    page = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(run_id)}/tasks/make_frame")
    assert page.status_code == 200
    assert "def make_frame" in page.text and artifact["sha256"] in page.text
    assert artifact["chunk_bytes"] is None and "SHA-256 of its bytes" in page.text  # a small frame
    assert "&lt;script&gt;" in page.text and SCRIPT not in page.text
    assert f'href="/dags/mlops_ui_shop/runs/{q(run_id)}/tasks/make_frame"' in page.text  # Airflow's log view
    # A task that is not an @ml.task: its code comes from the run's structure snapshot.
    image = get(ui, f"/mlops/api/dags/mlops_ui_shop/runs/{q(run_id)}/tasks/make_image").json()
    assert "def make_image" in image["code"] and "snapshot" in image["code_origin"]
    assert get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(run_id)}/tasks/no_such_task").status_code == 404


def test_task_page_of_a_failed_task(ui: dict[str, Any]) -> None:
    """``fit`` raised ``ValueError`` in a task process (its log written as on a cluster): the run
    page's "What failed" names it with the error line, its task page shows the traceback."""
    from mlops_ui_failing import ERROR

    run_id = q(ui["runs"]["failing"])
    data = get(ui, f"/mlops/api/dags/mlops_ui_failing/runs/{run_id}/tasks/fit").json()
    assert data["ti"]["state"] == "failed"
    assert f"ValueError: {ERROR}" in data["traceback"], data["traceback"]
    page = get(ui, f"/mlops/dags/mlops_ui_failing/runs/{run_id}/tasks/fit").text
    assert "<h3>Failure</h3>" in page
    traceback = page[page.index('<pre class="value traceback">') :]
    traceback = traceback[: traceback.index("</pre>")]
    assert f"ValueError: {ERROR}" in traceback and ", in fit\n" in traceback
    run = get(ui, f"/mlops/dags/mlops_ui_failing/runs/{run_id}").text
    top = run[run.index('id="failed-tasks"') : run.index("Graph as it ran")]
    assert "<b>fit</b>" in top and f": ValueError: {ERROR}</li>" in top
    # dag.test() runs tasks in the test process, whose log goes to the console: the state is shown.
    shop = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(ui['runs']['shop'].run_id)}/tasks/explode").text
    assert "<h3>Failure</h3>" in shop and "failed" in shop


def test_task_page_of_a_succeeded_task_shows_its_log(ui: dict[str, Any]) -> None:
    run_id = q(ui["runs"]["failing"])
    data = get(ui, f"/mlops/api/dags/mlops_ui_failing/runs/{run_id}/tasks/prepare").json()
    assert data["ti"]["state"] == "success" and data["traceback"] is None
    assert any("prepared 3 training batches" in line["text"] for line in data["log_excerpt"])
    page = get(ui, f"/mlops/dags/mlops_ui_failing/runs/{run_id}/tasks/prepare").text
    excerpt = page[page.index('id="log-excerpt"') :]
    assert "prepared 3 training batches" in excerpt[: excerpt.index("</table>")]
    assert "<h3>Failure</h3>" not in page


def test_task_page_shows_each_input_with_its_producer_and_stored_preview(
    ui: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``summarize`` read ``prepare``'s frame: its page links to prepare's task page and shows the
    preview stored when prepare wrote it (escaped, first rows only), without loading the frame."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    run_id = ui["runs"]["failing"]
    data = get(ui, f"/mlops/api/dags/mlops_ui_failing/runs/{q(run_id)}/tasks/summarize").json()
    (frame,) = data["inputs"]
    assert frame["producer"] | {"run_id": run_id} == {
        "dag_id": "mlops_ui_failing",
        "run_id": run_id,
        "task_id": "prepare",
        "map_index": -1,
        "key": "return_value",
    }
    assert frame["linked"] and frame["preview"]["kind"] == "table" and frame["preview"]["rows"] == 3
    assert frame["preview"]["stats"]["rows"]["mean"] == pytest.approx(175.0)
    page = get(ui, f"/mlops/dags/mlops_ui_failing/runs/{q(run_id)}/tasks/summarize").text
    inputs = page[page.index('id="task-inputs"') : page.index("<h3>Code</h3>")]
    assert (
        f'href="/mlops/dags/mlops_ui_failing/runs/{q(run_id)}/tasks/prepare?map_index=-1">prepare</a>'
        in inputs
    )
    assert "3 rows \u00d7 3 columns" in inputs and "<th>source</th>" in inputs
    assert "&lt;i&gt;web&lt;/i&gt;" in inputs and "<i>web</i>" not in inputs

    from airflow_mlops_provider.ui import render, service

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a task page must not load an artifact")

    monkeypatch.setattr(ArtifactManager, "load", refuse)
    monkeypatch.setattr(service, "RUN_PREVIEWS", 0)  # past the bound: listed, no preview read
    bounded = service.task_page("mlops_ui_failing", run_id, "summarize")
    (listed,) = bounded["inputs"]
    assert not listed["preview_read"] and listed["preview"] is None
    html = render.render("task.html", "/mlops", **bounded)
    assert (
        "Preview on the producer&#39;s task page." in html or "Preview on the producer's task page." in html
    )


def test_run_page_shows_the_structure_of_that_run_and_the_diff(ui: dict[str, Any]) -> None:
    first, second = ui["runs"]["first"], ui["runs"]["second"]
    old = get(ui, f"/mlops/api/dags/mlops_ui_evolving/runs/{q(first.run_id)}").json()
    new = get(ui, f"/mlops/api/dags/mlops_ui_evolving/runs/{q(second.run_id)}").json()
    assert {n["task_id"] for n in old["graph"]["nodes"]} == {"extract", "legacy", "quality"}
    assert {n["task_id"] for n in new["graph"]["nodes"]} == {"extract", "clean", "quality"}
    assert old["diff"] is None and old["previous"] is None
    diff = new["diff"]
    assert [t["task_id"] for t in diff["added"]] == ["clean"]
    assert [t["task_id"] for t in diff["removed"]] == ["legacy"]
    assert ["clean", "quality"] in diff["edges_added"] and ["extract", "quality"] in diff["edges_removed"]
    page = get(ui, f"/mlops/dags/mlops_ui_evolving/runs/{q(second.run_id)}").text
    assert "+ task <b>clean</b>" in page and "\u2212 task <b>legacy</b>" in page
    assert 'data-task-id="legacy"' not in page
    runs = get(ui, "/mlops/api/dags/mlops_ui_evolving/runs").json()
    assert [(r["run_id"], r["structure_changed"]) for r in runs] == [
        (second.run_id, True),
        (first.run_id, False),
    ]
    assert "structure changed" in get(ui, "/mlops/dags/mlops_ui_evolving").text


def test_metric_and_check_history(ui: dict[str, Any]) -> None:
    metrics = get(ui, "/mlops/api/dags/mlops_ui_evolving/metrics").json()["series"]
    (series,) = metrics
    assert (series["task_id"], series["name"]) == ("quality", "quality")
    assert series["value"] == [0.9, 0.4] and series["lower"] == [0.5, 0.5]
    assert series["status"] == ["ok", "warning"]
    assert series["run_ids"] == [ui["runs"]["first"].run_id, ui["runs"]["second"].run_id]
    checks = get(ui, "/mlops/api/dags/mlops_ui_shop/checks").json()["checks"]
    assert [(c["task_id"], c["status"], c["severity"]) for c in checks] == [
        ("scores_high", "warning", "warning")
    ]
    page = get(ui, "/mlops/dags/mlops_ui_evolving")
    assert page.status_code == 200
    assert 'id="metric-data"' in page.text and "mlops.metricCharts" in page.text


def test_metric_charts_are_drawn_against_runs_not_clock_time(ui: dict[str, Any]) -> None:
    first, second = ui["runs"]["first"].run_id, ui["runs"]["second"].run_id
    data = get(ui, "/mlops/api/dags/mlops_ui_evolving/metrics").json()
    assert [r["run_id"] for r in data["runs"]] == [first, second]  # oldest first: x = 1, 2
    (series,) = data["series"]
    assert series["x"] == [1, 2]
    one = get(ui, "/mlops/api/dags/mlops_ui_evolving/metrics?runs=1").json()
    assert [r["run_id"] for r in one["runs"]] == [second] and one["series"][0]["x"] == [1]
    page = get(ui, "/mlops/dags/mlops_ui_evolving?window=30")
    assert page.status_code == 200 and "<b>last 30</b>" in page.text
    assert get(ui, "/mlops/dags/mlops_ui_evolving?window=7").status_code == 422


def test_runs_table_has_metric_columns_and_checks_by_run(ui: dict[str, Any]) -> None:
    page = get(ui, "/mlops/dags/mlops_ui_evolving").text
    assert "<th>quality</th>" in page
    assert 'class="metric status-warning">0.4<' in page and 'class="metric status-ok">0.9<' in page
    shop = get(ui, "/mlops/dags/mlops_ui_shop").text
    assert 'class="grid checks-grid"' in shop and "<td>scores_high</td>" in shop
    assert 'class="cell status-warning"' in shop


def test_checks_grid_of_many_checks_fills_every_run(ui: dict[str, Any]) -> None:
    """10 checks in each of 30 runs (300 records): every column of the grid, the oldest run's too,
    shows the status its checks had in that run, never "not run"."""
    from datetime import timedelta

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    from airflow_mlops_provider.records import CHECK_KEY, CheckRecord
    from airflow_mlops_provider.ui import service

    dag_id, start = "mlops_ui_many_checks", datetime(2026, 1, 1, tzinfo=timezone.utc)
    run_ids = [f"manual__many_{n:02d}" for n in range(30)]  # oldest first
    with create_session() as session:
        session.execute(
            insert(DagRun.__table__),
            [{"dag_id": dag_id, "run_id": run_id, "run_type": "manual", "state": "success"}
             | {"run_after": start + timedelta(hours=n), "start_date": start + timedelta(hours=n)}
             | {"clear_number": 0, "span_status": "ended"}
             for n, run_id in enumerate(run_ids)],
        )  # fmt: skip
        ids = dict(session.execute(select(DagRun.run_id, DagRun.id).where(DagRun.dag_id == dag_id)).all())
        session.execute(
            insert(TaskInstance.__table__),
            [{"id": uuid.uuid4(), "dag_id": dag_id, "run_id": run_id, "task_id": f"check_{c}"}
             | {"map_index": -1, "pool": "default_pool", "state": "success", "try_number": 1}
             for run_id in run_ids for c in range(10)],
        )  # fmt: skip
        rows = []
        for n, run_id in enumerate(run_ids):
            for c in range(10):
                failed = n == 0 and c == 3  # the oldest run: one check failed
                check = CheckRecord(
                    name=f"check_{c}",
                    severity="error",
                    status="failed" if failed else "ok",
                    message="1 of 5 rows failed" if failed else "5 of 5 rows passed",
                    passed=not failed,
                    failing_count=1 if failed else 0,
                )
                rows.append(
                    {"dag_run_id": ids[run_id], "dag_id": dag_id, "run_id": run_id, "map_index": -1}
                    | {"task_id": f"check_{c}", "key": CHECK_KEY, "value": check.to_row()}
                    | {"timestamp": start + timedelta(hours=n)}
                )
        session.execute(insert(XComModel.__table__), rows)
    grid = service.dag_page(dag_id)["checks_grid"]
    assert grid["runs"] == run_ids[::-1]  # newest first
    assert [r["check"] for r in grid["rows"]] == [f"check_{c}" for c in range(10)]
    for row in grid["rows"]:
        assert None not in row["cells"], row
        assert row["cells"][-1] == ("failed" if row["check"] == "check_3" else "ok"), row
    page = get(ui, f"/mlops/dags/{dag_id}").text
    grid_html = page[page.index('class="grid checks-grid"') : page.index("Check history")]
    assert 'title="manual__many_00: failed"' in grid_html and ": not run" not in grid_html


def test_run_page_says_what_failed_first(ui: dict[str, Any]) -> None:
    shop = get(ui, f"/mlops/dags/mlops_ui_shop/runs/{q(ui['runs']['shop'].run_id)}").text
    top = shop[shop.index('id="failed-tasks"') : shop.index("Graph as it ran")]
    assert "check <b>scores_high</b>" in top and "severity warning" in top
    second = get(ui, f"/mlops/dags/mlops_ui_evolving/runs/{q(ui['runs']['second'].run_id)}").text
    top = second[second.index('id="failed-tasks"') : second.index("Graph as it ran")]
    assert "metric <b>quality · quality</b> = 0.4" in top
    first = get(ui, f"/mlops/dags/mlops_ui_evolving/runs/{q(ui['runs']['first'].run_id)}").text
    assert 'id="failed-tasks"' not in first  # nothing failed: no box


def _overview_row(page: str, dag_id: str) -> str:
    """The overview table's row of ``dag_id`` (HTML)."""
    start = page.index(f">{dag_id}</a></td>")
    return page[start : page.index("</tr>", start)]


def test_overview_says_what_failed_in_each_dags_latest_run(ui: dict[str, Any]) -> None:
    """mlops_ui_shop's run failed (``explode`` raised) and warned: its row names the failed task
    first, then the warning check and metric; a DAG whose run succeeded cleanly says "none"."""
    run_id = ui["runs"]["shop"].run_id
    (shop,) = [d for d in get(ui, "/mlops/api/overview").json()["dags"] if d["dag_id"] == "mlops_ui_shop"]
    assert shop["latest"]["state"] == "failed"
    problems = [(p["kind"], p["task_id"], p["status"]) for p in shop["problems"]]
    assert problems[0] == ("task", "explode", "failed"), problems
    assert ("check", "scores_high", "warning") in problems and ("metric", "evaluate", "warning") in problems
    row = _overview_row(get(ui, "/mlops/").text, "mlops_ui_shop")
    assert f"/runs/{q(run_id)}/tasks/explode?map_index=-1" in row and "<b>explode</b>" in row
    assert '<span class="muted">none</span>' not in row
    evolving = _overview_row(get(ui, "/mlops/").text, "mlops_ui_evolving")
    assert "metric" in evolving and "quality" in evolving  # its latest run's metric warned


def test_overview_of_a_run_failed_without_a_failed_task(ui: dict[str, Any]) -> None:
    """A run that timed out (or was marked failed) has no failed task: the overview says the run
    failed and how its tasks ended, never "none"."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    from airflow_mlops_provider.ui import render, service

    def utcnow() -> datetime:
        return datetime.now(timezone.utc)

    dag_id, run_id = "mlops_ui_timed_out", "manual__timed_out"
    with create_session() as session:
        session.execute(
            insert(DagRun.__table__),
            [{"dag_id": dag_id, "run_id": run_id, "run_type": "manual", "state": "failed"}
             | {"run_after": utcnow(), "start_date": utcnow(), "clear_number": 0, "span_status": "ended"}],
        )  # fmt: skip
        run_pk = session.scalar(select(DagRun.id).where(DagRun.run_id == run_id))
        session.execute(
            insert(TaskInstance.__table__),
            [
                {"id": uuid.uuid4(), "dag_id": dag_id, "run_id": run_id, "task_id": task, "map_index": -1}
                | {"pool": "default_pool", "state": state, "try_number": 1}
                for task, state in (("train", "success"), ("publish", "skipped"))
            ],
        )
        record = {"kind": "metric", "severity": "warning", "metrics": [{"name": "auc", "value": 0.9}]}
        session.execute(
            insert(XComModel.__table__),
            [{"dag_run_id": run_pk, "dag_id": dag_id, "run_id": run_id, "task_id": "train", "map_index": -1}
             | {"key": "mlops.metrics", "value": record, "timestamp": utcnow()}],
        )  # fmt: skip
    data = service.overview({dag_id})
    (problem,) = data["dags"][0]["problems"]
    assert (problem["kind"], problem["status"]) == ("run", "failed")
    assert "none of its tasks did (1 skipped, 1 success)" in problem["message"]
    row = _overview_row(render.render("overview.html", "/mlops", **data), dag_id)
    assert "none of its tasks did" in row and '<span class="muted">none</span>' not in row


def test_a_run_page_bounds_the_previews_it_reads(ui: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run page reads the previews of its first ``RUN_PREVIEWS`` values only (a 200-task run stays
    small and fast); the other artifacts are listed, each linked to its task page, with no preview."""
    from airflow_mlops_provider.ui import render, service

    run_id = ui["runs"]["shop"].run_id
    everything = service.run_page("mlops_ui_shop", run_id)["artifacts"]
    monkeypatch.setattr(service, "RUN_PREVIEWS", 2)
    data = service.run_page("mlops_ui_shop", run_id)
    assert [(a["task_id"], a["key"]) for a in data["artifacts"]] == [
        (a["task_id"], a["key"]) for a in everything
    ]
    shown = [a for a in data["artifacts"] if not a["preview_elsewhere"]]
    listed = [a for a in data["artifacts"] if a["preview_elsewhere"]]
    assert len(shown) == 2 and len(listed) == len(everything) - 2
    assert all(a.get("preview") is None for a in listed if not a.get("inline"))
    page = render.render("run.html", "/mlops", **data)
    more = page[page.index('id="more-artifacts"') :]
    for a in listed:
        assert f"/runs/{q(run_id)}/tasks/{a['task_id']}?map_index=-1" in more
    assert SCRIPT not in page


def test_compare_two_runs_shows_structure_metrics_and_escapes(ui: dict[str, Any]) -> None:
    first, second = ui["runs"]["first"].run_id, ui["runs"]["second"].run_id
    url = f"/mlops/api/dags/mlops_ui_evolving/compare?a={q(first)}&b={q(second)}"
    data = get(ui, url).json()
    assert [t["task_id"] for t in data["structure"]["added"]] == ["clean"]
    (metric,) = data["metrics"]
    assert (metric["before"], metric["after"]) == (0.9, 0.4) and metric["delta"] == pytest.approx(-0.5)
    assert (metric["status_before"], metric["status_after"]) == ("ok", "warning")
    page = get(ui, url.replace("/api/", "/"))
    assert page.status_code == 200 and "+ task <b>clean</b>" in page.text
    assert 'id="metric-deltas"' in page.text
    assert get(ui, f"/mlops/dags/mlops_ui_evolving/compare?a={q(first)}&b=nope").status_code == 404
    assert get(ui, f"/mlops/dags/mlops_ui_evolving/compare?a={q(first)}&b=..").status_code == 400
    assert get(ui, url, user="limited").status_code == 403


def test_compare_page_shows_table_changes(ui: dict[str, Any]) -> None:
    """Two runs of ``mlops_compare``: rows, the added and the removed column, the retyped one, and
    per column the null-rate, mean and distinct-count changes with their deltas."""
    a, b = ui["runs"]["tables"]
    page = get(ui, f"/mlops/dags/mlops_compare/compare?a={q(a)}&b={q(b)}").text
    start = page.index('data-artifact="customers return_value"')
    table = page[start : page.index("</div>", start)]
    assert "rows: 4 → 6 (+2)" in table
    assert "+ column <b>segment</b>" in table and "\u2212 column <b>legacy</b> (int64)" in table
    assert "column <b>score</b>: int64 → float64" in table
    assert '<td>id</td>\n<td class="stat-null_rate"></td><td class="stat-mean">2.5 → 3.5 (+1)</td>' in table
    assert '<td class="stat-distinct">2 → 3 (+1)</td>' in table


def test_fab_view_renders_with_the_same_templates_and_permissions(ui: dict[str, Any]) -> None:
    fab = ui["fab"]
    assert "MLOpsFabView" in fab["fab_views"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fab["admin"] and SCRIPT not in fab["admin"]
    assert 'data-task-id="make_frame"' in fab["admin"]
    assert fab["limited"] in (302, 403) or "make_frame" not in str(fab["limited"])
    assert "mlops_ui_shop" in fab["admin_overview"]
    assert "mlops_ui_other" in fab["limited_overview"] and "mlops_ui_shop" not in fab["limited_overview"]


# -- lifecycle: an XCom deleted through the REST API, then gc (kept last: it deletes objects) -------


def test_gc_after_an_xcom_is_deleted_through_the_rest_api(ui: dict[str, Any]) -> None:
    """Airflow's ``DELETE .../xcomEntries/{key}`` drops the row without the backend's ``purge``."""
    from datetime import timedelta

    from airflow_runner import run_dag

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.cli.gc import collect_garbage
    from airflow_mlops_provider.exceptions import ArtifactNotFoundError
    from airflow_mlops_provider.notebook import load_artifact

    run = run_dag("mlops_cli_pipeline")
    blob = run.row("blob")["uri"].rsplit("/", 1)[0]
    path = (
        f"/api/v2/dags/mlops_cli_pipeline/dagRuns/{q(run.run_id)}/taskInstances/blob/xcomEntries/return_value"
    )
    client: httpx.Client = ui["client"]
    refused = client.delete(path, headers={"Authorization": f"Bearer {ui['tokens']['limited']}"})
    assert refused.status_code == 403
    deleted = client.delete(path, headers={"Authorization": f"Bearer {ui['tokens']['admin']}"})
    assert deleted.status_code == 204, deleted.text

    store = ArtifactManager().store
    assert store.info(f"{blob}/0.manifest.json").size > 0  # Airflow left the objects behind
    report = collect_garbage(grace=timedelta(0))
    assert blob in {f.uri for f in report.deleted}
    with pytest.raises(ArtifactNotFoundError):
        store.info(f"{blob}/0.manifest.json")
    assert len(load_artifact("mlops_cli_pipeline", run.run_id, "extract")) == 120  # the rest stays


def test_the_content_hash_of_a_large_artifact_says_what_it_is_of() -> None:
    """Past one chunk the content hash is the SHA-256 of the chunks' BLAKE3 digests, not of the
    file: a reader comparing it with ``sha256sum`` must be told (rendered as the task page does)."""
    from airflow_mlops_provider.ui.render import environment

    artifact = environment().get_template("macros.html").module.artifact
    view = {
        "task_id": "t",
        "map_index": -1,
        "key": "return_value",
        "uri": "file:///a/0.arrow",
        "sha256": "ab" * 32,
        "size_bytes": 5_000_000,
        "summary": "DataFrame",
        "preview": None,
        "manifest": None,
    }
    large = str(artifact({**view, "chunk_bytes": 1_048_576}, details=True))
    assert "content hash" in large and "SHA-256 of the BLAKE3 digests of its 1,048,576-byte chunks" in large
    small = str(artifact({**view, "chunk_bytes": None}, details=True))
    assert "SHA-256 of its bytes" in small and "BLAKE3" not in small


def test_top_values_counted_on_a_sample_say_so() -> None:
    """A large categorical column's top values are counted on a sample: their counts add up to the
    sample, not the table, and the preview table must say so (as it does for text columns)."""
    import pandas as pd

    from airflow_mlops_provider.artifacts import previews
    from airflow_mlops_provider.ui.render import environment

    frame = pd.DataFrame({"grade": pd.Categorical(["a", "b"] * 60_000), "name": ["x", "y"] * 60_000})
    preview = previews.table_preview(frame)
    html = str(environment().get_template("macros.html").module.preview(preview))
    (a, b) = preview["stats"]["grade"]["top"]
    assert a[1] + b[1] == 100_000  # a sample's counts
    shown = f'a ({a[1]}), b ({b[1]}) <span class="muted">· counted in a sample of 100,000 rows'
    assert shown in html
    assert "2 distinct in a sample of 100,000 rows" in html  # the text column, as before
