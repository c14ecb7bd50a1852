"""The structure a DAG run was created with: tasks, task groups, mapping, edges and code hashes.

Airflow redraws past runs with today's DAG, so a run's shape is lost once the file changes. A
:class:`DagSnapshot` freezes it. It is built from what the scheduler has (the ``SerializedDAG`` and
its serialized dict from the metadata DB, plus the DAG file's source from ``DagCode``), never from
the user's Python objects, because the recorder runs next to the scheduler.

Code hashes:

* TaskFlow tasks and other operators with a ``python_callable`` defined in the DAG file: the
  function is found in the file's source by its qualified name (with ``ast``), and the hash is the
  SHA-256 of its source from ``def`` to the end of its body. Decorators are excluded (their
  arguments are configuration, and the decorator itself is the task's ``kind``) and the function's
  own name is replaced by ``_``, so renaming a function without touching its body keeps its hash.
* Callables that are not in the DAG file (imported helpers, lambdas): the hash covers the
  callable's qualified name and the operator's template fields; code changes inside an imported
  module are not seen (``code_origin == "callable_name"``).
* Classic operators: the SHA-256 of a canonical JSON of the operator's serialized template fields
  (``bash_command``, ``sql``...), so a changed command is a changed task.

A snapshot's id is the SHA-256 of its canonical JSON: identical structures share one stored object.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from airflow.serialization.definitions.dag import SerializedDAG

SNAPSHOT_VERSION = 1

#: How a task's code hash was computed (see the module docstring).
CODE_FROM_SOURCE = "source"
CODE_FROM_CALLABLE_NAME = "callable_name"
CODE_FROM_TEMPLATE_FIELDS = "template_fields"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same content always gives the same bytes (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
    :param source: the text the code hash is about (function source, or template fields as JSON).
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
        index = _SourceIndex(source)
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


def _task_snapshot(op: Any, enc: Mapping[str, Any] | None, index: _SourceIndex) -> TaskSnapshot:
    operator_class = str(getattr(op, "task_type", None) or type(op).__name__)
    kind = str(
        getattr(op, "operator_name", None) or getattr(op, "custom_operator_name", None) or operator_class
    )
    group = getattr(op, "task_group", None)
    group_id = getattr(group, "group_id", None) if group is not None else None
    callable_name = _callable_name(op, enc)

    found = index.function(callable_name) if callable_name else None
    if found is not None:
        text, normalized = found
        code_hash, origin, source = sha256_text(normalized), CODE_FROM_SOURCE, text
    else:
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
    )


_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEF_HEAD = re.compile(r"(?:async\s+)?def\s+")
_LINE_END = re.compile(r"\r\n|\r|\n")  # the line breaks ast counts (not form feeds)


def _split_lines(source: str) -> list[str]:
    lines, start = [], 0
    for match in _LINE_END.finditer(source):
        lines.append(source[start : match.end()])
        start = match.end()
    if start < len(source):
        lines.append(source[start:])
    return lines


def _defs_in_scope(
    body: Iterable[ast.stmt],
) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    """Functions and classes bound in one scope, including inside ``with``/``if``/``for``/``try``."""
    for node in body:
        if isinstance(node, (*_FUNCTION_NODES, ast.ClassDef)):
            yield node
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _defs_in_scope([child])
            elif isinstance(child, (ast.excepthandler, ast.match_case)):
                yield from _defs_in_scope(child.body)


class _SourceIndex:
    """Finds functions in a DAG file by qualified name; parses the file once per snapshot."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self._tree: ast.Module | None = None
        self._parsed = False
        self._cache: dict[str, tuple[str, str] | None] = {}
        self._lines: list[str] | None = None
        self._scopes: dict[int, dict[str, ast.AST]] = {}

    @property
    def tree(self) -> ast.Module | None:
        if not self._parsed:
            self._parsed = True
            if self.source:
                try:
                    self._tree = ast.parse(self.source)
                except (SyntaxError, ValueError):
                    self._tree = None
        return self._tree

    def function(self, qualname: str) -> tuple[str, str] | None:
        """``(source, normalized source)`` of the function, or ``None`` when it is not in the file.

        The source runs from ``def`` to the end of the body (decorators excluded), dedented; the
        normalized form, which is hashed, has the function's own name replaced by ``_``.
        """
        if qualname not in self._cache:
            self._cache[qualname] = self._find(qualname)
        return self._cache[qualname]

    def _find(self, qualname: str) -> tuple[str, str] | None:
        tree = self.tree
        if tree is None or self.source is None:
            return None
        parts = [p for p in qualname.split(".") if p != "<locals>"]
        if not parts or any(p.startswith("<") for p in parts):
            return None  # lambdas, comprehensions
        node: ast.AST = tree
        for part in parts:
            found = self._scope(node).get(part)
            if found is None:
                return None
            node = found
        if not isinstance(node, _FUNCTION_NODES):
            return None
        segment = self._segment(node)
        if segment is None:
            return None
        segment = segment.replace("\r\n", "\n").replace("\r", "\n")
        text = textwrap.dedent(segment).rstrip() + "\n"
        normalized = text
        head = _DEF_HEAD.match(text)
        if head is not None and text.startswith(node.name, head.end()):
            normalized = f"{text[: head.end()]}_{text[head.end() + len(node.name) :]}"
        return text, normalized

    def _scope(self, node: ast.AST) -> dict[str, ast.AST]:
        """Names bound by ``def``/``class`` directly in ``node``'s scope (the first one wins)."""
        key = id(node)
        if key not in self._scopes:
            names: dict[str, ast.AST] = {}
            for child in _defs_in_scope(getattr(node, "body", [])):
                names.setdefault(child.name, child)
            self._scopes[key] = names
        return self._scopes[key]

    def _segment(self, node: ast.AST) -> str | None:
        """Like ``ast.get_source_segment(padded=True)``, without re-splitting the file every call."""
        end_lineno, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        if end_lineno is None or end_col is None or self.source is None:
            return None
        if self._lines is None:
            self._lines = _split_lines(self.source)
        lines = self._lines
        first, last = node.lineno - 1, end_lineno - 1  # type: ignore[attr-defined]
        if last >= len(lines):
            return None
        col = node.col_offset  # type: ignore[attr-defined]
        # ast offsets count UTF-8 bytes.
        if first == last:
            return lines[first].encode()[col:end_col].decode()
        prefix = lines[first].encode()[:col].decode()
        padding = prefix if prefix.isspace() else " " * len(prefix)
        head = lines[first].encode()[col:].decode()
        tail = lines[last].encode()[:end_col].decode()
        return padding + head + "".join(lines[first + 1 : last]) + tail
