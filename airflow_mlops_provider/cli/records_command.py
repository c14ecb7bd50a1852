"""``airflow mlops checks`` and ``airflow mlops metrics``: check and metric history, as the UI shows it.

A gate that had nothing to compare with shows as ``skipped`` with its reason, never as ``ok``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.cli._common import command, print_json, render_table

if TYPE_CHECKING:
    import argparse


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")


@command
def checks(args: argparse.Namespace) -> None:
    """Check records of a DAG's runs, the run that happened last first."""
    from airflow_mlops_provider.catalog import records, runs

    rows = records.check_history(args.dag_id, args.task, args.limit)
    if args.run:
        run = runs.resolve_run(args.dag_id, args.run, successful=False)
        rows = [r for r in rows if run is not None and r["run_id"] == run["run_id"]]
    if args.output == "json":
        print_json(
            [
                {k: r.get(k) for k in ("run_id", "task_id", "map_index", "status", "severity", "message")}
                | {"failing_count": r.get("failing_count"), "run_start": _when(r.get("run_start"))}
                for r in rows
            ]
        )
        return
    table = [
        (r["run_id"], _task(r), r.get("status"), r.get("severity"), r.get("message"), r.get("failing_count"))
        for r in rows
    ]
    print(render_table(("run", "check", "status", "severity", "message", "failing"), table))


@command
def metrics(args: argparse.Namespace) -> None:
    """Values of one metric across runs, with bounds, status and why a regression gate was skipped."""
    from airflow_mlops_provider.catalog import records

    rows = records.metric_history(args.dag_id, args.task_id, args.name, args.limit)
    if args.output == "json":
        keys = ("run_id", "map_index", "value", "lower", "upper", "status", "breaches", "skipped")
        print_json([{k: r.get(k) for k in keys} for r in rows])
        return
    table = [
        (
            r["run_id"],
            r["value"],
            r["lower"],
            r["upper"],
            r["status"],
            "; ".join([*r["breaches"], *([f"gate skipped: {r['skipped']}"] if r["skipped"] else [])]),
        )
        for r in rows
    ]
    print(render_table(("run", "value", "lower", "upper", "status", "notes"), table))


def _task(row: dict[str, Any]) -> str:
    return row["task_id"] if row.get("map_index", -1) < 0 else f"{row['task_id']}[{row['map_index']}]"
