"""The provider as clusters run it: PostgreSQL metadata DB, separate scheduler, dag-processor and
api-server, LocalExecutor task processes with no database access.

One cluster for the module. ``mlops_prod_history`` (a daily DAG, one run at a time) gets runs the
ways Airflow 3 creates them, in this order:

1. ``scheduled``: created by the scheduler from the schedule when the DAG is unpaused;
2. ``rest``: ``POST /api/v2/dags/{id}/dagRuns`` with ``"logical_date": null`` (what the UI does);
3. ``cli``: ``airflow dags trigger`` (no logical date either);
4. ``regressed``: a REST run whose accuracy drops (the regression gate must catch it);
5. ``backfill``: a backfill of two days of 2024 (their ``run_after`` lies in 2024, before all the
   runs above, although they ran after them);
6. ``rest`` is then cleared and runs again: it happened last.

"Previous", "latest" and every history must follow that order. The assertions read what users read:
the ML view's JSON (the same data as its pages), ``airflow mlops`` CLI output, the records the
worker wrote, and Airflow's own UI in Chromium (``test_production_ui.py`` style, below).
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.parse
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
from cluster import PASSWORD, USER, AirflowCluster, cluster_fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow]

DAGS = Path(__file__).parent / "dags"
DAG_ID = "mlops_prod_history"

cluster = cluster_fixture([DAGS / f"{DAG_ID}.py"], unpause=False)


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def view(cluster: AirflowCluster, path: str) -> Any:
    """A JSON page of the ML view, authenticated like the UI's iframe requests."""
    response = cluster.http("GET", f"/mlops/api{path}")
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:2000]}"
    return response.json()


def records(cluster: AirflowCluster, run_id: str) -> dict[str, Any]:
    page = view(cluster, f"/dags/{DAG_ID}/runs/{q(run_id)}")
    checks = {c["task_id"]: c for c in page["checks"]}
    metrics = {m["name"]: m for m in page["metrics"]}
    return {"page": page, "checks": checks, "metrics": metrics}


@pytest.fixture(scope="module")
def history(cluster: AirflowCluster) -> Iterator[dict[str, str]]:
    """Creates the runs described in the module docstring; yields their run ids by role."""
    runs: dict[str, str] = {}
    cluster.unpause(DAG_ID)
    cluster.poll("the scheduler to create the scheduled run", lambda: bool(cluster.runs(DAG_ID)), 120)
    runs["scheduled"] = cluster.runs(DAG_ID)[0]["dag_run_id"]
    assert cluster.run(DAG_ID, runs["scheduled"])["run_type"] == "scheduled"
    assert cluster.wait_for_run(DAG_ID, runs["scheduled"]) == "success"

    runs["rest"] = cluster.trigger_rest(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, runs["rest"]) == "success"
    runs["cli"] = cluster.trigger_cli(DAG_ID, {"shift": 0.4})
    assert cluster.wait_for_run(DAG_ID, runs["cli"]) == "success"
    runs["regressed"] = cluster.trigger_rest(DAG_ID, {"accuracy": 0.5})
    assert cluster.wait_for_run(DAG_ID, runs["regressed"]) == "success"  # the gate is a warning

    backfill = cluster.backfill(DAG_ID, "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", max_active_runs=1)
    backfilled = cluster.wait_for_backfill(backfill["id"])
    assert len(backfilled) == 2 and {r["state"] for r in backfilled} == {"success"}, backfilled
    runs["backfill_1"], runs["backfill_2"] = (r["dag_run_id"] for r in backfilled)

    cluster.clear_run(DAG_ID, runs["rest"])
    assert cluster.wait_for_run(DAG_ID, runs["rest"]) == "success"
    yield runs


def _started(cluster: AirflowCluster, run_id: str) -> str:
    return cluster.run(DAG_ID, run_id)["start_date"]


def test_runs_without_logical_date_are_what_airflow_creates(cluster, history) -> None:
    for role in ("rest", "cli", "regressed"):
        run = cluster.run(DAG_ID, history[role])
        assert run["logical_date"] is None and run["run_type"] == "manual", run
    # The backfilled runs were due in 2024, long before the manual runs, yet ran after them.
    backfilled = cluster.run(DAG_ID, history["backfill_1"])
    assert backfilled["run_after"] < cluster.run(DAG_ID, history["rest"])["run_after"]
    assert _started(cluster, history["backfill_1"]) > _started(cluster, history["regressed"])


def test_previous_run_follows_the_order_runs_happened(cluster, history) -> None:
    """Each run page compares with the run that started just before it."""
    expected = {
        "scheduled": None,
        "cli": "scheduled",  # rest ran in between, but it was cleared and ran again at the end
        "regressed": "cli",
        "backfill_1": "regressed",  # run_after order would put it first, with no previous run
        "backfill_2": "backfill_1",
        "rest": "backfill_2",  # cleared and run again: it happened last
    }
    for role, before in expected.items():
        page = view(cluster, f"/dags/{DAG_ID}/runs/{q(history[role])}")
        got = (page["previous"] or {}).get("run_id")
        assert got == (history[before] if before else None), f"{role}: previous is {got}"
    overview = view(cluster, "/overview")
    latest = {d["dag_id"]: d["latest"]["run_id"] for d in overview["dags"]}
    assert latest[DAG_ID] == history["rest"]
    runs = view(cluster, f"/dags/{DAG_ID}/runs")
    order = [r["run_id"] for r in runs]
    roles = {v: k for k, v in history.items()}
    assert [roles[r] for r in order] == [
        "rest",
        "backfill_2",
        "backfill_1",
        "regressed",
        "cli",
        "scheduled",
    ]


def test_first_run_records_skipped_not_passed(cluster, history) -> None:
    first = records(cluster, history["scheduled"])
    drift = first["checks"]["no_drift"]
    assert drift["status"] == "skipped", drift
    assert drift["message"], "a skipped check says why"
    accuracy = first["metrics"]["accuracy"]
    assert accuracy["status"] == "skipped" and "no earlier successful run" in accuracy["skipped"]
    assert accuracy["regression"]["passed"] is None


def test_gates_compare_with_earlier_runs_without_logical_dates(cluster, history) -> None:
    # When it ran, the CLI run (no logical date) compared with the REST and the scheduled run.
    cli = records(cluster, history["cli"])
    assert cli["metrics"]["accuracy"]["status"] == "ok"
    assert cli["metrics"]["accuracy"]["regression"]["history"] == [0.9, 0.9]
    # shift=0.4 moved the score distribution: drift against the previous successful run.
    drift = cli["checks"]["no_drift"]
    assert drift["status"] == "warning" and drift["details"]["score"]["drifted"] is True, drift
    # customer_id is an id (all values distinct): compared by default it would always drift.
    assert drift["details"]["customer_id"]["skipped"] is True
    assert drift["details"]["age"]["drifted"] is False
    regressed = records(cluster, history["regressed"])["metrics"]["accuracy"]
    assert regressed["status"] == "warning" and regressed["regression"]["passed"] is False
    assert regressed["regression"]["history"] == [0.9, 0.9, 0.9]
    assert any("regressed" in b for b in regressed["breaches"])
    # The first backfilled run compares with the three runs that happened before it.
    backfilled = records(cluster, history["backfill_1"])["metrics"]["accuracy"]
    assert backfilled["regression"]["history"] == [0.5, 0.9, 0.9]
    # The re-run of the cleared run compares with what ran before its re-run.
    rerun = records(cluster, history["rest"])
    assert rerun["checks"]["no_drift"]["status"] == "ok"
    assert rerun["metrics"]["accuracy"]["regression"]["history"] == [0.9, 0.9, 0.5]


def test_cli_shows_history_in_order_with_skipped(cluster, history) -> None:
    out = cluster.cli("mlops", "metrics", DAG_ID, "quality", "accuracy", "--output", "json").stdout
    rows = json.loads(out[out.index("[") :])
    roles = {v: k for k, v in history.items()}
    assert [roles[r["run_id"]] for r in rows] == [
        "rest",
        "backfill_2",
        "backfill_1",
        "regressed",
        "cli",
        "scheduled",
    ]
    assert rows[-1]["status"] == "skipped" and "no earlier successful run" in rows[-1]["skipped"]
    assert rows[3]["status"] == "warning"
    table = cluster.cli("mlops", "checks", DAG_ID, "--run", history["scheduled"]).stdout
    assert "skipped" in table and "no_drift" in table
    latest = cluster.cli("mlops", "checks", DAG_ID, "--run", "latest", "--output", "json").stdout
    assert {r["run_id"] for r in json.loads(latest[latest.index("[") :])} == {history["rest"]}


def test_task_tab_works_for_unmapped_and_mapped_tasks(cluster, history) -> None:
    """The task-instance tab's URL as Airflow's UI builds it: ``{MAP_INDEX}`` is only filled in for
    mapped task instances."""
    run = q(history["cli"])
    unmapped = cluster.http("GET", f"/mlops/dags/{DAG_ID}/runs/{run}/tasks/extract?map_index={{MAP_INDEX}}")
    assert unmapped.status_code == 200, unmapped.text[:500]
    assert "customer_id" in unmapped.text and "def extract()" in unmapped.text
    mapped = cluster.http("GET", f"/mlops/dags/{DAG_ID}/runs/{run}/tasks/shard?map_index=1")
    assert mapped.status_code == 200 and "part" in mapped.text
    bad = cluster.http("GET", f"/mlops/dags/{DAG_ID}/runs/{run}/tasks/extract?map_index=x")
    assert bad.status_code == 400 and "map index" in bad.text


def test_a_boolean_series_check_logs_one_line(cluster, history) -> None:
    log = cluster.task_log(DAG_ID, history["cli"], "ages_plausible")
    assert "all 200 rows passed" in log, log[-3000:]
    assert "dtype: bool" not in log and "Returned value was" not in log, log[-3000:]


def test_table_previews_have_top_values_for_string_columns(cluster, history) -> None:
    """``segment`` is a pandas ``string`` column, what ``read_sql`` returns under pandas 3."""
    page = view(cluster, f"/dags/{DAG_ID}/runs/{q(history['cli'])}/tasks/extract")
    (frame,) = [a for a in page["artifacts"] if a["key"] == "return_value"]
    stats = frame["preview"]["stats"]["segment"]
    assert {value for value, _ in stats["top"]} == {"gold", "silver", "bronze"}
    assert sum(count for _, count in stats["top"]) == 200 and stats["distinct"] == 3


# -- Airflow's own UI, in Chromium, clicking like a person ------------------------------------------


@pytest.fixture(scope="module")
def page(cluster: AirflowCluster, history: dict[str, str]) -> Iterator[Any]:
    require_browser()
    with chromium_page(cluster.url) as page:
        with screenshot_on_failure(page, "prod-login"):
            login(page, cluster.url, USER, PASSWORD)
        yield page


def test_ui_first_run_shows_skipped_gates(page: Any, history: dict[str, str]) -> None:
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "prod-first-run"):
        open_run(page, DAG_ID, history["scheduled"])
        frame = open_ml_tab(page, "mlops_run")
        expect(frame.get_by_text("First run of this DAG.")).to_be_visible()
        drift = frame.locator("tr").filter(has=frame.get_by_role("cell", name="no_drift", exact=True))
        expect(drift.locator(".status")).to_have_text("skipped")
        accuracy = frame.locator("tr").filter(has=frame.get_by_role("cell", name="accuracy", exact=True))
        expect(accuracy.locator(".status")).to_have_text("skipped")
        expect(accuracy).to_contain_text("regression gate skipped: no earlier successful run")


def test_ui_run_compares_with_the_run_before_it(page: Any, history: dict[str, str]) -> None:
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "prod-backfill-run"):
        open_run(page, DAG_ID, history["backfill_1"])
        frame = open_ml_tab(page, "mlops_run")
        heading = frame.get_by_role("heading", name="Structure diff", exact=False)
        expect(heading).to_contain_text(f"against {history['regressed']}")
        accuracy = frame.locator("tr").filter(has=frame.get_by_role("cell", name="accuracy", exact=True))
        expect(accuracy.locator(".status")).to_have_text("ok")


def test_ui_task_tabs_of_unmapped_and_mapped_tasks(page: Any, history: dict[str, str]) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "prod-unmapped-task"):
        open_task(page, DAG_ID, history["cli"], "extract")
        frame = open_ml_tab(page, "mlops_task")
        expect(frame.locator("body")).not_to_contain_text('"detail"')
        artifact = frame.locator("div.artifact").filter(
            has=frame.get_by_role("heading", name="extract · return_value")
        )
        expect(artifact).to_contain_text("DataFrame 200 rows x 4 columns")
        expect(artifact.locator("table.data").get_by_role("columnheader", name="segment")).to_be_visible()
        expect(frame.locator("pre.code")).to_contain_text("def extract() -> pd.DataFrame:")

    with screenshot_on_failure(page, "prod-mapped-task"):
        open_task(page, DAG_ID, history["cli"], "shard", mapped=True)
        mapped_one = page.get_by_role("link", name="1", exact=True).and_(page.locator('a[href$="/mapped/1"]'))
        expect(mapped_one.first).to_be_visible()
        # The instance list re-renders while it loads: a click can land and still be retried.
        with contextlib.suppress(PlaywrightTimeout):
            mapped_one.first.click(timeout=10_000)
        page.wait_for_url(re.compile(r"/tasks/shard/mapped/1$"))
        frame = open_ml_tab(page, "mlops_task")
        expect(frame.locator("body")).not_to_contain_text('"detail"')
        artifact = frame.locator("div.artifact").filter(
            has=frame.get_by_role("heading", name="shard[1] · return_value")
        )
        expect(artifact.locator("table.data").get_by_role("cell", name="1.5", exact=True)).to_be_visible()


def test_structure_diff_names_a_changed_constant(cluster, history, tmp_path) -> None:
    """Edit the DAG file as a user would (a module-level constant used by a task, a metric's bound);
    the dag-processor picks it up and the next run's page says what changed."""
    source = (DAGS / f"{DAG_ID}.py").read_text()
    changed = source.replace('FEATURES = ["age", "score"]', 'FEATURES = ["score", "age"]')
    changed = changed.replace("@ml.metric(lower=0.2,", "@ml.metric(lower=0.3,")
    assert changed.count('FEATURES = ["score", "age"]') == 1 and "lower=0.3" in changed
    edited = tmp_path / f"{DAG_ID}.py"
    edited.write_text(changed)
    # The serialized DAG does not change (so no new DAG version): Airflow updates its code in place.
    cluster.add_dag_file(edited, wait_for=[DAG_ID])
    run_id = cluster.trigger_rest(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, run_id) == "success"
    page = view(cluster, f"/dags/{DAG_ID}/runs/{q(run_id)}")
    assert page["previous"]["run_id"] == history["rest"]
    descriptions = page["diff"]["descriptions"]
    assert any("extract" in line and "FEATURES" in line for line in descriptions), descriptions
    assert any("quality" in line and "lower 0.2 -> 0.3" in line for line in descriptions), descriptions
    html = cluster.http("GET", f"/mlops/dags/{DAG_ID}/runs/{q(run_id)}").text
    assert "FEATURES" in html


CACHE_DAG = "mlops_prod_cache"


@pytest.fixture(scope="module")
def cache_runs(cluster: AirflowCluster) -> dict[str, str]:
    """Four runs of a DAG with a cached task: two REST triggers, then ``airflow dags trigger`` with
    ``{"cache": false}`` and without."""
    cluster.add_dag_file(DAGS / f"{CACHE_DAG}.py", wait_for=[CACHE_DAG])
    cluster.unpause(CACHE_DAG)
    runs = {}
    for role, trigger, conf in (
        ("first", cluster.trigger_rest, None),
        ("second", cluster.trigger_rest, None),
        ("forced", cluster.trigger_cli, {"cache": False}),
        ("again", cluster.trigger_cli, None),
    ):
        runs[role] = trigger(CACHE_DAG, conf)
        assert cluster.wait_for_run(CACHE_DAG, runs[role]) == "success"
    return runs


def test_cached_task_hits_on_rest_and_cli_triggers_and_misses_when_told(
    cluster: AirflowCluster, cache_runs: dict[str, str]
) -> None:
    """Runs made by the scheduler and workers: the second reuses the first's outputs, with its log
    saying so; ``airflow dags trigger`` with ``{"cache": false}`` runs the function again."""
    dag_id = CACHE_DAG
    first, second, forced, again = (cache_runs[r] for r in ("first", "second", "forced", "again"))

    assert "Cache miss: key" in cluster.task_log(dag_id, first, "features")
    log = cluster.task_log(dag_id, second, "features")
    assert f"Cache hit: outputs of {first}/features, key" in log, log[-3000:]
    assert "Cache: disabled for this run" in cluster.task_log(dag_id, forced, "features")
    assert f"Cache hit: outputs of {forced}/features" in cluster.task_log(dag_id, again, "features")

    def record(run_id: str) -> dict[str, Any]:
        path = f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances/features/xcomEntries/mlops.task"
        return cluster.api("GET", path)["value"]

    assert record(second)["cache"]["hit"]["run_id"] == first
    assert record(second)["cache"]["key"] == record(first)["cache"]["key"]
    # The reused DataFrame is the second run's own artifact, with the first run's bytes.
    rows = {
        run: cluster.api(
            "GET", f"/dags/{dag_id}/dagRuns/{q(run)}/taskInstances/features/xcomEntries/return_value"
        )["value"]
        for run in (first, second)
    }
    assert rows[first]["sha256"] == rows[second]["sha256"] and rows[first]["uri"] != rows[second]["uri"]
    html = cluster.http("GET", f"/mlops/dags/{dag_id}/runs/{q(second)}/tasks/features").text
    assert "cache hit</b>: outputs of" in html and f"{first}/features</a>" in html


def test_ui_task_page_says_where_cached_outputs_came_from(page: Any, cache_runs: dict[str, str]) -> None:
    """From Airflow's run page: the task, its ML tab, the line saying the function did not run."""
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "prod-cache-hit"):
        open_task(page, CACHE_DAG, cache_runs["second"], "features")
        frame = open_ml_tab(page, "mlops_task")
        line = frame.locator("#task-cache")
        expect(line).to_contain_text("cache hit: outputs of")
        expect(line).to_contain_text(f"{cache_runs['first']}/features")
        expect(line).to_contain_text("the function did not run")


# -- what failed, and the logs of tasks that did not ----------------------------------------------

FAILING_DAG = "mlops_ui_failing"


@pytest.fixture(scope="module")
def failing_run(cluster: AirflowCluster) -> str:
    """A REST-triggered run of ``mlops_ui_failing``: ``fit`` raises ``ValueError`` in its worker."""
    cluster.add_dag_file(DAGS / f"{FAILING_DAG}.py", wait_for=[FAILING_DAG])
    cluster.unpause(FAILING_DAG)
    run_id = cluster.trigger_rest(FAILING_DAG)
    assert cluster.wait_for_run(FAILING_DAG, run_id) == "failed"
    return run_id


def test_an_ordinary_failure_shows_its_error_line_and_traceback(cluster, failing_run) -> None:
    """Read from the worker's log by the api-server: the run page's "What failed" names the task
    with its error line, the task page shows the traceback."""
    from mlops_ui_failing import ERROR

    run = cluster.http("GET", f"/mlops/dags/{FAILING_DAG}/runs/{q(failing_run)}").text
    top = run[run.index('id="failed-tasks"') : run.index("Graph as it ran")]
    assert "<b>fit</b>" in top and f": ValueError: {ERROR}</li>" in top, top
    page = view(cluster, f"/dags/{FAILING_DAG}/runs/{q(failing_run)}/tasks/fit")
    assert page["traceback"].rstrip().endswith(f"ValueError: {ERROR}"), page["traceback"]
    html = cluster.http("GET", f"/mlops/dags/{FAILING_DAG}/runs/{q(failing_run)}/tasks/fit").text
    traceback = html[html.index('<pre class="value traceback">') :]
    assert f"ValueError: {ERROR}" in traceback[: traceback.index("</pre>")]


def test_ui_succeeded_task_shows_its_log_and_a_failed_one_why(
    page: Any, history: dict[str, str], failing_run: str
) -> None:
    """In Airflow's UI: a task that succeeded shows its log's last lines in its ML tab; the failed
    run's ML tab starts with the failed task and its error, whose ML tab shows the traceback."""
    from mlops_ui_failing import ERROR
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "prod-succeeded-task-log"):
        open_task(page, DAG_ID, history["cli"], "ages_plausible")
        frame = open_ml_tab(page, "mlops_task")
        expect(
            frame.get_by_role("heading", name=re.compile(r"^Log \(last \d+ lines of try 1\)$"))
        ).to_be_visible()
        expect(frame.locator("#log-excerpt")).to_contain_text("all 200 rows passed")
        expect(frame.locator("pre.traceback")).to_have_count(0)

    with screenshot_on_failure(page, "prod-failed-run"):
        open_run(page, FAILING_DAG, failing_run)
        frame = open_ml_tab(page, "mlops_run")
        expect(frame.locator("#failed-tasks li").first).to_contain_text(f"fit failed: ValueError: {ERROR}")

    with screenshot_on_failure(page, "prod-failed-task"):
        open_task(page, FAILING_DAG, failing_run, "fit")
        frame = open_ml_tab(page, "mlops_task")
        expect(frame.locator("pre.traceback")).to_contain_text(f"ValueError: {ERROR}")
