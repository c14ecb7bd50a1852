"""Structural diff of two DAG snapshots: what changed between the shapes of two runs.

Airflow's UI diffs DAG code between versions but cannot say which tasks were added, removed,
renamed, moved, remapped or rewired; this module does, so a metric change can be linked to it.

Renames are a heuristic: a removed and an added task with the same code hash and kind are paired
as ``old_id -> new_id`` when the pairing is unambiguous (exactly one removed and one added task share
that hash and kind). Edges are compared after translating old task ids through the renames, so a
rename alone does not show up as rewiring; removed edges are reported with the old ids.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlops_provider.snapshots.model import DagSnapshot, TaskSnapshot

#: Task attributes compared by the diff (besides the code).
COMPARED_FIELDS = ("kind", "operator_class", "group_id", "mapped")


@dataclass(frozen=True)
class TaskChange:
    """A task present in both snapshots (possibly under a new id) whose attributes or code differ.

    :param changes: ``{field: [old, new]}`` for ``kind``, ``operator_class``, ``group_id``,
        ``mapped`` and ``code_hash``.
    :param code_diff: unified diff of the task's source when its code changed (``None`` otherwise).
    """

    task_id: str
    changes: dict[str, tuple[Any, Any]]
    code_diff: str | None = None

    @property
    def code_changed(self) -> bool:
        return "code_hash" in self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "changes": {k: list(v) for k, v in self.changes.items()},
            "code_diff": self.code_diff,
        }


@dataclass(frozen=True)
class TaskRename:
    """A task that disappeared under ``old_id`` and reappeared with the same code as ``new_id``."""

    old_id: str
    new_id: str
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_id": self.old_id,
            "new_id": self.new_id,
            "changes": {k: list(v) for k, v in self.changes.items()},
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

    @property
    def is_empty(self) -> bool:
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
        return ", ".join(parts) or "no structural change"

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
            "summary": self.summary(),
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
    removed: dict[str, TaskSnapshot], added: dict[str, TaskSnapshot]
) -> list[tuple[TaskSnapshot, TaskSnapshot]]:
    by_key_removed: dict[tuple[str, str], list[TaskSnapshot]] = defaultdict(list)
    by_key_added: dict[tuple[str, str], list[TaskSnapshot]] = defaultdict(list)
    for t in removed.values():
        by_key_removed[(t.code_hash, t.kind)].append(t)
    for t in added.values():
        by_key_added[(t.code_hash, t.kind)].append(t)
    pairs = []
    for key, olds in by_key_removed.items():
        news = by_key_added.get(key, [])
        if len(olds) == 1 and len(news) == 1:  # ambiguous matches stay added + removed
            pairs.append((olds[0], news[0]))
    return sorted(pairs, key=lambda p: p[0].task_id)


def diff_snapshots(old: DagSnapshot, new: DagSnapshot) -> SnapshotDiff:
    """Compare two snapshots of the same DAG (``old`` first)."""
    old_tasks, new_tasks = old.task_dict, new.task_dict
    removed = {k: v for k, v in old_tasks.items() if k not in new_tasks}
    added = {k: v for k, v in new_tasks.items() if k not in old_tasks}

    renames = []
    rename_map: dict[str, str] = {}
    for before, after in _pair_renames(removed, added):
        renames.append(TaskRename(before.task_id, after.task_id, _attribute_changes(before, after)))
        rename_map[before.task_id] = after.task_id
        del removed[before.task_id]
        del added[after.task_id]

    changed = []
    for task_id in sorted(old_tasks.keys() & new_tasks.keys()):
        before, after = old_tasks[task_id], new_tasks[task_id]
        changes = _attribute_changes(before, after)
        diff_text = None
        if before.code_hash != after.code_hash:
            changes["code_hash"] = (before.code_hash, after.code_hash)
            diff_text = code_diff(before, after)
        if changes:
            changed.append(TaskChange(task_id, changes, diff_text))

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
    )
