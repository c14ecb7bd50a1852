"""``airflow mlops diff DAG_ID RUN_A RUN_B``: what changed between two runs, as the ML view's compare
page shows it: structure, code and settings (from the snapshots), metric values, check outcomes and
table artifacts (rows, schema, column statistics; from what was recorded, nothing is loaded). When a
run has no structure snapshot, it says so and prints the data part (as the compare page does).

``RUN_A``/``RUN_B`` are run ids, or ``latest`` (the newest successful run) and ``previous`` (the
successful run before it), in the order runs happened (:mod:`airflow_mlops_provider.catalog.runs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops_provider.cli._common import command, print_json
from airflow_mlops_provider.exceptions import ArtifactLookupError

if TYPE_CHECKING:
    import argparse

    from airflow_mlops_provider.catalog.compare import RunComparison

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
    """Print what changed from RUN_A to RUN_B: structure, metrics, checks and table artifacts."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.catalog.compare import compare_runs
    from airflow_mlops_provider.catalog.runs import dag_run
    from airflow_mlops_provider.snapshots.store import SnapshotStore

    run_a, run_b = resolve_runs(args.dag_id, args.run_a, args.run_b)
    for run_id in (run_a, run_b):
        if dag_run(args.dag_id, run_id) is None:
            raise ArtifactLookupError(f"DAG {args.dag_id!r} has no run {run_id!r}.")
    manager = ArtifactManager.configured()
    snapshots = SnapshotStore(manager.store)
    data = compare_runs(args.dag_id, run_a, run_b, manager)
    missing = [r for r in (run_a, run_b) if not snapshots.has_run(args.dag_id, r)]
    # Like the compare page: without a snapshot the structure part is left out, the data part stays.
    result = None if missing else snapshots.diff_runs(args.dag_id, run_a, run_b)
    note = None
    if result is None:
        note = (
            f"structure not recorded for run(s) {', '.join(map(repr, missing or (run_a, run_b)))} "
            "(snapshots are recorded by the provider's plugin when runs start)"
        )
    if args.output == "json":
        structure = result.to_dict() if result is not None else {"structure_error": note}
        print_json({"run_a": run_a, "run_b": run_b, **structure, **data.to_dict()})
        return
    if result is None:
        print(f"{args.dag_id}: {run_a} -> {run_b}: {note}")
        _print_data_changes(data)
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
    _print_data_changes(data)


def _number(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _signed(delta: object) -> str:
    """`` (+1)`` / `` (-0.5)`` after a change, as the compare page shows it; empty without a delta."""
    if not isinstance(delta, (int, float)):
        return ""
    return f" ({'+' if delta > 0 else ''}{_number(delta)})"


def _print_data_changes(data: RunComparison) -> None:
    """Metric deltas, check outcome changes and table changes, below the structure diff."""
    for m in data.metrics:
        line = f"  metric {m['task']}.{m['name']}: {_number(m['before'])} -> {_number(m['after'])}"
        line += _signed(m["delta"])
        if m["status_before"] != m["status_after"]:
            line += f" [{m['status_before']} -> {m['status_after']}]"
        print(line)
    for c in data.checks:
        print(f"  check {c['task']}: {c['before']} -> {c['after']} (severity {c['severity']})")
    for t in data.tables:
        rows = t["rows"]
        changes = [f"rows {rows['before']} -> {rows['after']}"] if rows["delta"] else []
        changes += [f"+column {c['name']} ({c['dtype']})" for c in t["added"]]
        changes += [f"-column {c['name']}" for c in t["removed"]]
        changes += [f"column {c['name']} {c['before']} -> {c['after']}" for c in t["retyped"]]
        for name, stats in t["columns"].items():
            parts = [
                f"{stat} {_number(stats[stat]['before'])} -> {_number(stats[stat]['after'])}"
                + _signed(stats[stat].get("delta"))
                for stat in ("null_rate", "mean", "distinct")
                if stat in stats
            ]
            if "top" in stats and stats["top"]["new"]:
                parts.append("new top values " + ", ".join(map(str, stats["top"]["new"])))
            if parts:
                changes.append(f"{name}: " + "; ".join(parts))
        if changes:
            print(f"  data {t['artifact']}: " + ", ".join(changes))
    for label in data.artifacts_added:
        print(f"  + artifact {label}")
    for label in data.artifacts_removed:
        print(f"  - artifact {label}")
