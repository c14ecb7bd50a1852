"""A DAG as its file defines it now, for runs in this process (replay, run on a sample)."""

from __future__ import annotations

import difflib
from typing import Any

from airflow_mlops_provider.exceptions import ArtifactLookupError


class DagLoadError(ArtifactLookupError):
    """The DAG is unknown, its file does not import, or the file no longer defines it."""


def listing(values: list[str], limit: int = 15) -> str:
    if not values:
        return "none"
    return ", ".join(values[:limit]) + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def load_dag(dag_id: str) -> Any:
    """Parse the file the DAG processor last parsed ``dag_id`` from, as the DAG processor does
    (the file's current code; nothing is written to the metadata DB)."""
    from airflow_mlops_provider.catalog import runs, task_inputs

    fileloc = task_inputs.dag_file(dag_id)
    if fileloc is None:
        known = runs.dag_ids()
        close = difflib.get_close_matches(dag_id, known, n=5, cutoff=0.6)
        hint = f"Did you mean: {', '.join(close)}?" if close else f"Known DAGs: {listing(known)}."
        raise DagLoadError(
            f"DAG {dag_id!r} is not in Airflow's metadata DB (its file was never parsed). {hint}"
        )
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=fileloc, safe_mode=False)
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
