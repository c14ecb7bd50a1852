"""The ML view: overview, DAG, DAG-run and task-instance pages over artifacts, metrics and checks.

One implementation (:mod:`.service` builds the data, :mod:`.render` renders the Jinja2 templates)
with two front ends: a FastAPI app for Airflow 3's API server (:mod:`.app`, the primary one, shown
under Plugins in Airflow's menu and as tabs through ``external_views``) and a Flask-AppBuilder view
for deployments running the FAB provider (:mod:`.fab_view`).
"""

from __future__ import annotations

#: Where the FastAPI app is mounted on the API server.
URL_PREFIX = "/mlops"
