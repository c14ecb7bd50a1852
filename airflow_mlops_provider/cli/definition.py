"""Definitions of the ``airflow mlops`` commands, loaded by Airflow's CLI parser.

Registered in ``get_provider_info()["cli"]``. Airflow imports this module on every ``airflow``
invocation, so it only builds argument specs; the commands' modules load when one of them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.cli.cli_config import CLICommand

_TARGET_HELP = (
    "An artifact URI (as shown by `airflow mlops artifacts list`), or DAG_ID RUN_ID TASK_ID "
    "(RUN_ID may be 'latest': the newest successful run)"
)


def get_mlops_cli_commands() -> list[CLICommand]:
    """The ``airflow mlops`` command group: ``artifacts list|show|get``, ``lineage``, ``checks``,
    ``metrics``, ``diff``, ``gc``, ``replay``, ``run-local`` and ``cache clear``."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    output = Arg(
        ("--output",),
        help="Output format: 'table' (human-readable text, the default) or 'json'",
        choices=("table", "json"),
        default="table",
        metavar="FORMAT",
    )
    target = Arg(("target",), help=_TARGET_HELP, nargs="+", metavar="URI | DAG_ID RUN_ID TASK_ID")
    key = Arg(("--key",), help="XCom key (with DAG_ID RUN_ID TASK_ID)", default="return_value")
    map_index = Arg(
        ("--map-index",),
        help="Map index of a mapped task instance (with DAG_ID RUN_ID TASK_ID)",
        type=int,
        default=-1,
    )
    verbose = Arg(("-v", "--verbose"), help="Print more details", action="store_true")

    artifacts = (
        ActionCommand(
            name="list",
            help="List the artifacts (and inline XCom values) of a DAG's runs, newest run first",
            func=lazy_load_command("airflow_mlops_provider.cli.artifacts_command.artifacts_list"),
            args=(
                Arg(("dag_id",), help="The DAG id"),
                Arg(("--run",), help="Only this run (a run id, or 'latest')", metavar="RUN_ID"),
                Arg(("--task",), help="Only this task", metavar="TASK_ID"),
                Arg(("--key",), help="Only this XCom key"),
                Arg(
                    ("--include-records",),
                    help="Also list the provider's own check/metric/task records (mlops.* keys)",
                    action="store_true",
                ),
                output,
            ),
        ),
        ActionCommand(
            name="show",
            help="Show an artifact's manifest and a preview (never unpickles)",
            description=(
                "Show an artifact's manifest and a bounded preview: the schema and first rows of a "
                "table (first row group only), shape/dtype/sample of arrays, pretty-printed JSON, the "
                "size and mode of images, the first bytes of binary data, and the recorded class, repr "
                "and params of pickled objects (which are never unpickled)."
            ),
            func=lazy_load_command("airflow_mlops_provider.cli.artifacts_command.artifacts_show"),
            args=(target, key, map_index, output),
        ),
        ActionCommand(
            name="get",
            help="Download an artifact's data object, verifying its SHA-256 while streaming",
            func=lazy_load_command("airflow_mlops_provider.cli.artifacts_command.artifacts_get"),
            args=(
                target,
                Arg(
                    ("-o", "--output-path"),
                    help="File (or existing folder) to write to",
                    required=True,
                    metavar="PATH",
                ),
                key,
                map_index,
                Arg(("--force",), help="Overwrite PATH if it exists", action="store_true"),
                Arg(
                    ("--progress",),
                    help="Always show a progress bar on stderr (default: for objects of 8 MiB or more "
                    "when stderr is a terminal)",
                    action="store_true",
                ),
            ),
        ),
    )
    commands = (
        GroupCommand(
            name="artifacts",
            help="List, inspect and download stored artifacts",
            subcommands=artifacts,
        ),
        ActionCommand(
            name="lineage",
            help="Show the upstream tree of an artifact: producing tasks, code hashes, params, inputs",
            func=lazy_load_command("airflow_mlops_provider.cli.lineage.lineage"),
            args=(
                target,
                key,
                map_index,
                Arg(("--depth",), help="How many levels of inputs to follow", type=int, default=25),
                output,
            ),
        ),
        ActionCommand(
            name="checks",
            help="Check records of a DAG's runs (ok, warning, failed, skipped), newest run first",
            func=lazy_load_command("airflow_mlops_provider.cli.records_command.checks"),
            args=(
                Arg(("dag_id",), help="The DAG id"),
                Arg(("--run",), help="Only this run (a run id, 'latest' or 'previous')", metavar="RUN_ID"),
                Arg(("--task",), help="Only this check task", metavar="TASK_ID"),
                Arg(("--limit",), help="How many records (default 50)", type=int, default=50),
                output,
            ),
        ),
        ActionCommand(
            name="metrics",
            help="Values of a metric across runs with bounds and status, newest run first",
            func=lazy_load_command("airflow_mlops_provider.cli.records_command.metrics"),
            args=(
                Arg(("dag_id",), help="The DAG id"),
                Arg(("task_id",), help="The @ml.metric task"),
                Arg(("name",), help="The metric's name (the function name or a key of its dict)"),
                Arg(("--limit",), help="How many runs (default 50)", type=int, default=50),
                output,
            ),
        ),
        ActionCommand(
            name="diff",
            help="Show how the DAG's structure and code changed between two runs (recorded snapshots)",
            func=lazy_load_command("airflow_mlops_provider.cli.diff.diff"),
            args=(
                Arg(("dag_id",), help="The DAG id"),
                Arg(("run_a",), help="The earlier run: a run id, 'previous' or 'latest'"),
                Arg(("run_b",), help="The later run: a run id, 'previous' or 'latest'"),
                output,
            ),
        ),
        ActionCommand(
            name="gc",
            help="Delete stored artifacts that no XCom row refers to any more",
            description=(
                "Delete the write folders of the artifact store that no XCom row refers to (XComs cleared "
                "from the UI or REST API, or removed by `airflow db clean`, leave their objects behind). "
                "Folders younger than the grace period, anything under _snapshots/ and paths that are "
                "not artifact write folders are never touched. Referenced artifacts are only deleted with "
                "an explicit --older-than and --include-referenced."
            ),
            func=lazy_load_command("airflow_mlops_provider.cli.gc.gc"),
            args=(
                Arg(
                    ("--older-than",),
                    help="Retention age (30d, 12h, 90m, 2w; default: the retention_days option of the "
                    "mlops config section, 0 = off). Referenced artifacts older than this are reported, "
                    "and deleted with --include-referenced",
                    metavar="AGE",
                ),
                Arg(
                    ("--include-referenced",),
                    help="Also delete artifacts that XCom rows still refer to when older than --older-than "
                    "(which must be given explicitly); never those of unfinished runs",
                    action="store_true",
                ),
                Arg(
                    ("--grace",),
                    help="Never delete folders whose newest object is younger than this (default 1h), so "
                    "uploads of running tasks are safe",
                    default="1h",
                    metavar="AGE",
                ),
                Arg(
                    ("--stale-uploads",),
                    help="Abort unfinished S3 multipart uploads under the artifact root begun longer ago "
                    "than this (default 24h); younger ones may belong to running tasks",
                    default="24h",
                    metavar="AGE",
                ),
                Arg(("--dry-run",), help="Report what would be deleted; delete nothing", action="store_true"),
                Arg(
                    ("--force",),
                    help="Delete even if no write folder at all is referenced by an XCom row (by default "
                    "that is refused: it is what a CLI pointed at the wrong metadata DB sees)",
                    action="store_true",
                ),
                output,
                verbose,
            ),
        ),
    )
    local = (
        ActionCommand(
            name="replay",
            help="Run one @ml.task instance of a past run again, here, on the inputs and params it recorded",
            description=(
                "Load a task instance's recorded inputs from the artifact store and its params from its "
                "mlops.task record, import the task's function from the DAG file as it is now (or, with "
                "--as-recorded, as the run's structure snapshot recorded it) and call it in this process: "
                "no scheduler, no metadata-DB writes, no store writes unless --save. Prints the value and "
                "how it differs from the recorded output; an exception of the task prints its traceback "
                "and exits with 1 (--pdb opens the debugger instead)."
            ),
            func=lazy_load_command("airflow_mlops_provider.cli.replay_command.replay"),
            args=(
                Arg(("dag_id",), help="The DAG id"),
                Arg(("task_id",), help="The @ml.task (or @ml.check / @ml.metric) task"),
                Arg(
                    ("--run",),
                    help="The run (default 'latest': the run that happened last in which the task ran, "
                    "whatever its state)",
                    default="latest",
                    metavar="RUN_ID",
                ),
                Arg(("--map-index",), help="Map index of a mapped task's instance", type=int, default=-1),
                Arg(("--pdb",), help="Open pdb post-mortem where the task raised", action="store_true"),
                Arg(
                    ("--as-recorded",),
                    help="Run the code the run's snapshot recorded, not the DAG file's current code",
                    action="store_true",
                ),
                Arg(
                    ("--save",),
                    help="Write the value to the store, below _scratch/replays/ (never a run's folder)",
                    action="store_true",
                ),
                output,
            ),
        ),
        ActionCommand(
            name="run-local",
            help="Run a DAG in this process (dag.test) on a sample of its ml.sql sources, artifacts in a "
            "scratch folder",
            func=lazy_load_command("airflow_mlops_provider.cli.replay_command.run_local"),
            args=(
                Arg(("dag_id",), help="The DAG id"),
                Arg(
                    ("--sample",),
                    help="Most rows each ml.sql extract returns (default 1000; 0: no limit)",
                    type=int,
                    default=1000,
                    metavar="N",
                ),
                Arg(
                    ("--artifact-root",),
                    help="Where the run's artifacts go (a folder or URL; default: a new temporary folder)",
                    metavar="ROOT",
                ),
                Arg(
                    ("--mark-success-pattern",),
                    help="Mark tasks whose id matches this regular expression successful without running "
                    "them (e.g. 'save_.*' to keep the sample out of the tables ml.save writes)",
                    metavar="REGEX",
                ),
                output,
            ),
        ),
        GroupCommand(
            name="cache",
            help="Cached outputs of @ml.task(cache=...) tasks",
            subcommands=(
                ActionCommand(
                    name="clear",
                    help="Forget the cached outputs of a DAG's (or one task's) cached tasks; the next run of "
                    "each misses",
                    func=lazy_load_command("airflow_mlops_provider.cli.cache_command.cache_clear"),
                    args=(
                        Arg(("dag_id",), help="The DAG id"),
                        Arg(("task_id",), help="Only this task", nargs="?"),
                        output,
                    ),
                ),
            ),
        ),
    )
    return [
        GroupCommand(
            name="mlops",
            help="The MLOps provider: artifacts, lineage, checks, metrics, diff, gc, replay, run-local, "
            "cache",
            subcommands=(*commands, *local),
        )
    ]
