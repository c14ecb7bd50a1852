"""Short lists and "did you mean" hints for error messages that name what exists instead."""

from __future__ import annotations

import difflib

MAX_LISTED = 15


def listing(values: list[str], limit: int = MAX_LISTED) -> str:
    """``a, b, c (and 4 more)``; ``none`` for no values."""
    if not values:
        return "none"
    shown = ", ".join(values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def unknown_dag(dag_id: str, known: list[str]) -> str:
    """The sentence after "DAG x is not in Airflow's metadata DB": close ids, else the known ones."""
    close = difflib.get_close_matches(dag_id, known, n=5, cutoff=0.6)
    return f"Did you mean: {', '.join(close)}?" if close else f"Known DAGs: {listing(known)}."
