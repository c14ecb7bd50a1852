"""Replay one TaskFlow task instance of a past run in this process, on the inputs that run recorded.

This is how a failed run is debugged on a laptop: the task's inputs are read back from the store
(the XCom rows of its upstream XComArgs in the run, through the catalog; every object verified),
its params from its ``mlops.task`` record (``@ml.task``, ``@ml.check``, ``@ml.metric``) or, for a
plain ``@task``, from the DAG's params and the run's conf. Classic operators have no function to
replay and are refused. The function is taken from the DAG file as it is now, or, with
``as_recorded``, rebuilt from the run's structure snapshot. Nothing is written: no metadata-DB row,
no store object, unless ``save=True`` (then below ``_scratch/replays/`` of the store, never a
run's folder)::

    from airflow_mlops_provider import ml

    result = ml.replay("churn_training", "features", run_id="latest")
    result.value          # what the function returned now
    result.recorded       # what the run stored (loaded on first access)
    result.comparison     # for tables: rows, schema and column statistics that changed
"""

from __future__ import annotations

import dataclasses
import difflib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider._hints import listing
from airflow_mlops_provider.artifacts import codec, layout
from airflow_mlops_provider.exceptions import ArtifactLookupError
from airflow_mlops_provider.local.dags import load_dag
from airflow_mlops_provider.local.inputs import RecordedInputs

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.records import TaskRecord

LATEST = "latest"
_REPR_LIMIT = 200


class ReplayError(ArtifactLookupError):
    """The DAG, run or task asked for cannot be replayed; the message says what exists and what to do."""


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


class ReplayTaskInstance:
    """The ``ti`` a replayed function receives: ids of the replayed instance; ``xcom_push`` keeps
    values in :attr:`pushed` (nothing is written), ``xcom_pull`` reads the run's XComs."""

    def __init__(self, inputs: RecordedInputs, try_number: int) -> None:
        self._inputs = inputs
        self.dag_id = inputs.dag_id
        self.run_id = inputs.run_id
        self.task_id = inputs.task.task_id
        self.map_index = inputs.map_index
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None) -> Any:
        return self._inputs.load(task_ids, key, -1 if map_indexes is None else map_indexes, "ti.xcom_pull")


@dataclass
class ReplayResult:
    """What a replay returned, beside what the run recorded.

    :param value: the function's return value now.
    :param code: ``"current"`` (the DAG file as it is) or ``"recorded"`` (the run's snapshot).
    :param code_hash: the hash of the code that ran (as a structure snapshot computes it).
    :param recorded_code_hash: the hash the run's ``mlops.task`` record holds.
    :param inputs: ``{parameter: [(upstream task, key, map index), ...]}`` the inputs came from.
    :param saved: with ``save=True``, the JSON of the saved value (artifact references below
        ``_scratch/replays/``), else ``None``.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    value: Any
    code: str
    code_hash: str | None
    recorded_code_hash: str | None
    params: dict[str, Any]
    inputs: dict[str, list[tuple[str, str, int]]]
    duration_seconds: float
    pushed: dict[str, Any] = field(default_factory=dict)
    saved: Any = None
    manager: ArtifactManager | None = field(default=None, repr=False)

    @property
    def code_changed(self) -> bool:
        """The code that ran is not the code the run ran (per the hashes both sides computed)."""
        return (
            None not in (self.code_hash, self.recorded_code_hash)
            and self.code_hash != self.recorded_code_hash
        )

    @property
    def saved_uris(self) -> list[str]:
        """Data object URIs of the saved value (empty when not saved or saved inline)."""
        return [ref["uri"] for _, ref in codec.iter_references(self.saved)] if self.saved is not None else []

    @cached_property
    def _recorded_row(self) -> Any:
        """The task instance's ``return_value`` row, refused if it refers to another DAG's artifact."""
        from airflow_mlops_provider.notebook import get_xcom

        try:
            entry = get_xcom(
                self.dag_id, self.run_id, self.task_id, map_index=self.map_index, manager=self.manager
            )
        except ArtifactLookupError:
            return None
        return entry.value

    @property
    def has_recorded(self) -> bool:
        """Whether the run stored an output for this task instance (a failed try stored none)."""
        return self._recorded_row is not None

    @cached_property
    def recorded(self) -> Any:
        """The output the run stored, loaded (and verified) on first access; ``None`` if it has none."""
        if self._recorded_row is None:
            return None
        assert self.manager is not None
        return self.manager.load(self._recorded_row)

    @cached_property
    def differs(self) -> bool | None:
        """Whether the value differs from the recorded output; ``None`` when there is none, or when
        it cannot be told (objects without ``==`` whose pickles differ)."""
        if not self.has_recorded:
            return None
        equal = _equal(self.value, self.recorded)
        return None if equal is None else not equal

    @cached_property
    def comparison(self) -> dict[str, Any] | None:
        """How the value differs from the recorded output, ``None`` when it does not (or none was).

        Tables: ``previews.compare_tables`` of the recorded and the new table (rows, added, removed
        and retyped columns, per-column statistic deltas). Other values: ``equal`` and short reprs.
        """
        if not self.differs:
            return None
        import pandas as pd

        from airflow_mlops_provider.artifacts.previews import compare_tables, table_preview

        if isinstance(self.value, pd.DataFrame) and isinstance(self.recorded, pd.DataFrame):
            return {
                "kind": "table",
                **compare_tables(table_preview(self.recorded), table_preview(self.value)),
            }
        return {
            "kind": "value",
            "equal": False,
            "recorded": _short(self.recorded),
            "replayed": _short(self.value),
        }

    def summary(self) -> str:
        """A few lines for people: what ran, on what, and how its output compares."""
        instance = self.task_id + (f"[{self.map_index}]" if self.map_index >= 0 else "")
        lines = [
            f"Replayed {self.dag_id}/{instance} of run {self.run_id} with the {self.code} code "
            f"in {self.duration_seconds:.3f}s"
            + (" (code changed since the run)" if self.code_changed else ""),
        ]
        for name, sources in self.inputs.items():
            where = ", ".join(_source(*source) for source in sources)
            lines.append(f"  input {name}: from {where}")
        if self.params:
            lines.append(f"  params: {_short(self.params)}")
        lines.append(f"  value: {_describe(self.value)}")
        if self.saved is not None:
            lines.append(f"  saved: {', '.join(self.saved_uris) or 'inline (nothing written)'}")
        if not self.has_recorded:
            lines.append("  recorded output: none (the task stored no output in this run)")
        elif self.differs is None:
            lines.append(f"  recorded output: not comparable by value (recorded {_short(self.recorded)})")
        elif not self.differs:
            lines.append("  recorded output: equal")
        else:
            lines.extend(_describe_comparison(self.comparison or {}))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        from airflow_mlops_provider.records import json_safe

        return json_safe(
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "task_id": self.task_id,
                "map_index": self.map_index,
                "code": self.code,
                "code_changed": self.code_changed,
                "duration_seconds": self.duration_seconds,
                "inputs": self.inputs,
                "params": self.params,
                "value": _describe(self.value),
                "saved": self.saved_uris if self.saved is not None else None,
                "has_recorded": self.has_recorded,
                "differs": self.differs,
                "comparison": self.comparison,
            }
        )


def _equal(a: Any, b: Any) -> bool | None:
    """Whether two values are equal; ``None`` when that cannot be told (objects without ``==``
    whose pickles differ, e.g. a model fitted again)."""
    import numpy as np
    import pandas as pd

    if type(a) is not type(b):
        return False
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return a.equals(b)
    if isinstance(a, np.ndarray):
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, dict):
        return _all_equal([(a[k], b[k]) for k in a]) if a.keys() == b.keys() else False
    if isinstance(a, (list, tuple)):
        return _all_equal(list(zip(a, b, strict=True))) if len(a) == len(b) else False
    if type(a).__eq__ is object.__eq__:  # identity only: compare what the objects hold
        import pickle

        try:
            return True if pickle.dumps(a) == pickle.dumps(b) else None
        except Exception:
            return None
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # values without a plain truth value for ==
        return None


def _all_equal(pairs: list[tuple[Any, Any]]) -> bool | None:
    results = [_equal(x, y) for x, y in pairs]
    if False in results:
        return False
    return None if None in results else True


def _source(task_id: str, key: str, map_index: int) -> str:
    return (
        task_id
        + (f"[{map_index}]" if map_index >= 0 else "")
        + (f"[{key!r}]" if key != "return_value" else "")
    )


def _describe(value: Any) -> str:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return f"DataFrame with {len(value)} rows x {len(value.columns)} columns"
    if isinstance(value, dict) and any(isinstance(v, pd.DataFrame) for v in value.values()):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    return _short(value)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _describe_comparison(comparison: dict[str, Any]) -> list[str]:
    if comparison.get("kind") != "table":
        recorded, replayed = comparison.get("recorded"), comparison.get("replayed")
        return [f"  recorded output differs: recorded {recorded}, now {replayed}"]
    rows = comparison["rows"]
    lines = [
        f"  recorded output differs: rows {rows['before']} -> {rows['after']} (delta {rows['delta']:+d})"
    ]
    for label in ("added", "removed"):
        for column in comparison[label]:
            lines.append(f"    {label} column {column['name']} ({column['dtype']})")
    for column in comparison["retyped"]:
        lines.append(f"    retyped column {column['name']}: {column['before']} -> {column['after']}")
    for name, changes in comparison["columns"].items():
        for stat, change in changes.items():
            if stat != "top":
                lines.append(f"    {name}.{stat}: {_number(change['before'])} -> {_number(change['after'])}")
    return lines


@dataclass
class PreparedReplay:
    """A replay whose inputs are loaded and function found, ready to :meth:`run`.

    Split from :func:`replay` so a caller (the CLI) can tell bad input, raised while preparing,
    from the task's own exception, raised by :meth:`run`.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    func: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any]
    context: dict[str, Any]
    code: str
    code_hash: str | None
    record: TaskRecord
    inputs: RecordedInputs
    manager: ArtifactManager

    def run(self, *, save: bool = False) -> ReplayResult:
        """Call the function; its exceptions propagate as they are."""
        from airflow.sdk.bases.decorator import determine_kwargs
        from airflow.sdk.execution_time.context import set_current_context

        kwargs = dict(determine_kwargs(self.func, self.args, {**self.context, **self.kwargs}))
        started = time.monotonic()
        with set_current_context(self.context):  # type: ignore[arg-type]
            value = self.func(*self.args, **kwargs)
        duration = round(time.monotonic() - started, 4)
        return ReplayResult(
            dag_id=self.dag_id,
            run_id=self.run_id,
            task_id=self.task_id,
            map_index=self.map_index,
            value=value,
            code=self.code,
            code_hash=self.code_hash,
            recorded_code_hash=self.record.code_hash,
            params=self.record.params,
            inputs=self.inputs.sources,
            duration_seconds=duration,
            pushed=self.context["ti"].pushed,
            saved=self._save(value) if save else None,
            manager=self.manager,
        )

    def _save(self, value: Any) -> Any:
        """Write the value below a scratch root of its own (never a run's folder)."""
        from airflow_mlops_provider.artifacts.manager import ArtifactManager
        from airflow_mlops_provider.artifacts.manifest import Producer

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        root = self.manager.store.url(layout.replay_root(f"{stamp}-{uuid.uuid4().hex[:8]}"))
        scratch = ArtifactManager(dataclasses.replace(self.manager.settings, artifact_root=root))
        producer = Producer(self.dag_id, self.run_id, self.task_id, self.map_index, "return_value", 0)
        return scratch.dump(value, producer)


def _resolve_run(dag_id: str, task_id: str, run_id: str, map_index: int, *, recorded: bool) -> str:
    """The run to replay; ``latest`` is the last run in which the instance ran (``recorded``: the
    last one with an ``mlops.task`` record, which plain ``@task`` tasks never push)."""
    from airflow_mlops_provider.catalog import runs, task_inputs

    if run_id == LATEST:
        found = (
            task_inputs.recorded_runs(dag_id, task_id, map_index)
            if recorded
            else runs.runs_where_task_started(dag_id, task_id, map_index)
        )
        if not found:
            raise ReplayError(
                f"Task {task_id!r} of DAG {dag_id!r} has "
                + ("no recorded try in any run (no mlops.task record" if recorded else "not run in any run (")
                + (f" for map index {map_index}" if map_index >= 0 else "")
                + "): run the DAG once, then replay it."
            )
        return found[0]
    if runs.dag_run(dag_id, run_id) is None:
        recent = [f"{r['run_id']} ({r['state']})" for r in runs.dag_runs(dag_id, 5)]
        raise ReplayError(f"DAG {dag_id!r} has no run {run_id!r}. Newest runs: {listing(recent)}.")
    return run_id


#: What a replay can run: the provider's tasks (they record params and inputs) and plain ``@task``.
REPLAYABLE = "@task, @ml.task, @ml.check or @ml.metric"


def _check_operator(dag_id: str, task: Any) -> bool:
    """Refuse what has no function to replay; ``True`` for a plain ``@task`` (no ``mlops.task`` record)."""
    from airflow_mlops_provider.decorators.ml_task import MLDecoratedOperator

    cls = task.operator_class if task.is_mapped else type(task)
    if isinstance(cls, type) and issubclass(cls, MLDecoratedOperator):
        return False
    kind = getattr(cls, "custom_operator_name", None) or getattr(cls, "__name__", str(cls))
    if kind == "@task":
        return True
    what = (
        "a TaskFlow variant that does not run its function as it is"
        if kind.startswith("@")
        else "a classic operator"
    )
    raise ReplayError(
        f"Task {task.task_id!r} of DAG {dag_id!r} is a {kind} ({what}): a replay calls the function of a "
        f"TaskFlow task ({REPLAYABLE}) on the inputs the run recorded, and this task has no such "
        f"function. Run it with `airflow tasks test {dag_id} {task.task_id}` instead."
    )


def _run_params(dag: Any, task: Any, dag_id: str, run_id: str) -> dict[str, Any]:
    """The params a plain ``@task`` saw in the run: the DAG's and task's params, then the run's conf
    (Airflow's default ``dag_run_conf_overrides_params``)."""
    from airflow_mlops_provider.catalog import runs as catalog_runs

    params: dict[str, Any] = {}
    for source in (getattr(dag, "params", None), getattr(task, "params", None)):
        if source is not None:
            try:
                params.update(source.dump())
            except Exception:  # a Param without a default: it must come from the conf
                params.update({k: getattr(v, "value", v) for k, v in dict(source).items()})
    params.update(catalog_runs.run_conf(dag_id, run_id))
    return params


def _recorded_function(
    dag_id: str, run_id: str, task_id: str, manager: ArtifactManager
) -> tuple[Callable[..., Any], str]:
    from airflow_mlops_provider.local.recorded_code import recorded_callable
    from airflow_mlops_provider.snapshots.store import SnapshotStore

    snapshot = SnapshotStore(manager.store).snapshot_for_run(dag_id, run_id)
    if snapshot is None:
        raise ReplayError(
            f"Run {run_id!r} of DAG {dag_id!r} has no structure snapshot, so its code was not recorded "
            "(the snapshot listener was not running). Replay it with the current code (without as_recorded)."
        )
    task = snapshot.task_dict.get(task_id)
    if task is None:
        raise ReplayError(f"The snapshot of run {run_id!r} of DAG {dag_id!r} has no task {task_id!r}.")
    return recorded_callable(task, dag_id, run_id), task.code_hash


def prepare_replay(
    dag_id: str,
    task_id: str,
    run_id: str = LATEST,
    *,
    map_index: int = -1,
    as_recorded: bool = False,
    manager: ArtifactManager | None = None,
) -> PreparedReplay:
    """Find the task instance, its function and its recorded inputs; see :func:`replay`.

    :raises ReplayError: unknown DAG, run or task; a classic operator; no record, or a plain ``@task``
        that did not run in the run.
    :raises ReplayInputError: an input's XCom row is missing or its artifact was deleted.
    """
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.catalog import runs as catalog_runs
    from airflow_mlops_provider.catalog import task_inputs
    from airflow_mlops_provider.records import TaskRecord
    from airflow_mlops_provider.snapshots.code import callable_code

    manager = manager or ArtifactManager.configured()
    dag = load_dag(dag_id)
    if task_id not in dag.task_dict:
        close = difflib.get_close_matches(task_id, list(dag.task_dict), n=5, cutoff=0.5)
        hint = (
            f"Did you mean: {', '.join(close)}?" if close else f"Its tasks: {listing(sorted(dag.task_dict))}."
        )
        raise ReplayError(f"DAG {dag_id!r} has no task {task_id!r} (in {dag.fileloc}). {hint}")
    task = dag.task_dict[task_id]
    plain = _check_operator(dag_id, task)
    if task.is_mapped and map_index < 0:
        raise ReplayError(
            f"Task {task_id!r} is mapped: pass the map index to replay (map_index=N, or --map-index N)."
        )
    if not task.is_mapped and map_index >= 0:
        raise ReplayError(f"Task {task_id!r} is not mapped: leave out the map index.")
    resolved = _resolve_run(dag_id, task_id, run_id, map_index, recorded=not plain)
    record = task_inputs.task_record(dag_id, resolved, task_id, map_index)
    if record is None and plain:
        ran = catalog_runs.runs_where_task_started(dag_id, task_id, map_index)
        if resolved not in ran:
            raise ReplayError(
                f"Task {task_id!r}" + (f"[{map_index}]" if map_index >= 0 else "") + f" did not run in run "
                f"{resolved!r} of DAG {dag_id!r}. Runs in which it ran: {listing(ran)}."
            )
        record = TaskRecord(
            status="unknown", operator="@task", params=_run_params(dag, task, dag_id, resolved)
        )
    if record is None:
        indexes = task_inputs.map_indexes(dag_id, resolved, task_id)
        extra = (
            f" Its map indexes in that run: {listing([str(i) for i in indexes])}." if task.is_mapped else ""
        )
        recorded = task_inputs.recorded_runs(dag_id, task_id, map_index)
        raise ReplayError(
            f"Task {task_id!r} has no recorded try in run {resolved!r} of DAG {dag_id!r} (no mlops.task "
            f"record: it did not start in that run, or was not an @ml.task then).{extra} Runs with a "
            f"record: {listing(recorded)}."
        )
    if as_recorded:
        func, code_hash = _recorded_function(dag_id, resolved, task_id, manager)
        code = "recorded"
    else:
        func = task.python_callable
        code_hash, code = callable_code(func)[1], "current"
    inputs = RecordedInputs(dag_id, resolved, task, func, map_index, manager)
    args, kwargs = inputs.arguments()
    context: dict[str, Any] = {
        "params": dict(record.params),
        "dag_id": dag_id,
        "run_id": resolved,
        "task_id": task_id,
        "map_index": map_index,
        "ti": ReplayTaskInstance(inputs, try_number=0),
    }
    return PreparedReplay(
        dag_id,
        resolved,
        task_id,
        map_index,
        func,
        args,
        kwargs,
        context,
        code,
        code_hash,
        record,
        inputs,
        manager,
    )


def replay(
    dag_id: str,
    task_id: str,
    run_id: str = LATEST,
    *,
    map_index: int = -1,
    as_recorded: bool = False,
    save: bool = False,
    manager: ArtifactManager | None = None,
) -> ReplayResult:
    """Run one task instance of a past run again, here, on the inputs and params that run recorded.

    :param dag_id: the DAG.
    :param task_id: an ``@ml.task`` (or ``@ml.check`` / ``@ml.metric``) task, or a plain ``@task``
        (its params are then the DAG's params updated with the run's conf).
    :param run_id: a run id, or ``"latest"``: the run that happened last in which the task instance
        ran (whatever its state, so a failed run is found).
    :param map_index: the map index of a mapped task's instance.
    :param as_recorded: run the function as the run's structure snapshot recorded it, not as the
        DAG file defines it now.
    :param save: also write the value below ``_scratch/replays/`` of the store (never a run's folder).
    :param manager: reads the artifacts (the configured one by default).
    :returns: a :class:`ReplayResult`; the function's own exception propagates unchanged.
    :raises ReplayError: bad input (see :func:`prepare_replay`), with what exists and what to do.
    """
    prepared = prepare_replay(
        dag_id, task_id, run_id, map_index=map_index, as_recorded=as_recorded, manager=manager
    )
    return prepared.run(save=save)
