"""The ML view in Chromium through Airflow's own UI: charts with 1 and 50 runs, the Plugins entry,
the overview of a failed DAG and the layout of every page at 1024 px.

The module-scoped fixture writes three DAGs of one pipeline (load a frame, check it, evaluate it)
and runs each once with ``dag.test()``: ``mlops_chart_one`` (one run), ``mlops_chart_fifty`` (its
first run, then 49 earlier runs written as real metadata-DB rows through Airflow's models: the runs,
their task instances and the check and metric records their tasks would have pushed, as
``dev/bench_ui.py`` does; one seeded loss broke its bound), ``mlops_chart_thousand`` (the same with
999 earlier runs) and ``mlops_chart_failing`` (a task raises, an error check fails). Then it
starts ``airflow api-server`` with the simple auth manager and logs in through Airflow's login page.

Screenshots go to ``$MLOPS_TEST_ARTIFACTS`` and, with ``MLOPS_UPDATE_TOUR=1`` (``dev/ui_tour.py``),
to ``docs/ui-tour/`` with their captions.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from datetime import timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pytest
from browser import chromium_page, frame_of_tab, login, open_ml_tab, require_browser, screenshot_on_failure
from conftest import DAGS_DIR, api_server_process
from test_ui_e2e import screenshot

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
USER, PASSWORD = "admin", "admin-pw"
ONE, FIFTY, FAILING = "mlops_chart_one", "mlops_chart_fifty", "mlops_chart_failing"
THOUSAND = "mlops_chart_thousand"
SEEDED = 49
#: The seeded run whose loss broke its upper bound with severity error (a failed point).
FAILED_RUN = 40
#: Runs seeded before this one have the loss's upper bound at 0.5, later ones at 0.3.
BOUND_CHANGE = 25

PIPELINES = """
from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider.decorators import ml_check, ml_metric, ml_task


def pipeline(dag_id: str, failing: bool) -> None:
    @dag(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
    def build():
        @ml_task
        def load_customers() -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "age": [23, 35, 41, 29, 52, 38, 47, 31] * 4,
                    "spend": [12.5, 40.0, 33.1, 8.2, 95.0, 41.7, 60.3, 22.4] * 4,
                    "segment": ["new", "loyal", "loyal", "new", "vip", "loyal", "vip", "new"] * 4,
                }
            )

        @ml_check(severity="error" if failing else "warning")
        def spend_positive(df: pd.DataFrame) -> pd.Series:
            return df["spend"] > (20 if failing else 0)

        @ml_metric(lower={"accuracy": 0.8}, upper={"loss": 0.3}, severity="warning")
        def evaluate(df: pd.DataFrame) -> dict:
            return {"accuracy": 0.91, "loss": 0.12}

        frame = load_customers()
        spend_positive(frame)
        evaluate(frame)
        if failing:

            @task
            def publish() -> None:
                raise RuntimeError("the model registry refused the upload")

            publish()

    build()


pipeline("mlops_chart_one", failing=False)
pipeline("mlops_chart_fifty", failing=False)
pipeline("mlops_chart_failing", failing=True)
pipeline("mlops_chart_thousand", failing=False)
"""


def _seed_earlier_runs(dag_id: str, template_run_id: str, count: int) -> list[str]:
    """``count`` finished runs of ``dag_id`` that started before ``template_run_id``, each with the
    task instances of that run and the check and metric records its tasks push (values vary, the
    loss's upper bound changes once, a few runs warn), written through Airflow's models."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    from airflow_mlops_provider.records import CHECK_KEY, METRICS_KEY, CheckRecord, MetricEntry, MetricRecord

    with create_session() as session:
        template = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == template_run_id)
        )
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == template_run_id)
        ).all()
        started = template.start_date - timedelta(days=count)
        run_ids = [f"manual__seeded_{n:02d}" for n in range(count)]
        session.execute(
            insert(DagRun.__table__),
            [
                {"dag_id": dag_id, "run_id": run_id, "run_type": "manual", "state": "success"}
                | {"run_after": started + timedelta(days=n), "start_date": started + timedelta(days=n)}
                | {"end_date": started + timedelta(days=n, minutes=1), "clear_number": 0}
                | {"span_status": "ended", "created_dag_version_id": template.created_dag_version_id}
                for n, run_id in enumerate(run_ids)
            ],
        )
        ids = dict(
            session.execute(
                select(DagRun.run_id, DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids))
            ).all()
        )
        columns = ("task_id", "dag_id", "map_index", "pool", "operator", "dag_version_id", "try_number")
        session.execute(
            insert(TaskInstance.__table__),
            [
                {c: getattr(ti, c) for c in columns} | {"id": _uuid(), "run_id": run_id, "state": "success"}
                for run_id in run_ids
                for ti in tis
            ],
        )
        rows = []
        for n, run_id in enumerate(run_ids):
            accuracy = round(0.76 + 0.2 * ((n * 7) % 10) / 10, 3)
            loss = round(1 - accuracy, 3)
            upper = 0.5 if n < BOUND_CHANGE else 0.3
            low = accuracy < 0.8
            broke = n == FAILED_RUN
            loss = 0.45 if broke else loss
            metrics = MetricRecord(
                severity="warning",
                metrics=[
                    MetricEntry(
                        name="accuracy",
                        value=accuracy,
                        lower=0.8,
                        upper=None,
                        status="warning" if low else "ok",
                        breaches=[f"accuracy {accuracy} < lower 0.8"] if low else [],
                    ),
                    MetricEntry(
                        name="loss",
                        value=loss,
                        lower=None,
                        upper=upper,
                        status="failed" if broke else "ok",
                        breaches=[f"loss {loss} > upper {upper}"] if broke else [],
                    ),
                ],
            )
            warned = n % 9 == 4
            check = CheckRecord(
                name="spend_positive",
                severity="warning",
                status="warning" if warned else "ok",
                message="2 of 32 rows failed" if warned else "32 of 32 rows passed",
                passed=not warned,
                failing_count=2 if warned else 0,
            )
            where = {"dag_run_id": ids[run_id], "dag_id": dag_id, "run_id": run_id, "map_index": -1}
            when = {"timestamp": started + timedelta(days=n)}
            rows.append(where | when | {"task_id": "evaluate", "key": METRICS_KEY, "value": metrics.to_row()})
            rows.append(
                where | when | {"task_id": "spend_positive", "key": CHECK_KEY, "value": check.to_row()}
            )
        session.execute(insert(XComModel.__table__), rows)
    return run_ids


def _uuid() -> Any:
    import uuid

    return uuid.uuid4()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three DAGs run, the fifty-run history seeded, an api-server with the simple auth manager."""
    require_browser()
    from airflow_runner import run_dag

    path = DAGS_DIR / "mlops_ui_charts.py"
    path.write_text(PIPELINES)
    home = tmp_path_factory.mktemp("charts")
    try:
        runs = {dag_id: run_dag("mlops_ui_charts", dag_id) for dag_id in (ONE, FIFTY, FAILING, THOUSAND)}
        assert runs[ONE].state == runs[FIFTY].state == runs[THOUSAND].state == "success", runs[
            ONE
        ].task_states
        assert runs[FAILING].state == "failed", runs[FAILING].task_states
        seeded = _seed_earlier_runs(FIFTY, runs[FIFTY].run_id, SEEDED)
        _seed_earlier_runs(THOUSAND, runs[THOUSAND].run_id, 999)
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({USER: PASSWORD}))
        env = {
            **os.environ,
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "mlops-charts-test-secret",
            "AIRFLOW__API__SECRET_KEY": "mlops-charts-test-secret",
        }
        with api_server_process(env, home / "api-server.log") as url:
            yield {"url": url, "runs": runs, "seeded": seeded}
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def page(server: dict[str, Any]) -> Iterator[Any]:
    """Chromium logged in through Airflow's login page (simple auth manager)."""
    with chromium_page(server["url"]) as page:
        with screenshot_on_failure(page, "charts-login"):
            login(page, server["url"], USER, PASSWORD)
        yield page


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def ml_frame(page: Any) -> Any:
    """The ML tab's iframe as a Playwright ``Frame`` (to evaluate JavaScript in it)."""
    return page.locator("iframe").element_handle().content_frame()


def open_dag_tab(page: Any, dag_id: str) -> Any:
    """Airflow's DAG page, then its "ML" tab; returns the iframe's content."""
    page.goto(f"/dags/{dag_id}")
    return open_ml_tab(page, "mlops_dag")


CHART_POINTS = """
() => Array.from(document.querySelectorAll('#metric-charts .chart')).map((el) => {
  const u = el.uplot;
  const points = [];
  u.series.forEach((s, i) => {
    if (i === 0) return;
    u.data[i].forEach((v, j) => {
      if (v === null || v === undefined) return;
      points.push({series: s.label, x: u.valToPos(u.data[0][j], 'x'), y: u.valToPos(v, s.scale)});
    });
  });
  return {
    title: el.querySelector('.chart-title').textContent,
    width: u.over.clientWidth, height: u.over.clientHeight,
    xmin: u.scales.x.min, xmax: u.scales.x.max, points: points, splits: u.axes[0]._splits,
  };
})
"""


def chart_points(page: Any, dag_id: str, charts: int) -> list[dict[str, Any]]:
    from playwright.sync_api import expect

    frame = open_dag_tab(page, dag_id)
    expect(frame.locator("#metric-charts .chart canvas")).to_have_count(charts)
    return ml_frame(page).evaluate(CHART_POINTS)


def outside(chart: dict[str, Any]) -> list[dict[str, Any]]:
    """Points of a chart drawn outside its plot area (CSS pixels, relative to the plot)."""
    return [
        p for p in chart["points"] if not (0 <= p["x"] <= chart["width"] and 0 <= p["y"] <= chart["height"])
    ]


def test_a_chart_with_one_run_draws_its_point_inside_the_plot(server: dict[str, Any], page: Any) -> None:
    with screenshot_on_failure(page, "chart-one-run"):
        charts = chart_points(page, ONE, 2)
    for chart in charts:
        assert outside(chart) == [], chart
        assert chart["xmax"] - chart["xmin"] >= 1, f"degenerate x scale: {chart}"
        (point,) = [p for p in chart["points"] if p["series"] in ("accuracy", "loss")]
        assert chart["splits"] == [1], f"grid lines between runs: {chart['splits']}"
        # One run sits mid-chart, away from the edges, not on an axis of its own.
        assert abs(point["x"] - chart["width"] / 2) < chart["width"] * 0.1, chart
        assert 0 < point["y"] < chart["height"], chart


def test_a_chart_with_fifty_runs_draws_every_point_inside_the_plot(server: dict[str, Any], page: Any) -> None:
    with screenshot_on_failure(page, "chart-fifty-runs"):
        charts = chart_points(page, FIFTY, 2)
    screenshot(
        page,
        "07-ml-tab-dag-fifty-runs",
        "DAG tab, 50 runs: one chart per metric on an axis of runs; bounds are dashed steps "
        "(the loss's upper bound changed from 0.5 to 0.3 at run 26), warnings are amber points.",
    )
    for chart in charts:
        assert outside(chart) == [], chart
        values = [p["x"] for p in chart["points"] if p["series"] in ("accuracy", "loss")]
        assert len(values) == SEEDED + 1, chart["title"]
        gaps = [b - a for a, b in pairwise(values)]
        assert min(gaps) > 5 and max(gaps) - min(gaps) < 1, f"runs not evenly spaced: {gaps}"
    loss = next(c for c in charts if c["title"].endswith("loss"))
    upper = sorted({round(p["y"]) for p in loss["points"] if p["series"] == "upper bound"})
    assert len(upper) == 2, f"the upper bound changed once, drawn at two heights: {upper}"


def _chart(title_end: str) -> str:
    """JavaScript: the uPlot instance of the chart whose title ends with ``title_end``."""
    return (
        "Array.from(document.querySelectorAll('#metric-charts .chart'))"
        f".find((el) => el.querySelector('.chart-title').textContent.endsWith({json.dumps(title_end)})).uplot"
    )


#: Whether the drawn upper-bound line (its Path2D, stroked 3 px wide) passes through (run, value).
BOUND_AT = (
    """([run, value]) => {
  const u = """
    + _chart("loss")
    + """, ctx = u.ctx, path = u.series[3]._paths.stroke;
  ctx.save(); ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.lineWidth = 3; ctx.setLineDash([]);
  const hit = ctx.isPointInStroke(path, u.valToPos(run, 'x', true), u.valToPos(value, 'y', true));
  ctx.restore();
  return hit;
}"""
)

#: The legend's text with the cursor on a run of the loss chart.
LEGEND_AT = (
    """(run) => {
  const u = """
    + _chart("loss")
    + """;
  u.setCursor({left: u.valToPos(run, 'x'), top: u.valToPos(0.2, 'y')});
  return u.root.querySelector('.u-legend').innerText;
}"""
)

#: Per chart: the failed and warning marker series (their shown state and the runs they mark).
MARKERS = """
() => Array.from(document.querySelectorAll('#metric-charts .chart')).map((el) => {
  const u = el.uplot;
  const runs = (i) => u.data[0].filter((x, j) => u.data[i][j] !== null && u.data[i][j] !== undefined);
  return {
    title: el.querySelector('.chart-title').textContent,
    failed: {label: u.series[4].label, show: u.series[4].show, runs: runs(4)},
    warning: {label: u.series[5].label, show: u.series[5].show, runs: runs(5)},
  };
})
"""


def test_fifty_run_charts_step_their_bounds_name_runs_on_hover_and_mark_problems(
    server: dict[str, Any], page: Any
) -> None:
    """The loss's upper bound was 0.5 up to run 25 and 0.3 from run 26: the drawn line holds 0.5
    until run 26, then drops (a line between the runs would cross 0.4 halfway). Hovering run 26
    names it with its date; the failed loss and the low accuracies are marked."""
    import datetime as dt

    with screenshot_on_failure(page, "chart-fifty-steps"):
        chart_points(page, FIFTY, 2)
        frame = ml_frame(page)
        assert frame.evaluate(BOUND_AT, [BOUND_CHANGE + 0.5, 0.5]), "the old bound holds until the change"
        assert not frame.evaluate(BOUND_AT, [BOUND_CHANGE + 0.5, 0.4]), "drawn as a slope, not a step"
        assert frame.evaluate(BOUND_AT, [BOUND_CHANGE + 1.5, 0.3])
        assert not frame.evaluate(BOUND_AT, [BOUND_CHANGE + 1.5, 0.5])
        legend = frame.evaluate(LEGEND_AT, BOUND_CHANGE + 1)
        markers = {m["title"]: m for m in frame.evaluate(MARKERS)}
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    run_id = server["seeded"][BOUND_CHANGE]  # the 26th run, oldest first
    with create_session() as session:
        started = session.query(DagRun.start_date).filter_by(dag_id=FIFTY, run_id=run_id).scalar()
    when = started.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    assert f"#{BOUND_CHANGE + 1} {run_id} ({when})" in legend, legend
    loss, accuracy = markers["evaluate · loss"], markers["evaluate · accuracy"]
    assert loss["failed"] == {"label": "failed", "show": True, "runs": [FAILED_RUN + 1]}, loss
    assert accuracy["warning"]["show"] and len(accuracy["warning"]["runs"]) >= 5, accuracy


#: Per chart: the x axis' splits and its labels' boxes (CSS pixels, as drawn centred on the tick).
X_LABELS = """
() => Array.from(document.querySelectorAll('#metric-charts .chart')).map((el) => {
  const u = el.uplot, ax = u.axes[0], ctx = u.ctx, ratio = window.devicePixelRatio || 1;
  ctx.save(); ctx.font = ax.font[0];
  const labels = ax._splits.map((v, i) => ({v: v, text: ax._values[i]})).filter((l) => l.text).map((l) => {
    const w = ctx.measureText(l.text).width / ratio, x = u.valToPos(l.v, 'x');
    return {text: l.text, left: x - w / 2, right: x + w / 2};
  });
  ctx.restore();
  return {title: el.querySelector('.chart-title').textContent, splits: ax._splits, labels: labels};
})
"""


def test_a_chart_with_a_thousand_runs_stays_readable(server: dict[str, Any], page: Any) -> None:
    """1,000 runs ("all"): every point inside the plot, x ticks at whole runs only, and labels that
    do not touch each other."""
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "chart-thousand-runs"):
        frame = open_dag_tab(page, THOUSAND)
        frame.get_by_role("link", name="all", exact=True).click()
        expect(frame.locator('#metric-charts .chart[data-points="1000"] canvas')).to_have_count(2)
        charts = ml_frame(page).evaluate(CHART_POINTS)
        axes = ml_frame(page).evaluate(X_LABELS)
    for chart in charts:
        assert outside(chart) == [], [p for p in outside(chart)][:5]
        assert len([p for p in chart["points"] if p["series"] in ("accuracy", "loss")]) == 1000
    for axis in axes:
        assert all(float(x).is_integer() for x in axis["splits"]), axis["splits"]
        labels = axis["labels"]
        assert len(labels) >= 3 and labels[-1]["text"] in ("#1000", "#750", "#800", "#900"), labels
        overlaps = [(a["text"], b["text"]) for a, b in pairwise(labels) if a["right"] + 2 > b["left"]]
        assert overlaps == [], (axis["title"], labels)


def test_two_runs_picked_in_the_runs_table_are_compared(server: dict[str, Any], page: Any) -> None:
    """Pick two runs that are not the preselected newest two: the compare page is about them."""
    from playwright.sync_api import expect

    a, b = server["seeded"][10], server["seeded"][FAILED_RUN]
    with screenshot_on_failure(page, "compare-picked"):
        frame = open_dag_tab(page, FIFTY)
        frame.get_by_role("radio", name=f"compare from {a}", exact=True).check()
        frame.get_by_role("radio", name=f"compare to {b}", exact=True).check()
        frame.get_by_role("button", name="Compare runs A and B").click()
        expect(frame.get_by_role("heading", name=f"Compare runs of {FIFTY}")).to_be_visible()
        picked = frame.locator("#compare-runs tr")
        expect(picked.nth(0).get_by_role("link")).to_have_text(a)
        expect(picked.nth(1).get_by_role("link")).to_have_text(b)
        loss = frame.locator("#metric-deltas tr").filter(
            has=frame.get_by_role("cell", name="loss", exact=True)
        )
        expect(loss).to_contain_text("0.24")  # run 11's loss
        expect(loss).to_contain_text("0.45")  # run 41's, which broke the bound
        expect(loss.locator("td.status-failed")).to_have_text("0.45")


def test_plugins_ml_opens_the_overview_with_an_address_that_links_back(
    server: dict[str, Any], page: Any
) -> None:
    """Plugins > ML (Airflow lists plugin entries under Plugins when there are several, here with
    FAB's legacy views). For nav entries Airflow's UI mirrors the view's own path into the address
    bar (``/plugin/<url_route>`` + the iframe's path), so the address is a link back to the page
    shown: following a link in the view changes it, and reloading it opens the same page."""
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "plugins-ml"):
        page.goto("/")
        page.get_by_role("button", name="Plugins").click()
        entry = page.get_by_role("menuitem", name="ML", exact=True)
        expect(entry).to_have_attribute("href", "/plugin/ml")
        entry.click()
        frame = frame_of_tab(page)
        expect(frame.get_by_role("heading", name="DAGs with artifacts and ML records")).to_be_visible()
        page.wait_for_url(re.compile(r"/plugin/ml/mlops/$"))
        frame.get_by_role("link", name=FIFTY, exact=True).click()
        page.wait_for_url(re.compile(rf"/plugin/ml/mlops/dags/{FIFTY}$"))
        page.reload()
        expect(frame_of_tab(page).get_by_role("heading", name=FIFTY, exact=True)).to_be_visible()


def test_the_overview_says_what_failed_in_a_failed_dag(server: dict[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "overview-failed"):
        page.goto("/")
        page.get_by_role("button", name="Plugins").click()
        page.get_by_role("menuitem", name="ML", exact=True).click()
        frame = frame_of_tab(page)
        row = frame.get_by_role("row").filter(has=frame.get_by_role("link", name=FAILING, exact=True))
        expect(row).to_contain_text("failed")
        for task_id in ("publish", "spend_positive"):
            expect(row.locator(".problem-task").filter(has_text=task_id)).to_have_count(1)
        expect(row.locator(".problem-check")).to_contain_text("8 of 32 rows failed")
        expect(row).not_to_contain_text("none")
        clean = frame.get_by_role("row").filter(has=frame.get_by_role("link", name=ONE, exact=True))
        expect(clean).to_contain_text("none")
    screenshot(
        page,
        "01-ml-overview",
        "Plugins > ML: the overview. Per DAG its latest run and that run's "
        "problems: failed tasks first, then failed and warning checks and metrics.",
    )


def test_a_failed_run_says_what_failed_and_its_task_page_shows_code(
    server: dict[str, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    run_id = server["runs"][FAILING].run_id
    with screenshot_on_failure(page, "failed-run"):
        page.goto(f"/dags/{FAILING}/runs/{q(run_id)}")
        frame = open_ml_tab(page, "mlops_run")
        failed = frame.locator("#failed-tasks")
        expect(failed.locator("li").first).to_contain_text("publish")
        check = failed.locator("li.check").filter(has_text="spend_positive")
        expect(check).to_contain_text("severity error")
        check.locator("summary", has_text="failing samples").click()
        expect(check.locator("table.data tr")).to_have_count(9)  # the header and the 8 failing rows
    screenshot(
        page,
        "09-ml-tab-what-failed",
        "A failed run's ML tab starts with what failed: failed "
        "tasks, then failed checks with severity, message and failing samples, then metric breaches.",
    )
    with screenshot_on_failure(page, "failed-task"):
        page.goto(f"/dags/{FAILING}/runs/{q(run_id)}/tasks/publish")
        frame = open_ml_tab(page, "mlops_task")
        expect(frame.locator("pre.code")).to_contain_text("raise RuntimeError")
    screenshot(
        page,
        "10-ml-task-page",
        "A task's ML tab: state, try and duration, the log's last lines "
        "(when the log can be read), the code that ran, its artifacts and a trend across runs.",
    )


def test_runs_table_and_checks_grid_of_fifty_runs(server: dict[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "runs-and-checks"):
        frame = open_dag_tab(page, FIFTY)
        runs = frame.locator("table.runs")
        expect(runs.locator("tr")).to_have_count(51)
        expect(runs.locator("tr").first).to_contain_text("evaluate · loss")
        expect(runs.locator("td.metric.status-warning").first).to_be_visible()
        grid = frame.locator("table.checks-grid")
        expect(grid.locator("tr").nth(1).locator("td.cell")).to_have_count(30)
        expect(grid.locator("td.cell.status-warning").first).to_be_visible()
        frame.locator("h3", has_text="Checks by run").scroll_into_view_if_needed()
    screenshot(
        page,
        "08-ml-tab-runs-and-checks",
        "Further down the DAG tab: the runs table with a "
        "column per metric (coloured by status) and the checks-by-runs grid (newest run first).",
    )


#: Document and widest-element widths of the ML page, and the run graph against its box.
OVERFLOW = """
() => {
  const root = document.documentElement;
  const graph = document.querySelector('#run-graph');
  return {
    scroll: root.scrollWidth, client: root.clientWidth,
    graph: graph ? [graph.getBoundingClientRect().width, graph.parentElement.clientWidth] : null,
  };
}
"""


def test_every_ml_page_fits_a_1024_pixel_window(server: dict[str, Any], page: Any) -> None:
    """At 1024 px no ML page is wider than its tab (wide tables scroll in their own box) and the run
    graph is scaled into the tab's width."""
    from playwright.sync_api import expect

    failing_run = server["runs"][FAILING].run_id
    widths = {}
    page.set_viewport_size({"width": 1024, "height": 768})
    try:
        with screenshot_on_failure(page, "width-1024"):
            page.goto("/")
            page.get_by_role("button", name="Plugins").click()
            page.get_by_role("menuitem", name="ML", exact=True).click()
            expect(frame_of_tab(page).locator("table.grid")).to_be_visible()
            widths["overview"] = ml_frame(page).evaluate(OVERFLOW)
            frame = open_dag_tab(page, FIFTY)
            expect(frame.locator("#metric-charts .chart canvas")).to_have_count(2)
            widths["dag"] = ml_frame(page).evaluate(OVERFLOW)
            frame.get_by_role("button", name="Compare runs A and B").click()
            expect(frame.get_by_role("heading", name=f"Compare runs of {FIFTY}")).to_be_visible()
            widths["compare"] = ml_frame(page).evaluate(OVERFLOW)
            page.goto(f"/dags/{FAILING}/runs/{q(failing_run)}")
            expect(open_ml_tab(page, "mlops_run").locator("#run-graph")).to_be_visible()
            widths["run"] = ml_frame(page).evaluate(OVERFLOW)
            page.goto(f"/dags/{FAILING}/runs/{q(failing_run)}/tasks/publish")
            expect(open_ml_tab(page, "mlops_task").locator("pre.code")).to_be_visible()
            widths["task"] = ml_frame(page).evaluate(OVERFLOW)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
    wider = {name: w for name, w in widths.items() if w["scroll"] > w["client"]}
    assert wider == {}, f"pages wider than their tab at 1024 px: {wider}"
    graph_width, box_width = widths["run"]["graph"]
    assert graph_width <= box_width, widths["run"]
