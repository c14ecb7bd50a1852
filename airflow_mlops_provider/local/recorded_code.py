"""A task's function as a run recorded it: rebuilt from the run's structure snapshot.

A snapshot keeps, per task, the function's source (from ``def``, without decorators) followed by
the source of everything it uses from the DAG file (imports, constants, helpers), each under a
``# name`` line (:mod:`airflow_mlops_provider.snapshots.code`). Executing those statements in a
fresh namespace gives back the function as it was when the run was created, whatever the DAG file
says now.
"""

from __future__ import annotations
import __future__

import ast
import linecache
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.exceptions import ArtifactLookupError
from airflow_mlops_provider.snapshots.code import sha256_text
from airflow_mlops_provider.snapshots.model import CODE_FROM_SOURCE

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops_provider.snapshots.model import TaskSnapshot


class RecordedCodeError(ArtifactLookupError):
    """The run's snapshot has no usable source for the task (not recorded, or not from the DAG file)."""


def split_source(task: TaskSnapshot) -> tuple[str, dict[str, str]]:
    """``(function source, {dependency: source})`` of a snapshot task, each dependency checked
    against the hash the snapshot recorded for it."""
    source = task.source or ""
    dependencies: dict[str, str] = {}
    for name in sorted(task.dependencies or {}, reverse=True):
        marker = f"\n# {name}\n"
        cut = source.rfind(marker)
        text = source[cut + len(marker) :] if cut >= 0 else None
        if text is None or sha256_text(text) != (task.dependencies or {})[name]:
            raise RecordedCodeError(
                f"The recorded source of task {task.task_id!r} does not hold its dependency {name!r} as "
                "the snapshot hashed it; replay it with the DAG file's current code (without as_recorded)."
            )
        dependencies[name] = text
        source = source[:cut]
    return source, dict(sorted(dependencies.items()))


def _register(filename: str, text: str) -> None:
    """Let tracebacks and pdb show the recorded lines."""
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)


def _run(text: str, filename: str, namespace: dict[str, Any]) -> None:
    """Execute the run's recorded statements; annotations stay unevaluated, as under
    ``from __future__ import annotations`` (the snapshot keeps no import only annotations use)."""
    _register(filename, text)
    code = compile(text, filename, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    exec(code, namespace)


def recorded_callable(task: TaskSnapshot, dag_id: str, run_id: str) -> Callable[..., Any]:
    """The task's function rebuilt from the snapshot of ``run_id``.

    Dependencies run first, each statement retried after the others when it needs a name another
    one binds (they are stored by name, not in file order).

    :raises RecordedCodeError: the snapshot has no source for the task, or it does not run.
    """
    if task.code_origin != CODE_FROM_SOURCE or not task.source:
        raise RecordedCodeError(
            f"The snapshot of run {run_id!r} of DAG {dag_id!r} has no source for task {task.task_id!r} "
            f"(its code was recorded from {task.code_origin!r}: the callable is not defined in the DAG "
            "file). Replay it with the current code (without as_recorded)."
        )
    function_text, dependencies = split_source(task)
    where = f"<recorded {dag_id}/{run_id}/{task.task_id}"
    namespace: dict[str, Any] = {"__name__": f"mlops_replay_{task.task_id}", "__builtins__": __builtins__}
    pending = dict(dependencies)
    while pending:
        failures: dict[str, BaseException] = {}
        for name, text in list(pending.items()):
            try:
                _run(text, f"{where}: {name}>", namespace)
            except NameError as err:
                failures[name] = err
                continue
            del pending[name]
        if failures and len(failures) == len(pending):
            listed = "; ".join(f"{name}: {err}" for name, err in failures.items())
            raise RecordedCodeError(
                f"The recorded dependencies of task {task.task_id!r} (run {run_id!r}) do not run: {listed}."
            )
    tree = ast.parse(function_text)
    names = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not names:
        raise RecordedCodeError(f"The recorded source of task {task.task_id!r} holds no function.")
    _run(function_text, f"{where}>", namespace)
    return namespace[names[-1]]
