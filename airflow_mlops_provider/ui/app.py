"""The ML view as a FastAPI app, mounted by Airflow 3's API server through the plugin's ``fastapi_apps``.

Airflow does not authenticate plugin apps, so every route here declares Airflow's own security
dependencies: ``GetUserDep`` (a valid JWT from the ``Authorization`` header or the UI's ``_token``
cookie, which the browser sends with the tab's iframe requests) and ``requires_access_dag("GET")``
for every route about one DAG. The overview lists only DAGs the auth manager says the user may read.
Whatever comes from a task's log (tracebacks, why a task died) additionally needs the task-logs
permission on that DAG (:func:`service.can_read_task_logs`), as on Airflow's own pages.

HTML pages (``/``, ``/dags/<dag>``, ``/dags/<dag>/runs/<run>``, ``/dags/<dag>/runs/<run>/tasks/<task>``)
and the same data as JSON under ``/api/...``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

# This module is imported only by the API server (the plugin mounts it through a lazy wrapper), so
# importing the API server's security module here costs the other Airflow processes nothing.
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from airflow_mlops_provider.ui import service
from airflow_mlops_provider.ui.render import STATIC, STATIC_FILES, render


def _check_ids(dag_id: str, run_id: str | None = None, task_id: str | None = None) -> None:
    problem = service.invalid_id(dag_id, run_id, task_id)
    if problem:
        raise HTTPException(status_code=400, detail=problem)


def _map_index(value: str) -> int:
    """``map_index`` of a task-instance route: Airflow's UI fills ``{MAP_INDEX}`` in a tab's URL only
    for mapped tasks, so an unmapped task's tab sends the placeholder itself, meaning -1."""
    if value in ("", "{MAP_INDEX}"):
        return -1
    try:
        index = int(value)
    except ValueError:
        index = -2
    if index < -1:
        raise HTTPException(status_code=400, detail=f"Invalid map index {value!r}: use -1 or a map index.")
    return index


def _base(request: Request) -> str:
    """URL prefix of this app as the browser sees it (``/mlops``, or ``/<base_url>/mlops``)."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def _page(request: Request, template: str, build: Any) -> HTMLResponse:
    try:
        context = build()
    except service.NotFound as err:
        html = render("error.html", _base(request), status_code=404, message=str(err))
        return HTMLResponse(html, status_code=404)
    return HTMLResponse(render(template, _base(request), **context))


def _data(build: Any) -> Any:
    try:
        return build()
    except service.NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err


def _readable_dag_ids(user: Any) -> set[str]:
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def _logs(user: Any) -> Any:
    """Whether ``user`` may read a DAG's task logs, asked per DAG (the overview's failed tasks)."""
    return lambda dag_id: service.can_read_task_logs(user, dag_id)


def create_app() -> FastAPI:
    """The app mounted at ``/mlops``; see the module docstring for its routes."""
    dag_read = [Depends(requires_access_dag("GET"))]
    app = FastAPI(
        title="Airflow MLOps view",
        description="Artifacts, previews, metrics, checks and run structure of Airflow DAGs.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str, user: GetUserDep) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(status_code=404, detail="Not found")
        return FileResponse(
            STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "private, max-age=3600"}
        )

    # -- overview ------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request, user: GetUserDep) -> HTMLResponse:
        return _page(request, "overview.html", lambda: service.overview(_readable_dag_ids(user), _logs(user)))

    @app.get("/api/overview")
    def overview_data(user: GetUserDep) -> Any:
        return service.overview(_readable_dag_ids(user), _logs(user))

    # -- DAG -----------------------------------------------------------------------------------

    @app.get("/dags/{dag_id}", response_class=HTMLResponse, dependencies=dag_read)
    def dag_page(
        request: Request,
        dag_id: str,
        runs: Annotated[int, Query(ge=1, le=1000)] = 50,
        window: Annotated[Literal["30", "100", "all"], Query()] = "100",
    ) -> HTMLResponse:
        _check_ids(dag_id)
        metric_runs = service.CHART_WINDOWS[window]
        return _page(
            request,
            "dag.html",
            lambda: {**service.dag_page(dag_id, runs=runs, metric_runs=metric_runs), "window": window},
        )

    @app.get("/api/dags/{dag_id}/metrics", dependencies=dag_read)
    def metrics_data(dag_id: str, runs: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Any:
        _check_ids(dag_id)
        return {"dag_id": dag_id, **service.metric_chart_data(dag_id, runs)}

    @app.get("/api/dags/{dag_id}/checks", dependencies=dag_read)
    def checks_data(dag_id: str, limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> Any:
        _check_ids(dag_id)
        return {"dag_id": dag_id, "checks": service.check_rows(dag_id, limit)}

    @app.get("/api/dags/{dag_id}/runs", dependencies=dag_read)
    def runs_data(dag_id: str, runs: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        _check_ids(dag_id)
        return _data(lambda: service.dag_page(dag_id, runs=runs, metric_runs=1))["runs"]

    @app.get("/dags/{dag_id}/compare", response_class=HTMLResponse, dependencies=dag_read)
    def compare_page(request: Request, dag_id: str, a: str, b: str) -> HTMLResponse:
        _check_ids(dag_id, a)
        _check_ids(dag_id, b)
        return _page(request, "compare.html", lambda: service.compare_page(dag_id, a, b))

    @app.get("/api/dags/{dag_id}/compare", dependencies=dag_read)
    def compare_data(dag_id: str, a: str, b: str) -> Any:
        _check_ids(dag_id, a)
        _check_ids(dag_id, b)
        return _data(lambda: service.compare_page(dag_id, a, b))

    # -- DAG run -------------------------------------------------------------------------------

    @app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse, dependencies=dag_read)
    def run_page(request: Request, user: GetUserDep, dag_id: str, run_id: str) -> HTMLResponse:
        _check_ids(dag_id, run_id)
        logs = service.can_read_task_logs(user, dag_id)
        return _page(request, "run.html", lambda: service.run_page(dag_id, run_id, logs=logs))

    @app.get("/api/dags/{dag_id}/runs/{run_id}", dependencies=dag_read)
    def run_data(user: GetUserDep, dag_id: str, run_id: str) -> Any:
        _check_ids(dag_id, run_id)
        logs = service.can_read_task_logs(user, dag_id)
        return _data(lambda: service.run_page(dag_id, run_id, logs=logs))

    # -- task instance -------------------------------------------------------------------------

    @app.get(
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", response_class=HTMLResponse, dependencies=dag_read
    )
    def task_page(
        request: Request, user: GetUserDep, dag_id: str, run_id: str, task_id: str, map_index: str = "-1"
    ) -> HTMLResponse:
        _check_ids(dag_id, run_id, task_id)
        index = _map_index(map_index)
        logs = service.can_read_task_logs(user, dag_id)
        return _page(
            request,
            "task.html",
            lambda: service.task_page(dag_id, run_id, task_id, index, traceback=logs),
        )

    @app.get("/api/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", dependencies=dag_read)
    def task_data(user: GetUserDep, dag_id: str, run_id: str, task_id: str, map_index: str = "-1") -> Any:
        _check_ids(dag_id, run_id, task_id)
        index = _map_index(map_index)
        logs = service.can_read_task_logs(user, dag_id)
        return _data(lambda: service.task_page(dag_id, run_id, task_id, index, traceback=logs))

    return app
