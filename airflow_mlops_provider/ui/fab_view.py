"""The ML view as a Flask-AppBuilder view, for deployments running apache-airflow-providers-fab.

Same data (:mod:`.service`) and same templates (:mod:`.render`) as the FastAPI app; only the
permission checks differ: the FAB provider's ``has_access_dag("GET")`` decorator on every page about
one DAG (its ``dag_id`` view argument is what it checks), ``has_access_view()`` plus the auth
manager's readable DAG ids for the overview, and the auth manager's task-logs permission
(:func:`service.can_read_task_logs`, as on Airflow's own pages) for anything read from a task's log
(tracebacks, why a task died). In Airflow 3 the view is mounted under ``/pluginsv2``
and reached through the "Legacy FAB views" nav item.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Response, abort, request, send_file
from flask_appbuilder import BaseView, expose

from airflow_mlops_provider.ui import service
from airflow_mlops_provider.ui.render import STATIC, STATIC_FILES, render


def _dag_access(func: Any) -> Any:
    """``has_access_dag("GET")`` of the FAB provider, resolved per call (it needs the Flask app)."""

    @wraps(func)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        from airflow.providers.fab.www.auth import has_access_dag

        return has_access_dag("GET")(func)(*args, **kwargs)

    return decorated


def _logged_in(func: Any) -> Any:
    @wraps(func)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        from airflow.providers.fab.www.auth import has_access_view

        return has_access_view()(func)(*args, **kwargs)

    return decorated


def _user() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_user()


def _check(dag_id: str, run_id: str | None = None, task_id: str | None = None) -> None:
    if service.invalid_id(dag_id, run_id, task_id):
        abort(400)


class MLOpsFabView(BaseView):
    """Overview, DAG, DAG-run and task-instance pages (``/mlops/...`` under the FAB app)."""

    route_base = "/mlops"
    default_view = "overview"

    def _base(self) -> str:
        return request.script_root.rstrip("/") + self.route_base

    def _page(self, template: str, build: Any) -> Any:
        try:
            return render(template, self._base(), **build())
        except service.NotFound as err:
            return render("error.html", self._base(), status_code=404, message=str(err)), 404

    @expose("/")
    @_logged_in
    def overview(self) -> Any:
        from airflow.api_fastapi.app import get_auth_manager

        user = _user()
        dag_ids = set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))
        return self._page(
            "overview.html", lambda: service.overview(dag_ids, lambda d: service.can_read_task_logs(user, d))
        )

    @expose("/static/<string:name>")
    @_logged_in
    def static(self, name: str) -> Response:
        if name not in STATIC_FILES:
            abort(404)
        return send_file(STATIC / name, mimetype=STATIC_FILES[name])

    @expose("/dags/<string:dag_id>")
    @_dag_access
    def dag(self, dag_id: str) -> Any:
        _check(dag_id)
        window = request.args.get("window", "100")
        if window not in service.CHART_WINDOWS:
            window = "100"
        return self._page(
            "dag.html",
            lambda: {**service.dag_page(dag_id, metric_runs=service.CHART_WINDOWS[window]), "window": window},
        )

    @expose("/dags/<string:dag_id>/compare")
    @_dag_access
    def compare(self, dag_id: str) -> Any:
        run_a, run_b = request.args.get("a", ""), request.args.get("b", "")
        _check(dag_id, run_a)
        _check(dag_id, run_b)
        return self._page("compare.html", lambda: service.compare_page(dag_id, run_a, run_b))

    @expose("/dags/<string:dag_id>/runs/<string:run_id>")
    @_dag_access
    def run(self, dag_id: str, run_id: str) -> Any:
        _check(dag_id, run_id)
        logs = service.can_read_task_logs(_user(), dag_id)
        return self._page("run.html", lambda: service.run_page(dag_id, run_id, logs=logs))

    @expose("/dags/<string:dag_id>/runs/<string:run_id>/tasks/<string:task_id>")
    @_dag_access
    def task(self, dag_id: str, run_id: str, task_id: str) -> Any:
        _check(dag_id, run_id, task_id)
        map_index = request.args.get("map_index", default=-1, type=int)
        logs = service.can_read_task_logs(_user(), dag_id)
        return self._page(
            "task.html", lambda: service.task_page(dag_id, run_id, task_id, map_index, traceback=logs)
        )
