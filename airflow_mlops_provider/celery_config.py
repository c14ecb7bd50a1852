"""Celery configuration for workers that run ML tasks: Airflow's default plus preloaded imports.

Every Airflow task on a Celery worker runs in a process forked from the worker's pool process.
Modules imported before the fork are already there, so a task returning a DataFrame does not pay
for importing pandas, pyarrow, the artifact store's S3 filesystem and this provider again (about
1-2 s of CPU per task on small machines). Use it with::

    [celery]
    celery_config_options = airflow_mlops_provider.celery_config.CELERY_CONFIG

Celery imports the modules of ``imports`` when a worker starts; the scheduler and the API server,
which also read this configuration, import nothing more.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

#: Imported by each Celery worker at start-up, before its pool processes fork.
PRELOADED = ("airflow_mlops_provider._preload",)

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOADED),
}
