"""A DAG as its file defines it now, for runs in this process (replay, run on a sample)."""

from __future__ import annotations

from typing import Any

from airflow_mlops_provider._compat import dagbag_class
from airflow_mlops_provider._hints import listing, unknown_dag
from airflow_mlops_provider.exceptions import ArtifactLookupError


class DagLoadError(ArtifactLookupError):
    """The DAG is unknown, its file does not import, or the file no longer defines it."""


def load_dag(dag_id: str) -> Any:
    """Parse the file the DAG processor last parsed ``dag_id`` from, as the DAG processor does
    (the file's current code; nothing is written to the metadata DB)."""
    from airflow_mlops_provider.catalog import runs, task_inputs

    fileloc = task_inputs.dag_file(dag_id)
    if fileloc is None:
        raise DagLoadError(
            f"DAG {dag_id!r} is not in Airflow's metadata DB (its file was never parsed). "
            f"{unknown_dag(dag_id, runs.dag_ids())}"
        )
    bag = dagbag_class()(dag_folder=fileloc, safe_mode=False)
    if bag.import_errors:
        errors = "; ".join(
            f"{path}: {error.strip().splitlines()[-1]}" for path, error in bag.import_errors.items()
        )
        raise DagLoadError(f"The file of DAG {dag_id!r} does not import now: {errors}. Fix it and try again.")
    dag = bag.dags.get(dag_id)
    if dag is None:
        raise DagLoadError(
            f"{fileloc} no longer defines DAG {dag_id!r} (it defines: {listing(sorted(bag.dags))})."
        )
    return dag
