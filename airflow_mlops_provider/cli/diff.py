"""``airflow mlops diff DAG_ID RUN_A RUN_B``: structure and code changes between two runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops_provider.cli._common import command, print_json
from airflow_mlops_provider.exceptions import ArtifactLookupError

if TYPE_CHECKING:
    import argparse


@command
def diff(args: argparse.Namespace) -> None:
    """Print what changed in the DAG's structure (tasks, edges, code) from RUN_A to RUN_B."""
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.store import ArtifactStore
    from airflow_mlops_provider.snapshots.store import SnapshotStore

    settings = ArtifactSettings.from_airflow_config()
    snapshots = SnapshotStore(ArtifactStore(settings.artifact_root, settings.conn_id))
    missing = [r for r in (args.run_a, args.run_b) if snapshots.snapshot_for_run(args.dag_id, r) is None]
    if missing:
        recorded = [p.get("run_id") for p in snapshots.runs(args.dag_id)][-10:]
        raise ArtifactLookupError(
            f"No structure snapshot of DAG {args.dag_id!r} for run(s) {', '.join(map(repr, missing))}. "
            f"Snapshots are recorded by the provider's plugin when runs start; recorded runs: "
            f"{', '.join(recorded) or 'none'}."
        )
    result = snapshots.diff_runs(args.dag_id, args.run_a, args.run_b)
    assert result is not None
    if args.output == "json":
        print_json(result.to_dict())
        return
    print(f"{args.dag_id}: {args.run_a} -> {args.run_b}: {result.summary()}")
    for task_id in (t.task_id for t in result.added):
        print(f"  + task {task_id}")
    for task_id in (t.task_id for t in result.removed):
        print(f"  - task {task_id}")
    for rename in result.renamed:
        print(f"  ~ task {rename.old_id} renamed to {rename.new_id}")
    for change in result.changed:
        fields = ", ".join(
            f"{k}: {old!r} -> {new!r}" for k, (old, new) in change.changes.items() if k != "code_hash"
        )
        label = "code changed" if change.code_changed else "changed"
        print(f"  ~ task {change.task_id} {label}" + (f" ({fields})" if fields else ""))
        if change.code_diff:
            print("\n".join("      " + line for line in change.code_diff.rstrip().splitlines()))
    for up, down in result.edges_added:
        print(f"  + edge {up} >> {down}")
    for up, down in result.edges_removed:
        print(f"  - edge {up} >> {down}")
