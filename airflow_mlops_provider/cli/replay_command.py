"""``airflow mlops replay`` and ``airflow mlops run-local``: run DAG code in this process.

``replay DAG TASK`` runs one ``@ml.task`` instance of a past run again on the inputs and params
the run recorded (:mod:`airflow_mlops_provider.local.replay`) and prints its value beside the
recorded output. Bad input (unknown DAG, run or task, a deleted input) is one ``Error:`` line; an
exception of the task's own code prints its traceback and exits with 1, or with ``--pdb`` opens
the debugger where it was raised.

``run-local DAG`` runs the whole DAG in this process on a sample of its ``ml.sql`` sources, with
artifacts in a scratch root (:mod:`airflow_mlops_provider.local.run_local`).
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING

from airflow_mlops_provider.cli._common import EXIT_ERROR, command, print_json

if TYPE_CHECKING:
    import argparse
    from types import TracebackType


@command
def replay(args: argparse.Namespace) -> None:
    """Replay a task instance of a past run; print the result, or the task's traceback."""
    from airflow_mlops_provider.local.replay import prepare_replay

    prepared = prepare_replay(
        args.dag_id, args.task_id, args.run, map_index=args.map_index, as_recorded=args.as_recorded
    )
    try:
        result = prepared.run(save=args.save)
    except Exception as err:
        where = f"{args.dag_id}/{args.task_id} of run {prepared.run_id} ({prepared.code} code)"
        print(f"Replay of {where} raised:", file=sys.stderr)
        traceback.print_exception(type(err), err, _task_frames(err.__traceback__))
        if args.pdb:
            import pdb

            pdb.post_mortem(err.__traceback__)
        sys.exit(EXIT_ERROR)
    if args.output == "json":
        print_json(result.to_json())
    else:
        print(result.summary())


def _task_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the task's own code on (the replay's frames above it are noise)."""
    from airflow_mlops_provider.local.replay import PreparedReplay

    ours = {__file__, PreparedReplay.run.__code__.co_filename}
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename in ours:
        tb = tb.tb_next
    return tb


@command
def run_local(args: argparse.Namespace) -> None:
    """Run a DAG in this process on a sample, artifacts in a scratch root; exit 1 if the run failed."""
    from airflow_mlops_provider.local.run_local import run_local as run

    outcome = run(
        args.dag_id,
        sample=args.sample or None,
        artifact_root=args.artifact_root,
        mark_success_pattern=args.mark_success_pattern,
    )
    if args.output == "json":
        print_json(
            {
                "dag_id": outcome.dag_id,
                "run_id": outcome.run_id,
                "state": outcome.state,
                "task_states": outcome.task_states,
                "artifact_root": outcome.artifact_root,
                "sample": outcome.sample,
            }
        )
    else:
        print(outcome.summary())
    if outcome.state != "success":
        sys.exit(EXIT_ERROR)
