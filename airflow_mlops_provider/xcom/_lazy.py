"""Decide whether an XCom being resolved feeds an ``ArtifactRef`` / ``Columns`` parameter.

Airflow resolves a TaskFlow task's XComArg arguments (``op_args``/``op_kwargs``, and the
``expand()`` input of mapped tasks) while rendering templates, inside the task's context, before the
callable runs. At that point the task still holds the XComArgs, so the parameter each upstream XCom
is bound to, and that parameter's annotation, can be looked up.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any

from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.artifacts.refs import ArtifactRef, Columns
from airflow_mlops_provider.exceptions import ArtifactError

LAZY = object()
#: A cached task's plain input: handed over unloaded, loaded only if the cache misses.
DEFERRED = object()


@dataclass(frozen=True)
class ColumnsRequest:
    names: list[str]


def _context() -> Any:
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:
        return None


def current_try_number() -> int:
    """Try number of the task instance writing the XCom (0 outside a task)."""
    from airflow_mlops_provider.listeners import current_task_instance

    context = _context()
    ti = context.get("ti") if context else current_task_instance()
    return int(getattr(ti, "try_number", 0) or 0)


def form_of(annotation: Any) -> Any:
    """``LAZY``, a :class:`ColumnsRequest`, or ``None`` for a plain (eager) annotation."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, Columns):
                return ColumnsRequest(extra.names)
        annotation = base
    origin = typing.get_origin(annotation) or annotation
    if origin is ArtifactRef:
        return LAZY
    is_union = origin in (typing.Union, types.UnionType)
    if is_union and any(form_of(arg) is LAZY for arg in typing.get_args(annotation)):
        return LAZY
    return None


def annotations_of(func: Any) -> dict[str, Any]:
    """Parameter annotations, resolved; unresolvable ones that name ArtifactRef still count."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        pass
    resolved: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        annotation = param.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, getattr(func, "__globals__", {}))
            except Exception:
                annotation = ArtifactRef if "ArtifactRef" in annotation else None
        resolved[name] = annotation
    return resolved


def _deferrable(task: Any, name: str, xcom_arg: Any) -> bool:
    """Whether a cached task can get this input unloaded: bound directly (not by ``expand()``),
    from an unmapped upstream (a mapped one arrives as Airflow's lazy sequence)."""
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    if getattr(task, "cache", None) is None or not isinstance(xcom_arg, PlainXComArg):
        return False
    upstream = xcom_arg.operator
    in_mapped_group = getattr(upstream, "get_closest_mapped_task_group", None)
    if getattr(upstream, "is_mapped", True) or (in_mapped_group is not None and in_mapped_group()):
        return False
    return name in (getattr(task, "op_kwargs", None) or {}) or any(
        value is xcom_arg for value in getattr(task, "op_args", None) or ()
    )


def _bound_xcom_args(task: Any) -> list[tuple[str, Any]]:
    """(parameter name, XComArg) pairs of a TaskFlow task, mapped or not."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    func = getattr(task, "python_callable", None)
    op_args: Any = getattr(task, "op_args", None) or ()
    op_kwargs: Any = dict(getattr(task, "op_kwargs", None) or {})
    partial = getattr(task, "partial_kwargs", None)
    if isinstance(partial, dict):
        func = func or partial.get("python_callable")
        op_args = partial.get("op_args") or op_args
        op_kwargs = {**(partial.get("op_kwargs") or {}), **op_kwargs}
    expand_input = getattr(getattr(task, "expand_input", None), "value", None)
    if isinstance(expand_input, dict):
        op_kwargs.update(expand_input.get("op_kwargs", expand_input))
    if func is None:
        return []
    try:
        bound = inspect.signature(func).bind_partial(*op_args, **op_kwargs)
    except TypeError:
        return []
    return [(name, value) for name, value in bound.arguments.items() if isinstance(value, XComArg)]


def requested_form(row: Any) -> Any:
    """How the current task wants the XCom in ``row``: ``LAZY``, columns, or ``None`` (load it)."""
    first = next(codec.iter_references(row), None)
    if first is None:
        return None
    producer = first[1].get("producer", {})
    context = _context()
    task = context.get("task") if context else None
    if task is None:
        return None
    try:
        args = _bound_xcom_args(task)
        if not args:
            return None
        func = getattr(task, "python_callable", None) or task.partial_kwargs.get("python_callable")
        hints = annotations_of(func)
    except Exception:
        return None
    forms = set()
    deferrable = True
    for name, xcom_arg in args:
        for operator, key in xcom_arg.iter_references():
            if operator.task_id == producer.get("task_id") and key == producer.get("key"):
                form = form_of(hints.get(name))
                forms.add(form if not isinstance(form, ColumnsRequest) else tuple(form.names))
                deferrable = deferrable and _deferrable(task, name, xcom_arg)
    if len(forms) > 1 and (None in forms):
        raise ArtifactError(
            f"Task {task.task_id!r} receives XCom {producer.get('key')!r} of task "
            f"{producer.get('task_id')!r} both as an ArtifactRef/Columns parameter and as a plain "
            "parameter; pass it once, or annotate every parameter that receives it the same way."
        )
    if not forms:
        return None
    if forms == {None} and deferrable:
        return DEFERRED
    form = next(iter(forms))
    if form is LAZY:
        return LAZY
    if isinstance(form, tuple):
        return ColumnsRequest(list(form))
    return None
