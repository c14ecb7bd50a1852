"""DAG structure snapshots: task groups, mapped tasks and groups, classic operators, ml decorators.

``tests/test_snapshots.py`` edits copies of this file (renames, moves, changed bodies and commands)
and checks the structural diff; keep each edited line unique in the file.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import TaskGroup, dag, task, task_group

from airflow_mlops_provider.decorators import ml_check, ml_task


def module_helper() -> str:
    return "helper"


@dag(
    dag_id="mlops_snap_structure",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1),
    catchup=False,
    tags=["mlops-test"],
)
def mlops_snap_structure():
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task_group
    def prepare(values):
        @task
        def clean(values: list[int]) -> list[int]:
            return [v for v in values if v is not None]

        @task
        def scale(values: list[int]) -> list[int]:
            return [v * 10 for v in values]

        return scale(clean(values))

    @ml_task
    def predict(value: int) -> int:
        return value + 1

    @ml_check
    def predictions_positive(predictions) -> bool:
        return all(p > 0 for p in predictions)

    @task
    def report(predictions) -> int:
        return len(list(predictions))

    @task_group
    def per_shard(shard: int):
        @task
        def shard_work(shard: int) -> int:
            return shard * 2

        shard_work(shard)

    with TaskGroup("ship", prefix_group_id=False):
        publish = BashOperator(task_id="publish", bash_command="echo publish")
    done = EmptyOperator(task_id="done")
    PythonOperator(task_id="helper", python_callable=module_helper)

    predictions = predict.expand(value=prepare(extract()))
    predictions_positive(predictions) >> publish >> done
    report(predictions)
    per_shard.expand(shard=[1, 2])


mlops_snap_structure()
