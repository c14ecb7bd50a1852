"""Structural diff of two DAG snapshots: what changed between the shapes of two runs.

Airflow's UI diffs DAG code between versions but cannot say which tasks were added, removed,
renamed, moved, remapped or rewired; this module does, so a metric change can be linked to it.

A task present in both snapshots is *changed* when its kind, operator class, group, mapping, code
(its function, or anything it uses from the DAG file: constants, imports, helpers) or ``@ml``
decorator settings differ; :attr:`TaskChange.description` says what in one line, e.g.
``task predict: code changed (FEATURES)``, ``check scores: severity warning -> error`` or
``metric auc: lower 0.7 -> 0.8, regression added (Regression(window=3, max_drop=0.1))``.

Renames are a heuristic: a removed and an added task with the same code hash and kind are paired
as ``old_id -> new_id`` when the pairing is unambiguous (exactly one removed and one added task share
that hash and kind). Edges are compared after translating old task ids through the renames, so a
rename alone does not show up as rewiring; removed edges are reported with the old ids.

Against a version 1 snapshot (recorded before dependencies and settings were), code is compared by
the function alone and settings are not compared, so upgrading the provider does not report every
task as changed.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.snapshots.code import display_setting

if TYPE_CHECKING:
    from airflow_mlops_provider.snapshots.model import DagSnapshot, TaskSnapshot

#: Task attributes compared by the diff (besides the code).
COMPARED_FIELDS = ("kind", "operator_class", "group_id", "mapped")


def _label(kind: str) -> str:
    """``check`` for ``@ml.check``, ``metric`` for ``@ml.metric``, else ``task``."""
    return {"@ml.check": "check", "@ml.metric": "metric"}.get(kind, "task")


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


def _settings_text(settings: dict[str, tuple[str | None, str | None]]) -> list[str]:
    parts = []
    for name, (old, new) in settings.items():
        if old is None:
            parts.append(f"{name} added ({display_setting(new)})")
        elif new is None:
            parts.append(f"{name} removed (was {display_setting(old)})")
        else:
            parts.append(f"{name} {display_setting(old)} -> {display_setting(new)}")
    return parts


def _attribute_text(changes: dict[str, tuple[Any, Any]]) -> list[str]:
    names = {"group_id": "group", "operator_class": "operator class"}
    return [
        f"{names.get(name, name)} {_show(old)} -> {_show(new)}"
        for name, (old, new) in changes.items()
        if name != "code_hash"
    ]


@dataclass(frozen=True)
class TaskChange:
    """A task present in both snapshots whose attributes, code or settings differ.

    :param changes: ``{field: [old, new]}`` for ``kind``, ``operator_class``, ``group_id``,
        ``mapped`` and ``code_hash``.
    :param code_diff: unified diff of the task's source (function and dependencies) when its code
        changed (``None`` otherwise).
    :param code_changes: what of the code changed: ``"function"`` for the function itself, and the
        names of changed, added or removed dependencies (``FEATURES``, ``_helper``...).
    :param settings: ``{setting: (old, new)}`` of changed ``@ml`` decorator settings (source
        text; ``None`` when not set on that side).
    :param kind: the task's kind in the new snapshot (says "check"/"metric"/"task" in
        :attr:`description`).
    """

    task_id: str
    changes: dict[str, tuple[Any, Any]]
    code_diff: str | None = None
    code_changes: tuple[str, ...] = ()
    settings: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    kind: str = ""

    @property
    def code_changed(self) -> bool:
        return "code_hash" in self.changes

    @property
    def description(self) -> str:
        """One line for people, e.g. ``check scores: severity warning -> error``."""
        parts = []
        if self.code_changed:
            names = [n if n != "function" else "function body" for n in self.code_changes]
            only_body = names == ["function body"]
            parts.append("code changed" + (f" ({', '.join(names)})" if names and not only_body else ""))
        parts += _settings_text(self.settings) + _attribute_text(self.changes)
        return f"{_label(self.kind)} {self.task_id}: {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "description": self.description,
            "changes": {k: list(v) for k, v in self.changes.items()},
            "code_changes": list(self.code_changes),
            "settings": {k: list(v) for k, v in self.settings.items()},
            "code_diff": self.code_diff,
        }


@dataclass(frozen=True)
class TaskRename:
    """A task that disappeared under ``old_id`` and reappeared with the same code as ``new_id``."""

    old_id: str
    new_id: str
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    settings: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    kind: str = ""

    @property
    def description(self) -> str:
        extra = _settings_text(self.settings) + _attribute_text(self.changes)
        return f"{_label(self.kind)} {self.old_id} renamed to {self.new_id}" + (
            f" ({', '.join(extra)})" if extra else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_id": self.old_id,
            "new_id": self.new_id,
            "description": self.description,
            "changes": {k: list(v) for k, v in self.changes.items()},
            "settings": {k: list(v) for k, v in self.settings.items()},
        }


@dataclass(frozen=True)
class SnapshotDiff:
    """What changed from ``old`` to ``new`` (task lists sorted by id, edges sorted)."""

    dag_id: str
    old_id: str
    new_id: str
    added: tuple[TaskSnapshot, ...] = ()
    removed: tuple[TaskSnapshot, ...] = ()
    renamed: tuple[TaskRename, ...] = ()
    changed: tuple[TaskChange, ...] = ()
    edges_added: tuple[tuple[str, str], ...] = ()
    edges_removed: tuple[tuple[str, str], ...] = ()
    old_file_hash: str | None = None
    new_file_hash: str | None = None

    @property
    def file_changed(self) -> bool | None:
        """Whether the DAG file's bytes differ (``None`` when either run did not record its hash).

        A second signal: true with an empty diff means the file changed in ways no task's code or
        settings depend on as far as the analysis sees (comments, unused code, in-place changes).
        """
        if self.old_file_hash is None or self.new_file_hash is None:
            return None
        return self.old_file_hash != self.new_file_hash

    @property
    def is_empty(self) -> bool:
        """No structural change (tasks, edges, code, settings); see also :attr:`file_changed`."""
        return not (
            self.added
            or self.removed
            or self.renamed
            or self.changed
            or self.edges_added
            or self.edges_removed
        )

    def summary(self) -> str:
        """One line for logs and UI titles, e.g. ``+2 tasks, -1 task, 1 changed, +1 edge``."""
        parts = []
        for count, label in (
            (len(self.added), "added"),
            (len(self.removed), "removed"),
            (len(self.renamed), "renamed"),
            (len(self.changed), "changed"),
        ):
            if count:
                parts.append(f"{count} task{'s' if count > 1 else ''} {label}")
        if self.edges_added:
            parts.append(f"+{len(self.edges_added)} edge{'s' if len(self.edges_added) > 1 else ''}")
        if self.edges_removed:
            parts.append(f"-{len(self.edges_removed)} edge{'s' if len(self.edges_removed) > 1 else ''}")
        if not parts:
            return (
                "no structural change, but the DAG file changed"
                if self.file_changed
                else ("no structural change")
            )
        return ", ".join(parts)

    def descriptions(self) -> list[str]:
        """One line per change, for people (the CLI prints these)."""
        lines = [f"{_label(t.kind)} {t.task_id} added ({t.kind})" for t in self.added]
        lines += [f"{_label(t.kind)} {t.task_id} removed" for t in self.removed]
        lines += [r.description for r in self.renamed]
        lines += [c.description for c in self.changed]
        lines += [f"edge {u} >> {d} added" for u, d in self.edges_added]
        lines += [f"edge {u} >> {d} removed" for u, d in self.edges_removed]
        if self.file_changed and self.is_empty:
            lines.append("DAG file changed (no task's code or settings)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the UI (added/removed tasks without their source text)."""

        def brief(t: TaskSnapshot) -> dict[str, Any]:
            return {
                "task_id": t.task_id,
                "kind": t.kind,
                "group_id": t.group_id,
                "mapped": t.mapped,
                "code_hash": t.code_hash,
            }

        return {
            "dag_id": self.dag_id,
            "old_snapshot_id": self.old_id,
            "new_snapshot_id": self.new_id,
            "is_empty": self.is_empty,
            "file_changed": self.file_changed,
            "summary": self.summary(),
            "descriptions": self.descriptions(),
            "added": [brief(t) for t in self.added],
            "removed": [brief(t) for t in self.removed],
            "renamed": [r.to_dict() for r in self.renamed],
            "changed": [c.to_dict() for c in self.changed],
            "edges_added": [list(e) for e in self.edges_added],
            "edges_removed": [list(e) for e in self.edges_removed],
        }


def _attribute_changes(old: TaskSnapshot, new: TaskSnapshot) -> dict[str, tuple[Any, Any]]:
    return {
        name: (getattr(old, name), getattr(new, name))
        for name in COMPARED_FIELDS
        if getattr(old, name) != getattr(new, name)
    }


def _legacy(old: DagSnapshot, new: DagSnapshot) -> bool:
    """One side is a version 1 snapshot: compare functions alone, not dependencies or settings."""
    return min(old.snapshot_version, new.snapshot_version) < 2


def _code_key(task: TaskSnapshot, legacy: bool) -> str:
    return (task.function_hash or task.code_hash) if legacy else task.code_hash


def _code_changes(old: TaskSnapshot, new: TaskSnapshot) -> tuple[str, ...]:
    """``"function"`` if the function itself changed, then changed dependency names."""
    names = []
    if old.function_hash and new.function_hash and old.function_hash != new.function_hash:
        names.append("function")
    before, after = old.dependencies or {}, new.dependencies or {}
    if old.dependencies is not None and new.dependencies is not None:
        names += sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
    return tuple(names)


def _settings_changes(old: TaskSnapshot, new: TaskSnapshot) -> dict[str, tuple[str | None, str | None]]:
    if old.settings is None or new.settings is None:
        return {}  # unknown on one side: nothing can be said
    names = sorted(old.settings.keys() | new.settings.keys())
    return {
        n: (old.settings.get(n), new.settings.get(n))
        for n in names
        if old.settings.get(n) != new.settings.get(n)
    }


def code_diff(old: TaskSnapshot, new: TaskSnapshot, *, context: int = 3) -> str:
    """Unified diff of two versions of a task's source (empty when a source is missing)."""
    return "".join(
        difflib.unified_diff(
            (old.source or "").splitlines(keepends=True),
            (new.source or "").splitlines(keepends=True),
            fromfile=f"{old.task_id} (old)",
            tofile=f"{new.task_id} (new)",
            n=context,
        )
    )


def _pair_renames(
    removed: dict[str, TaskSnapshot], added: dict[str, TaskSnapshot], legacy: bool
) -> list[tuple[TaskSnapshot, TaskSnapshot]]:
    by_key_removed: dict[tuple[str, str], list[TaskSnapshot]] = defaultdict(list)
    by_key_added: dict[tuple[str, str], list[TaskSnapshot]] = defaultdict(list)
    for t in removed.values():
        by_key_removed[(_code_key(t, legacy), t.kind)].append(t)
    for t in added.values():
        by_key_added[(_code_key(t, legacy), t.kind)].append(t)
    pairs = []
    for key, olds in by_key_removed.items():
        news = by_key_added.get(key, [])
        if len(olds) == 1 and len(news) == 1:  # ambiguous matches stay added + removed
            pairs.append((olds[0], news[0]))
    return sorted(pairs, key=lambda p: p[0].task_id)


def diff_snapshots(
    old: DagSnapshot,
    new: DagSnapshot,
    *,
    old_file_hash: str | None = None,
    new_file_hash: str | None = None,
) -> SnapshotDiff:
    """Compare two snapshots of the same DAG (``old`` first).

    The DAG file hashes (from the runs' pointers) are optional; with both, the diff also says
    whether the file changed (:attr:`SnapshotDiff.file_changed`).
    """
    legacy = _legacy(old, new)
    old_tasks, new_tasks = old.task_dict, new.task_dict
    removed = {k: v for k, v in old_tasks.items() if k not in new_tasks}
    added = {k: v for k, v in new_tasks.items() if k not in old_tasks}

    renames = []
    rename_map: dict[str, str] = {}
    for before, after in _pair_renames(removed, added, legacy):
        settings = {} if legacy else _settings_changes(before, after)
        renames.append(
            TaskRename(before.task_id, after.task_id, _attribute_changes(before, after), settings, after.kind)
        )
        rename_map[before.task_id] = after.task_id
        del removed[before.task_id]
        del added[after.task_id]

    changed = []
    for task_id in sorted(old_tasks.keys() & new_tasks.keys()):
        before, after = old_tasks[task_id], new_tasks[task_id]
        changes = _attribute_changes(before, after)
        diff_text = None
        code_changes: tuple[str, ...] = ()
        if _code_key(before, legacy) != _code_key(after, legacy):
            changes["code_hash"] = (before.code_hash, after.code_hash)
            diff_text = code_diff(before, after)
            code_changes = ("function",) if legacy else _code_changes(before, after)
        settings = {} if legacy else _settings_changes(before, after)
        if changes or settings:
            changed.append(TaskChange(task_id, changes, diff_text, code_changes, settings, after.kind))

    # Compare edges in new ids; report removed edges in the old snapshot's ids.
    old_edges = {(rename_map.get(u, u), rename_map.get(d, d)): (u, d) for u, d in old.edges}
    new_edges = set(new.edges)
    return SnapshotDiff(
        dag_id=new.dag_id,
        old_id=old.id,
        new_id=new.id,
        added=tuple(added[k] for k in sorted(added)),
        removed=tuple(removed[k] for k in sorted(removed)),
        renamed=tuple(renames),
        changed=tuple(changed),
        edges_added=tuple(sorted(new_edges - old_edges.keys())),
        edges_removed=tuple(sorted(old_edges[e] for e in old_edges.keys() - new_edges)),
        old_file_hash=old_file_hash,
        new_file_hash=new_file_hash,
    )
