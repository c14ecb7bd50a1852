"""A task killed by SIGKILL while it holds memory (standing in for the kernel's OOM killer).

``hog`` allocates and touches ``ALLOCATE_MB`` MiB, waits until its ``mlops.task`` record (pushed
by the sampling thread while the task runs) shows that memory, then kills its own process. Nothing
in the process runs after that; ``after_hog`` is never run (upstream failed).
"""

from __future__ import annotations

import os
import signal
import time

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_mlops_provider import ml
from airflow_mlops_provider.records import TASK_KEY

ALLOCATE_MB = 300
#: Above the task process's own baseline (about 200 MiB here), below baseline + ALLOCATE_MB.
WARNING_MB = 400


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def mlops_killed():
    @ml.task(memory_warning_mb=WARNING_MB)
    def hog() -> int:
        import numpy as np

        block = np.ones(ALLOCATE_MB * 2**20, dtype=np.uint8)  # np.ones writes every page
        ti = get_current_context()["ti"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = ti.xcom_pull(task_ids=ti.task_id, key=TASK_KEY) or {}
            grown = (record.get("peak_rss_mb") or 0) - (record.get("start_rss_mb") or 0)
            if grown >= ALLOCATE_MB and record.get("memory_warning"):
                break
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)
        return int(block[0])

    @task
    def after_hog(value: int) -> int:
        return value

    after_hog(hog())


mlops_killed()
