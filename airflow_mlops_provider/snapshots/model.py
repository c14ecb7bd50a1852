"""The structure a DAG run was created with: tasks, task groups, mapping, edges, code and settings.

Airflow redraws past runs with today's DAG, so a run's shape is lost once the file changes. A
:class:`DagSnapshot` freezes it. It is built from what the scheduler has (the ``SerializedDAG`` and
its serialized dict from the metadata DB, plus the DAG file's source from ``DagCode``), never from
the user's Python objects, because the recorder runs next to the scheduler.

Code hashes:

* TaskFlow tasks and other operators with a ``python_callable`` defined in the DAG file: the
  function is found in the file's source by its qualified name, with what it uses from the file
  (module-level constants, imports, helper functions, transitively); see
  :mod:`airflow_mlops_provider.snapshots.code`. The hash covers the function from ``def`` to the
  end of its body (decorators excluded, its own name replaced by ``_``, so renaming a function
  without touching its body keeps its hash) and the source of each dependency;
  ``function_hash`` covers the function alone and ``dependencies`` hashes each dependency, so a
  diff can say what changed. ``@ml.task``/``@ml.check``/``@ml.metric`` tasks also record their
  decorator ``settings`` (severity, bounds, regression, notifier...).
* Callables that are not in the DAG file (imported helpers, lambdas): the hash covers the
  callable's qualified name and the operator's template fields; code changes inside an imported
  module are not seen (``code_origin == "callable_name"``).
* Classic operators: the SHA-256 of a canonical JSON of the operator's serialized template fields
  (``bash_command``, ``sql``...), so a changed command is a changed task.

The DAG file's own SHA-256 is recorded in each run's pointer (``dag_file_sha256``, see
:mod:`.store`), as a second signal for changes the code analysis does not follow.

A snapshot's id is the SHA-256 of its canonical JSON: identical structures share one stored object.
Version 1 snapshots (no dependencies, settings or function hashes) are still read and compared.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.snapshots.code import SourceIndex, sha256_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.serialization.definitions.dag import SerializedDAG

SNAPSHOT_VERSION = 2

#: How a task's code hash was computed (see the module docstring).
CODE_FROM_SOURCE = "source"
CODE_FROM_CALLABLE_NAME = "callable_name"
CODE_FROM_TEMPLATE_FIELDS = "template_fields"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same content always gives the same bytes (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class TaskSnapshot:
    """One task as the run saw it.

    :param kind: the decorator for TaskFlow tasks (``@task``, ``@ml.task``...), else the operator's
        name (its class name unless it sets ``custom_operator_name``).
    :param operator_class: the operator's class name (``task_type``).
    :param group_id: the innermost task group's id, ``None`` at the top level.
    :param mapped: the task is expanded (``.expand()``), itself or through a mapped task group.
    :param code_hash: see the module docstring; ``code_origin`` says how it was computed.
    :param callable_name: qualified name of the Python callable (without module), if any.
    :param source: the text the code hash is about (function source and its dependencies, or
        template fields as JSON).
    :param function_hash: hash of the function alone (``None`` unless the code came from source,
        and in version 1 snapshots, whose ``code_hash`` is this hash).
    :param dependencies: ``{name: SHA-256 of its source}`` of what the function uses from the DAG
        file (``None`` in version 1 snapshots).
    :param settings: ``{keyword: source text}`` of an ``@ml`` decorator's settings (``None`` when
        unknown: version 1 snapshots, or a callable that is not in the DAG file).
    """

    task_id: str
    kind: str
    operator_class: str
    group_id: str | None
    mapped: bool
    code_hash: str
    code_origin: str
    callable_name: str | None = None
    source: str | None = None
    function_hash: str | None = None
    dependencies: dict[str, str] | None = field(default=None, hash=False)
    settings: dict[str, str] | None = field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSnapshot:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class DagSnapshot:
    """The structure of one DAG as a run was created with it (content-addressed by :attr:`id`)."""

    dag_id: str
    tasks: tuple[TaskSnapshot, ...]
    edges: tuple[tuple[str, str], ...]
    snapshot_version: int = SNAPSHOT_VERSION
    _id: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Canonical order, so the same structure always has the same id.
        object.__setattr__(self, "tasks", tuple(sorted(self.tasks, key=lambda t: t.task_id)))
        object.__setattr__(self, "edges", tuple(sorted((str(u), str(d)) for u, d in self.edges)))

    # -- identity and JSON --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_version": self.snapshot_version,
            "dag_id": self.dag_id,
            "tasks": [t.to_dict() for t in self.tasks],
            "edges": [list(e) for e in self.edges],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DagSnapshot:
        version = int(data.get("snapshot_version", 0))
        if version > SNAPSHOT_VERSION or version < 1:
            raise ValueError(
                f"DAG snapshot of {data.get('dag_id')!r} has snapshot_version {version}; this version of "
                f"airflow-mlops-provider reads versions 1 to {SNAPSHOT_VERSION}. Upgrade the provider."
            )
        return cls(
            dag_id=data["dag_id"],
            tasks=tuple(TaskSnapshot.from_dict(t) for t in data["tasks"]),
            edges=tuple((u, d) for u, d in data["edges"]),
            snapshot_version=version,
        )

    def to_json(self) -> str:
        """The canonical JSON; its SHA-256 is :attr:`id`."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> DagSnapshot:
        return cls.from_dict(json.loads(text))

    @property
    def id(self) -> str:
        if self._id is None:
            object.__setattr__(self, "_id", sha256_text(self.to_json()))
        return self._id  # type: ignore[return-value]

    # -- convenience --------------------------------------------------------------------------------

    @property
    def task_dict(self) -> dict[str, TaskSnapshot]:
        return {t.task_id: t for t in self.tasks}

    def upstream(self, task_id: str) -> list[str]:
        return [u for u, d in self.edges if d == task_id]

    def downstream(self, task_id: str) -> list[str]:
        return [d for u, d in self.edges if u == task_id]

    # -- building -----------------------------------------------------------------------------------

    @classmethod
    def from_serialized(
        cls,
        dag: SerializedDAG,
        *,
        data: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> DagSnapshot:
        """Snapshot a DAG as the scheduler has it.

        :param dag: the deserialized DAG (``SerializedDagModel.dag``).
        :param data: its serialized dict (``SerializedDagModel.data``). Airflow drops
            ``python_callable_name`` when deserializing, so without it callables cannot be located
            and TaskFlow tasks fall back to template-field hashes.
        :param source: the DAG file's source (``DagCode.source_code``) to find callables in.
        """
        encoded = _encoded_tasks(data)
        index = SourceIndex(source)
        tasks = []
        edges = []
        for op in dag.tasks:
            enc = encoded.get(op.task_id)
            tasks.append(_task_snapshot(op, enc, index))
            edges.extend((op.task_id, down) for down in op.downstream_task_ids)
        return cls(dag_id=dag.dag_id, tasks=tuple(tasks), edges=tuple(edges))

    @classmethod
    def from_serialized_data(cls, data: Mapping[str, Any], source: str | None = None) -> DagSnapshot:
        """Deserialize ``data`` (a ``SerializedDagModel.data`` dict) and snapshot it."""
        from airflow.serialization.serialized_objects import DagSerialization

        return cls.from_serialized(DagSerialization.from_dict(dict(data)), data=data, source=source)


# -- building helpers -------------------------------------------------------------------------------


def _encoded_tasks(data: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """task_id -> the task's serialized dict (``{"__type": "operator", "__var": {...}}`` unwrapped)."""
    if not data:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item in data.get("dag", {}).get("tasks", []):
        var = item.get("__var", item) if isinstance(item, dict) else None
        if isinstance(var, dict) and "task_id" in var:
            out[var["task_id"]] = var
    return out


def _callable_name(op: Any, enc: Mapping[str, Any] | None) -> str | None:
    if enc:
        name = enc.get("python_callable_name") or (enc.get("partial_kwargs") or {}).get(
            "python_callable_name"
        )
        if name:
            return str(name)
    name = getattr(op, "python_callable_name", None)  # kept on the object by some Airflow versions
    return name if isinstance(name, str) and name else None


def _is_mapped(op: Any) -> bool:
    if getattr(op, "is_mapped", False):
        return True
    try:
        return next(op.iter_mapped_task_groups(), None) is not None
    except (AttributeError, TypeError):
        return False


def _template_values(op: Any, enc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The operator's template fields, JSON-ready and stable (serialized form when available)."""
    fields = list(getattr(op, "template_fields", None) or [])
    values: dict[str, Any] = {}
    if enc is not None:
        fields = list(enc.get("template_fields") or fields)
        partial = enc.get("partial_kwargs") or {}
        for name in fields:
            if name in enc:
                values[name] = enc[name]
            elif name in partial:
                values[name] = partial[name]
        for key in ("expand_input", "op_kwargs_expand_input"):
            if key in enc:
                values[f"<{key}>"] = enc[key]
        return json.loads(canonical_json(values))
    for name in fields:
        try:
            value = getattr(op, name, None)
        except Exception:
            value = None
        if value is None and getattr(op, "is_mapped", False):
            value = (getattr(op, "partial_kwargs", None) or {}).get(name)
        values[name] = _stable(value)
    return values


def _stable(value: Any) -> Any:
    """A JSON-ready form with no memory addresses (XComArgs become task references)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_stable(v) for v in value), key=canonical_json)
    operator = getattr(value, "operator", None)
    if operator is not None and hasattr(operator, "task_id"):
        return {"xcom_arg": operator.task_id, "key": getattr(value, "key", None)}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return f"<{type(value).__qualname__}>"


def _task_snapshot(op: Any, enc: Mapping[str, Any] | None, index: SourceIndex) -> TaskSnapshot:
    operator_class = str(getattr(op, "task_type", None) or type(op).__name__)
    kind = str(
        getattr(op, "operator_name", None) or getattr(op, "custom_operator_name", None) or operator_class
    )
    group = getattr(op, "task_group", None)
    group_id = getattr(group, "group_id", None) if group is not None else None
    callable_name = _callable_name(op, enc)

    is_ml = kind.startswith("@ml.")
    found = index.task_code(callable_name, settings=is_ml) if callable_name else None
    function_hash = dependencies = settings = None
    if found is not None:
        code_hash, origin, source = found.code_hash, CODE_FROM_SOURCE, found.source
        function_hash, dependencies = found.function_hash, found.dependencies
        settings = found.settings if is_ml else {}
    else:
        settings = None if is_ml else {}
        fields = _template_values(op, enc)
        if callable_name:
            payload = {"callable": callable_name, "template_fields": fields}
            origin = CODE_FROM_CALLABLE_NAME
        else:
            payload = fields
            origin = CODE_FROM_TEMPLATE_FIELDS
        code_hash = sha256_text(canonical_json(payload))
        source = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    return TaskSnapshot(
        task_id=op.task_id,
        kind=kind,
        operator_class=operator_class,
        group_id=group_id,
        mapped=_is_mapped(op),
        code_hash=code_hash,
        code_origin=origin,
        callable_name=callable_name,
        source=source,
        function_hash=function_hash,
        dependencies=dependencies,
        settings=settings,
    )
