"""A production cluster without the FAB provider: the provider must work where Airflow 3's default
(simple) auth manager runs and ``apache-airflow-providers-fab`` is not installed.

One :class:`~cluster.AirflowCluster` for the module, started with ``fab=False``: every Airflow
process (scheduler, dag-processor, api-server, task processes, CLI) behaves as if
``apache-airflow-providers-fab`` and ``flask_appbuilder`` were not installed. Airflow's api-server
refuses to start when a plugin declares Flask-AppBuilder views without the FAB provider, so the
cluster starting at all is the first assertion (its failure message shows the api-server log).

The browser tests log in through the simple auth manager's page and click their way like a person:
DAG list -> DAG -> Runs -> the run -> "ML" tab; the run's task list -> a task -> its "ML" tab; the
"ML" nav entry. Screenshots of failures go to ``$MLOPS_TEST_ARTIFACTS`` (default
``test-artifacts/ui``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser import (
    chromium_page,
    login,
    open_ml_tab,
    open_run,
    open_task,
    require_browser,
    screenshot_on_failure,
)
from cluster import PASSWORD, USER, AirflowCluster, cluster_fixture, hidden_packages_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow]

DAG_ID = "mlops_cluster_nofab"
DAGS = Path(__file__).parent / "dags"
FAB_PROVIDER = "apache-airflow-providers-fab"

cluster = cluster_fixture([DAGS / f"{DAG_ID}.py"], fab=False)

PROBE_HIDDEN = r"""
import importlib.metadata, importlib.util, json
out = {}
for name in ("airflow.providers.fab", "airflow.providers.fab.www.app", "flask_appbuilder"):
    try:
        __import__(name)
        out[name] = "imported"
    except ModuleNotFoundError as error:
        out[name] = f"ModuleNotFoundError: {error}"
try:
    importlib.metadata.distribution("apache-airflow-providers-fab")
    out["fab distribution"] = "found"
except importlib.metadata.PackageNotFoundError:
    out["fab distribution"] = "not found"
from airflow.providers_manager import ProvidersManager
out["providers"] = sorted(ProvidersManager().providers)
print(json.dumps(out))
"""

PROBE_FLASK_PLUGINS = r"""
import json
from airflow import plugins_manager
blueprints, views, menu_links = plugins_manager.get_flask_plugins()
import flask_appbuilder  # still importable: only the FAB provider is missing
print(json.dumps({"blueprints": len(blueprints), "views": len(views), "menu_links": len(menu_links)}))
"""


def _python(env: dict[str, str], code: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run_id(cluster: AirflowCluster) -> str:
    """One REST-triggered run of the DAG (no logical date, as the UI triggers), finished."""
    run_id = cluster.trigger_rest(DAG_ID)
    state = cluster.wait_for_run(DAG_ID, run_id, timeout=180)
    if state != "success":
        tis = {t["task_id"]: t["state"] for t in cluster.task_instances(DAG_ID, run_id)}
        logs = "\n".join(
            f"--- {t} ---\n{cluster.task_log(DAG_ID, run_id, t)[-3000:]}"
            for t, s in tis.items()
            if s != "success"
        )
        raise cluster.fail(f"run {run_id} ended {state}: {tis}\n{logs}")
    return run_id


@pytest.fixture(scope="module")
def page(cluster: AirflowCluster) -> Iterator[Any]:
    """Chromium, logged in as the simple auth manager's admin through Airflow's login page."""
    require_browser()
    with chromium_page(cluster.url) as page:
        with screenshot_on_failure(page, "nofab-login"):
            login(page, cluster.url, USER, PASSWORD)
        yield page


def test_fab_is_hidden_from_the_cluster(cluster: AirflowCluster) -> None:
    """The environment really lacks FAB: imports fail, no distribution, ProvidersManager skips it."""
    seen = _python(cluster.env, PROBE_HIDDEN)
    for name in ("airflow.providers.fab", "airflow.providers.fab.www.app", "flask_appbuilder"):
        assert seen[name].startswith("ModuleNotFoundError"), seen
    assert seen["fab distribution"] == "not found", seen
    assert FAB_PROVIDER not in seen["providers"], seen
    assert "apache-airflow-providers-amazon" in seen["providers"], seen  # discovery itself works

    listed = json.loads(_json_part(cluster.cli("providers", "list", "--output", "json").stdout))
    names = {p["package_name"] for p in listed}
    assert FAB_PROVIDER not in names and "apache-airflow-providers-amazon" in names, sorted(names)


def test_api_server_runs_without_fab_and_loads_the_plugin(cluster: AirflowCluster) -> None:
    """The api-server started (the fixture waited for /api/v2/monitor/health), has no FAB provider
    loaded, and serves the mlops plugin with no Flask-AppBuilder views."""
    assert cluster.http("GET", "/api/v2/monitor/health").status_code == 200, cluster.process_logs()
    providers = {
        p["package_name"] for p in cluster.api("GET", "/providers", params={"limit": 100})["providers"]
    }
    assert FAB_PROVIDER not in providers, sorted(providers)
    plugins = {p["name"]: p for p in cluster.api("GET", "/plugins", params={"limit": 100})["plugins"]}
    assert "mlops" in plugins, (sorted(plugins), cluster.process_logs())
    mlops = plugins["mlops"]
    assert mlops["appbuilder_views"] == [] and mlops["flask_blueprints"] == [], mlops
    assert {v["url_route"] for v in mlops["external_views"]} >= {"ml", "mlops_run", "mlops_task"}, mlops
    api_log = cluster.log_path("api-server").read_text(errors="replace")
    assert "Some Airflow 2 plugins have been detected" not in api_log, cluster.process_logs()


def test_airflow_plugins_lists_the_mlops_plugin(cluster: AirflowCluster) -> None:
    listed = json.loads(_json_part(cluster.cli("plugins", "--output", "json").stdout))
    mlops = [p for p in listed if p["name"] == "mlops"]
    assert len(mlops) == 1, [p["name"] for p in listed]
    assert mlops[0]["appbuilder_views"] == [], mlops[0]


def test_no_fab_views_without_the_fab_provider_even_with_flask_appbuilder(
    cluster: AirflowCluster, tmp_path: Path
) -> None:
    """Flask-AppBuilder installed (something else pulled it in) but no FAB provider: the plugin must
    still declare no FAB views, or the api-server refuses to start. Checked with the same call the
    api-server makes at start-up (``plugins_manager.get_flask_plugins()``)."""
    hide_provider_only = hidden_packages_dir(
        tmp_path / "hide-fab-provider", modules=("airflow.providers.fab",), distributions=(FAB_PROVIDER,)
    )
    env = {**cluster.env, "PYTHONPATH": str(hide_provider_only)}
    assert _python(env, PROBE_FLASK_PLUGINS) == {"blueprints": 0, "views": 0, "menu_links": 0}


def test_rest_triggered_run_succeeds(cluster: AirflowCluster, run_id: str) -> None:
    """The run succeeds, including ``add_yield_class``, which assigns into the DataFrame it received
    (a read-only column failed it before frames were read back as the task's own)."""
    run = cluster.run(DAG_ID, run_id)
    assert run["state"] == "success" and run["logical_date"] is None, run
    states = {t["task_id"]: t["state"] for t in cluster.task_instances(DAG_ID, run_id)}
    assert states == {"load_orchard": "success", "add_yield_class": "success"}, states


def _json_part(stdout: str) -> str:
    """The JSON document of a CLI's ``--output json`` (log lines may come first on stdout)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(("[", "{")) and not line.startswith("[2"):
            return line
    raise AssertionError(f"no JSON in the output:\n{stdout[-3000:]}")


def test_run_ml_tab_shows_the_graph_and_the_dataframe(page: Any, run_id: str) -> None:
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "nofab-run-ml-tab"):
        open_run(page, DAG_ID, run_id)
        frame = open_ml_tab(page, "mlops_run")
        graph = frame.locator("svg#run-graph")
        expect(graph).to_be_visible()
        for task_id in ("load_orchard", "add_yield_class"):
            node = graph.locator(f'a.node[data-task-id="{task_id}"]')
            expect(node.locator("text")).to_have_text(task_id)
        artifact = frame.locator("div.artifact").filter(
            has=frame.get_by_role("heading", name="load_orchard · return_value")
        )
        table = artifact.locator("table.data")
        expect(table).to_be_visible()
        for column in ("tree_id", "variety", "apples_kg"):
            expect(table.get_by_role("columnheader", name=column, exact=True)).to_be_visible()
        expect(table.get_by_role("cell", name="bramley", exact=True)).to_be_visible()
        expect(table.get_by_role("cell", name="8.25", exact=True)).to_be_visible()
        derived = frame.locator("div.artifact").filter(
            has=frame.get_by_role("heading", name="add_yield_class · return_value")
        )
        expect(derived.get_by_role("columnheader", name="yield_class", exact=True)).to_be_visible()


def test_task_ml_tab_shows_the_artifact_and_the_code(page: Any, run_id: str) -> None:
    """An unmapped task's tab: Airflow leaves ``{MAP_INDEX}`` unfilled in the iframe's URL; the
    page must still render (not a 422 / error JSON)."""
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "nofab-task-ml-tab"):
        open_task(page, DAG_ID, run_id, "load_orchard")
        frame = open_ml_tab(page, "mlops_task")
        expect(frame.locator("body")).not_to_contain_text('"detail"')
        expect(frame.get_by_role("heading", name="load_orchard", exact=False).first).to_be_visible()
        artifact = frame.locator("div.artifact").filter(
            has=frame.get_by_role("heading", name="load_orchard · return_value")
        )
        expect(artifact).to_contain_text("DataFrame 3 rows x 3 columns")
        table = artifact.locator("table.data")
        for column in ("tree_id", "variety", "apples_kg"):
            expect(table.get_by_role("columnheader", name=column, exact=True)).to_be_visible()
        expect(table.get_by_role("cell", name="gala", exact=True)).to_be_visible()
        code = frame.locator("pre.code")
        expect(code).to_contain_text("def load_orchard() -> pd.DataFrame:")
        expect(code).to_contain_text('"variety": ["bramley", "cox", "gala"]')


def test_ml_nav_entry_opens_the_overview(page: Any, run_id: str) -> None:
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "nofab-ml-overview"):
        page.goto("/")
        frame = open_ml_tab(page, "ml")
        expect(frame.get_by_role("heading", name="DAGs with artifacts and ML records")).to_be_visible()
        expect(frame.get_by_role("link", name=DAG_ID, exact=True)).to_be_visible()
        expect(frame.get_by_role("link", name=run_id, exact=True)).to_be_visible()
