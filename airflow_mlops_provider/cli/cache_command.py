"""``airflow mlops cache clear DAG [TASK]``: forget the outputs cached tasks recorded.

Only the cache index entries go: the artifacts stay with their runs. The next run of each cleared
task misses, runs its function and records its outputs again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops_provider.cli._common import command, print_json

if TYPE_CHECKING:
    import argparse


@command
def cache_clear(args: argparse.Namespace) -> None:
    """Delete the cache entries a DAG's cached tasks (or one of them) recorded."""
    from airflow_mlops_provider.artifacts.cache_index import CacheIndex
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    store = ArtifactManager.configured().store
    deleted = CacheIndex(store).clear(args.dag_id, args.task_id)
    what = f"task {args.task_id!r} of DAG {args.dag_id!r}" if args.task_id else f"DAG {args.dag_id!r}"
    if args.output == "json":
        print_json({"dag_id": args.dag_id, "task_id": args.task_id, "deleted": deleted, "root": store.root})
        return
    entries = "entry" if len(deleted) == 1 else "entries"
    print(f"Cleared {len(deleted)} cache {entries} of {what} in {store.root}.")
