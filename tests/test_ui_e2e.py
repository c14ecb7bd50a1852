"""The ML view end to end in a real browser: headless Chromium driven by Playwright.

A module-scoped fixture runs ``mlops_e2e_pipeline`` twice with ``dag.test()`` (the second version
adds a task and changes a function body), creates a FAB admin, starts ``airflow api-server`` with
the plugin, and logs in through Airflow's own login page. The tests then use Airflow's React UI
the way a person does (DAG run page, click the "ML" tab) and assert on what is shown in the tab's
iframe: the graph of that run, the structure diff, a DataFrame preview and the metric charts.

Screenshots go to ``$MLOPS_TEST_ARTIFACTS`` (default ``test-artifacts/ui``), and also to
``docs/ui-tour/`` with their captions when ``MLOPS_UPDATE_TOUR=1`` (``dev/ui_tour.py`` regenerates
the tour that way).

Needs ``pip install playwright`` (no ``playwright install``: the system Chromium is used).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from conftest import DAGS_DIR, api_server_process

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _browser() -> None:
    require_browser()


REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MLOPS_TEST_ARTIFACTS") or REPO / "test-artifacts" / "ui")
TOUR = REPO / "docs" / "ui-tour"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
DAG_ID = "mlops_e2e_pipeline"
TIMEOUT = 20_000  # ms, for every expect()

VERSION_1 = """
from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider.decorators import ml_check, ml_metric, ml_task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-e2e"])
def mlops_e2e_pipeline():
    @ml_task
    def load_flowers() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "sepal_length": [5.1, 4.9, 6.3, 5.8],
                "petal_width": [0.2, 0.2, 1.8, 1.2],
                "species": ["setosa", "setosa", "virginica", "versicolor"],
            }
        )

    @ml_check(severity="warning")
    def lengths_positive(df: pd.DataFrame) -> pd.Series:
        return df["sepal_length"] > 0

    @ml_metric(lower={"accuracy": 0.8}, upper={"loss": 0.5}, severity="warning")
    def evaluate(df: pd.DataFrame) -> dict:
        return {"accuracy": 0.91, "loss": 0.21}

    flowers = load_flowers()
    lengths_positive(flowers)
    evaluate(flowers)


mlops_e2e_pipeline()
"""
SPECIES = '"species": ["setosa", "setosa", "virginica", "versicolor"],'
ONE_MORE_ROW = ".pipe(lambda f: pd.concat([f, f.tail(1)], ignore_index=True))"
VERSION_2 = (
    VERSION_1.replace('"accuracy": 0.91, "loss": 0.21', '"accuracy": 0.94, "loss": 0.17')
    .replace(
        "    flowers = load_flowers()\n    lengths_positive(flowers)\n    evaluate(flowers)\n",
        "    @ml_task\n    def add_ratio(df: pd.DataFrame) -> pd.DataFrame:\n"
        '        return df.assign(ratio=df["petal_width"] / df["sepal_length"])\n\n'
        "    flowers = load_flowers()\n    lengths_positive(flowers)\n    evaluate(add_ratio(flowers))\n",
    )
    .replace("from airflow.sdk import dag", "from airflow.sdk import dag  # v2")
    # The data changes too: one more flower and a new column, for the compare page.
    .replace(SPECIES, SPECIES + '\n                "stem_cm": [1.0, 1.5, 2.0, 2.5],')
    .replace("            }\n        )\n", "            }\n        )" + ONE_MORE_ROW + "\n", 1)
)

ADMIN_SETUP = r"""
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    sm.sync_roles()
    if not sm.find_user("e2e-admin"):
        sm.add_user("e2e-admin", "E2e", "Admin", "e2e@example.com", sm.find_role("Admin"), password="e2e-pw")
"""


def _run_pipeline_twice() -> tuple[Any, Any]:
    from airflow_runner import run_before_and_after_change

    first, second = run_before_and_after_change(DAGS_DIR / f"{DAG_ID}.py", VERSION_1, VERSION_2)
    assert first.state == second.state == "success", (first.task_states, second.task_states)
    return first, second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two runs of the pipeline, a FAB admin and a running ``airflow api-server``."""
    first, second = _run_pipeline_twice()
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__API_AUTH__JWT_SECRET": "mlops-e2e-test-secret",
        "AIRFLOW__API__SECRET_KEY": "mlops-e2e-test-secret",
    }
    setup = subprocess.run(
        [sys.executable, "-c", ADMIN_SETUP], env=env, capture_output=True, text=True, timeout=300
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-5000:]
    log = tmp_path_factory.mktemp("api") / "api-server.log"
    try:
        with api_server_process(env, log) as url:
            yield {"url": url, "first": first, "second": second, "log": log}
    finally:
        (DAGS_DIR / f"{DAG_ID}.py").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def page(server: dict[str, Any]) -> Iterator[Any]:
    """A headless Chromium page logged in through Airflow's login page (FAB auth manager)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server["url"])
        context.set_default_timeout(TIMEOUT)
        page = context.new_page()
        try:
            page.goto("/")  # the React UI sends an anonymous visitor to the auth manager's login page
            page.wait_for_url(re.compile(r"/auth/login"))
            page.locator("input[name=username]").fill("e2e-admin")
            page.locator("input[name=password]").fill("e2e-pw")
            page.locator("input[type=submit], button[type=submit]").first.click()
            page.wait_for_url(lambda u: "/auth/login" not in u)
            assert any(c["name"] == "_token" for c in context.cookies()), context.cookies()
            yield page
        finally:
            context.close()
            browser.close()


def screenshot(page: Any, name: str, caption: str, **kwargs: Any) -> None:
    """Save ``<name>.png``; with ``MLOPS_UPDATE_TOUR=1`` also the docs copy in ``docs/ui-tour/`` and
    its ``caption`` in ``$MLOPS_TOUR_CAPTIONS`` (JSON lines, read by ``dev/ui_tour.py``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), type="png", **kwargs)
    if os.environ.get("MLOPS_UPDATE_TOUR") == "1":  # the docs copy: 256-colour PNG, a third of the size
        from PIL import Image

        TOUR.mkdir(parents=True, exist_ok=True)
        with Image.open(target) as image:
            image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
                TOUR / target.name, optimize=True
            )
        if captions := os.environ.get("MLOPS_TOUR_CAPTIONS"):
            with open(captions, "a", encoding="utf-8") as out:
                out.write(json.dumps({"name": name, "caption": caption}) + "\n")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def test_run_tab_shows_graph_diff_and_preview(server: dict[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    run_id = server["second"].run_id
    page.goto(f"/dags/{DAG_ID}/runs/{q(run_id)}")
    # The run's tab bar: Airflow renders the plugin's "dag_run" external view as a tab named "ML".
    tab = page.get_by_role("link", name="ML", exact=True).and_(page.locator('a[href$="/plugin/mlops_run"]'))
    expect(tab).to_be_visible()
    # Airflow's own task-instance list of the run already has the task added in the second version.
    expect(page.get_by_role("link", name="add_ratio", exact=True).first).to_be_visible()
    screenshot(
        page,
        "02-airflow-dag-run",
        "Airflow's own page of a run, with the plugin's **ML** tab next to Task Instances, Code and Details.",
    )
    tab.click()
    page.wait_for_url(re.compile(r"/plugin/mlops_run$"))
    frame = page.frame_locator("iframe")

    # The graph of this run: the second version's tasks, including the added one.
    graph = frame.locator("svg#run-graph")
    expect(graph).to_be_visible()
    nodes = graph.locator("a.node")
    expect(nodes).to_have_count(4)
    for task_id in ("load_flowers", "lengths_positive", "add_ratio", "evaluate"):
        node = graph.locator(f'a.node[data-task-id="{task_id}"]')
        expect(node).to_have_attribute("data-state", re.compile("success"))
        expect(node.locator("text")).to_have_text(task_id)
    expect(graph.locator('path.edge[data-from="add_ratio"][data-to="evaluate"]')).to_have_count(1)
    screenshot(
        page,
        "03-ml-tab-run-graph",
        "The run's ML tab: the graph as it ran (from the run's structure snapshot), coloured "
        "by state; edges pass between the boxes.",
    )

    # The structure diff against the first run: the added task and the changed function body.
    diff = frame.locator("ul.diff")
    expect(diff.locator("li.added").filter(has_text="add_ratio").first).to_contain_text("+ task add_ratio")
    changed = diff.locator("li.changed").filter(has_text="evaluate")
    expect(changed).to_contain_text("code")
    changed.locator("summary", has_text="code diff").click()
    code_diff = changed.locator("pre")
    expect(code_diff).to_be_visible()
    expect(code_diff).to_contain_text('-    return {"accuracy": 0.91, "loss": 0.21}')
    expect(code_diff).to_contain_text('+    return {"accuracy": 0.94, "loss": 0.17}')
    expect(frame.locator("h3", has_text="Structure diff")).to_contain_text(server["first"].run_id)
    diff.scroll_into_view_if_needed()
    screenshot(
        page,
        "04-ml-tab-structure-diff",
        "The structure diff against the previous run: the added task, the changed `evaluate` "
        "with its code diff, added and removed edges.",
    )

    # The DataFrame preview of load_flowers: a table with the column names and the first rows.
    artifact = frame.locator("div.artifact").filter(has=frame.locator("h4", has_text="load_flowers"))
    table = artifact.locator("table.data")
    expect(table).to_be_visible()
    header = table.locator("tr").first
    for column in ("sepal_length", "petal_width", "species"):
        expect(header).to_contain_text(column)
    expect(table.locator("tr").nth(1)).to_contain_text("5.1")
    expect(table.locator("tr").nth(1)).to_contain_text("setosa")
    expect(table.locator("tr").nth(3)).to_contain_text("virginica")
    # Its statistics: a histogram for each numeric column (this run's frame has stem_cm too), top
    # values for the text one.
    artifact.locator("summary", has_text="Schema and statistics").click()
    expect(artifact.locator("svg.hist")).to_have_count(3)
    expect(artifact.locator("svg.hist path").first).to_have_attribute("d", re.compile(r"^M0,24v-"))
    expect(artifact.locator("details tr").filter(has_text="species")).to_contain_text("setosa (2)")
    artifact.scroll_into_view_if_needed()
    screenshot(
        page,
        "05-ml-tab-dataframe-preview",
        "A DataFrame preview: row and column counts, the schema with per-column statistics, "
        "histograms of the numeric columns and top values of the others, the first rows.",
    )


def test_dag_tab_shows_one_metric_chart_per_metric(server: dict[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"/dags/{DAG_ID}")
    tab = page.get_by_role("link", name="ML", exact=True).and_(page.locator('a[href$="/plugin/mlops_dag"]'))
    expect(tab).to_be_visible()
    tab.click()
    page.wait_for_url(re.compile(r"/plugin/mlops_dag$"))
    frame = page.frame_locator("iframe")
    charts = frame.locator("#metric-charts .chart")
    expect(charts).to_have_count(2)
    for name in ("accuracy", "loss"):
        chart = charts.filter(has=frame.locator(".chart-title", has_text=f"evaluate · {name}"))
        expect(chart).to_have_count(1)
        expect(chart.locator("canvas")).to_have_count(1)
        expect(chart.locator("canvas")).to_be_visible()
        # uPlot's legend: the metric's value line over the two runs.
        expect(chart.locator(".u-legend .u-series").filter(has_text=name)).to_have_count(1)
    expect(frame.locator("text=◆ structure changed")).to_have_count(1)
    screenshot(
        page,
        "06-ml-tab-dag-two-runs",
        "The DAG's ML tab after two runs: one chart per metric on an axis of runs, the runs "
        "table with a structure-change marker.",
    )


def test_two_runs_compared_show_the_added_column_and_the_row_delta(server: dict[str, Any], page: Any) -> None:
    """From the DAG tab: pick the two runs (the newest two are preselected), press Compare."""
    from playwright.sync_api import expect

    page.goto(f"/dags/{DAG_ID}")
    page.get_by_role("link", name="ML", exact=True).and_(page.locator('a[href$="/plugin/mlops_dag"]')).click()
    frame = page.frame_locator("iframe")
    frame.get_by_role("button", name="Compare runs A and B").click()
    expect(frame.get_by_role("heading", name=f"Compare runs of {DAG_ID}")).to_be_visible()
    expect(frame.locator("#diff-summary")).to_contain_text("1 task added")
    table = frame.locator("div.table-diff").filter(
        has=frame.locator("h4", has_text="load_flowers return_value")
    )
    expect(table).to_contain_text("rows: 4 → 5 (+1)")
    expect(table).to_contain_text("+ column stem_cm (float64)")
    deltas = frame.locator("#metric-deltas")
    expect(deltas.locator("tr").filter(has_text="accuracy")).to_contain_text("+0.03")
    screenshot(
        page,
        "11-ml-compare-runs",
        "Two runs compared: structure and code diff, metric deltas, and per table artifact the "
        "row-count change, added columns and column statistic changes.",
    )


def test_task_tab_shows_each_input_with_its_producer_and_preview(server: dict[str, Any], page: Any) -> None:
    """``add_ratio`` read ``load_flowers``' frame: its ML tab shows that input's stored preview and
    links to the producer's page."""
    from playwright.sync_api import expect

    run_id = server["second"].run_id
    page.goto(f"/dags/{DAG_ID}/runs/{q(run_id)}/tasks/add_ratio")
    page.get_by_role("link", name="ML", exact=True).and_(
        page.locator('a[href$="/plugin/mlops_task"]')
    ).click()
    frame = page.frame_locator("iframe")
    inputs = frame.locator("#task-inputs")
    expect(inputs.locator("h4")).to_have_text("from load_flowers · return_value")
    expect(inputs.locator("table.data tr").first).to_contain_text("stem_cm")
    expect(inputs.locator("table.data tr").nth(1)).to_contain_text("setosa")
    expect(inputs).to_contain_text("5 rows \u00d7 4 columns")
    inputs.scroll_into_view_if_needed()
    screenshot(
        page,
        "10b-ml-task-inputs",
        "A task's inputs: each artifact it read, linked to the task that wrote it, with the preview "
        "stored when it was written (nothing is loaded to show it).",
    )
    inputs.get_by_role("link", name="load_flowers", exact=True).click()
    expect(frame.get_by_role("heading", name="load_flowers", exact=False).first).to_be_visible()
    expect(frame.locator("pre.code")).to_contain_text("def load_flowers()")


def test_the_ml_view_follows_airflows_dark_mode(server: dict[str, Any], page: Any) -> None:
    """Airflow's UI keeps its colour mode in localStorage ("theme"); the tab's page follows it."""
    from playwright.sync_api import expect

    def open_dag_tab(theme: str) -> Any:
        page.goto(f"/dags/{DAG_ID}")
        page.evaluate(f"window.localStorage.setItem('theme', '{theme}')")
        page.reload()
        ml_tab = page.locator('a[href$="/plugin/mlops_dag"]')
        page.get_by_role("link", name="ML", exact=True).and_(ml_tab).click()
        return page.frame_locator("iframe")

    try:
        frame = open_dag_tab("dark")
        expect(frame.locator("html")).to_have_attribute("data-theme", "dark")
        expect(frame.locator("body")).to_have_css("background-color", "rgb(26, 32, 44)")
        expect(frame.locator("#metric-charts .chart canvas").first).to_be_visible()
        screenshot(
            page,
            "12-ml-tab-dark-mode",
            "Airflow's dark mode: the ML tab follows the colour mode Airflow keeps in the browser.",
        )
        frame = open_dag_tab("light")
        expect(frame.locator("body")).to_have_css("background-color", "rgb(255, 255, 255)")
    finally:
        page.evaluate("window.localStorage.removeItem('theme')")
