"""``airflow mlops diff DAG_ID RUN_A RUN_B``: structure, code and settings changes between two runs.

``RUN_A``/``RUN_B`` are run ids, or ``latest`` (the newest successful run) and ``previous`` (the
successful run before it), in the order runs happened (:mod:`airflow_mlops_provider.catalog.runs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops_provider.cli._common import command, print_json
from airflow_mlops_provider.exceptions import ArtifactLookupError

if TYPE_CHECKING:
    import argparse

RUN_KEYWORDS = ("latest", "previous")


def resolve_runs(dag_id: str, *run_ids: str) -> list[str]:
    """Run ids with ``latest``/``previous`` replaced by the runs they stand for."""
    from airflow_mlops_provider.catalog.runs import dag_runs, resolve_run

    resolved = []
    for run_id in run_ids:
        if run_id not in RUN_KEYWORDS:
            resolved.append(run_id)
            continue
        run = resolve_run(dag_id, run_id)
        if run is None:
            recent = [f"{r['run_id']} ({r['state']})" for r in dag_runs(dag_id, 5)]
            needed = "a successful run" if run_id == "latest" else "two successful runs"
            raise ArtifactLookupError(
                f"{run_id!r} stands for the {'newest' if run_id == 'latest' else 'second-newest'} "
                f"successful run of DAG {dag_id!r}, which needs {needed}; newest runs: "
                f"{', '.join(recent) or 'none'}."
            )
        resolved.append(run["run_id"])
    return resolved


@command
def diff(args: argparse.Namespace) -> None:
    """Print what changed in the DAG's structure (tasks, edges, code, settings) from RUN_A to RUN_B."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.snapshots.store import SnapshotStore

    run_a, run_b = resolve_runs(args.dag_id, args.run_a, args.run_b)
    snapshots = SnapshotStore(ArtifactManager.configured().store)
    missing = [r for r in (run_a, run_b) if not snapshots.has_run(args.dag_id, r)]
    if missing:
        recorded = [p.get("run_id") for p in snapshots.runs(args.dag_id)][-10:]
        raise ArtifactLookupError(
            f"No structure snapshot of DAG {args.dag_id!r} for run(s) {', '.join(map(repr, missing))}. "
            f"Snapshots are recorded by the provider's plugin when runs start; recorded runs: "
            f"{', '.join(recorded) or 'none'}."
        )
    result = snapshots.diff_runs(args.dag_id, run_a, run_b)
    assert result is not None
    if args.output == "json":
        print_json({"run_a": run_a, "run_b": run_b, **result.to_dict()})
        return
    print(f"{args.dag_id}: {run_a} -> {run_b}: {result.summary()}")
    for task in result.added:
        print(f"  + task {task.task_id} ({task.kind})")
    for task in result.removed:
        print(f"  - task {task.task_id}")
    for rename in result.renamed:
        print(f"  ~ {rename.description}")
    for change in result.changed:
        print(f"  ~ {change.description}")
        if change.code_diff:
            print("\n".join("      " + line for line in change.code_diff.rstrip().splitlines()))
    for up, down in result.edges_added:
        print(f"  + edge {up} >> {down}")
    for up, down in result.edges_removed:
        print(f"  - edge {up} >> {down}")
    if result.file_changed and result.is_empty:
        print("  ~ DAG file changed (no task's code or settings depend on the change)")
