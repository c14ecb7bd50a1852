"""Airflow plugin registered through the ``airflow.plugins`` entry point.

It holds the provider's listeners: the task-process one (try numbers, lineage) and the
scheduler-side ones that record each DAG run's structure and the runs that happened before it, and
page ``[mlops] killed_task_notifier`` when a killed task fails its run.
The UI views attach here too: the FastAPI app (mounted by the API server at ``/mlops``), its
Plugins entry and DAG / run / task-instance tabs (``external_views``), and the Flask-AppBuilder view
where the FAB provider is installed.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

from airflow_mlops_provider._compat import fab_provider_available
from airflow_mlops_provider.catalog.history import history_listener
from airflow_mlops_provider.kill_listener import killed_task_listener
from airflow_mlops_provider.listeners import task_runtime
from airflow_mlops_provider.snapshots.recorder import snapshot_listener
from airflow_mlops_provider.ui import URL_PREFIX


class LazyASGIApp:
    """An ASGI app that builds the real one on its first request.

    Every Airflow process loads plugins (scheduler, DAG processor, task processes); only the API
    server serves requests, so only it pays for importing the API server's security machinery.
    """

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._app: Any = None

    def __repr__(self) -> str:
        return "airflow_mlops_provider.ui.app:create_app"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._factory()
        await self._app(scope, receive, send)


def _create_ui_app() -> Any:
    from airflow_mlops_provider.ui.app import create_app

    return create_app()


def _appbuilder_views() -> list[dict[str, Any]]:
    """The FAB view, only where the FAB provider is installed.

    Airflow 3's API server refuses to start when a plugin declares Flask-AppBuilder views and the
    FAB provider is missing, and its default (simple) auth manager needs no FAB: declaring the view
    unconditionally would take such a cluster's UI down.
    """
    if not fab_provider_available():
        return []
    try:
        from airflow_mlops_provider.ui.fab_view import MLOpsFabView
    except ImportError:
        return []
    return [{"name": "ML", "category": "Browse", "view": MLOpsFabView()}]


ui_app = LazyASGIApp(_create_ui_app)


class MLOpsPlugin(AirflowPlugin):
    """Entry point for the provider's listeners and views."""

    name = "mlops"
    listeners = [task_runtime, snapshot_listener, history_listener, killed_task_listener]
    fastapi_apps = [{"app": ui_app, "url_prefix": URL_PREFIX, "name": "ML view"}]
    external_views = [
        {"name": "ML", "href": f"{URL_PREFIX}/", "destination": "nav", "url_route": "ml"},
        {
            "name": "ML",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "mlops_dag",
        },
        {
            "name": "ML",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "mlops_run",
        },
        {
            "name": "ML",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}/tasks/{{TASK_ID}}?map_index={{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "mlops_task",
        },
    ]
    appbuilder_views = _appbuilder_views()
