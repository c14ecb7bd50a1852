"""A task instance's recorded inputs: its XComArgs resolved against one run's XCom rows.

Airflow resolves a TaskFlow task's ``op_args`` / ``op_kwargs`` (and, for a mapped task, its
``expand()`` input at the task's map index) through the Task SDK, which needs a running task and
its supervisor. A replay has neither, so this module does the same resolution from the metadata DB
(through the catalog) and the artifact store (through ``ArtifactManager``, every object verified):

* ``task.output`` / ``task.output["key"]``: that XCom of the upstream task in the run; a mapped
  upstream gives the list of its map indexes' values, an upstream in the same mapped task group
  the value of the same map index;
* ``.map(f)``, ``.zip(...)``, ``.concat(...)``: applied to the resolved lists;
* ``expand(x=[...])`` / ``expand_kwargs([...])``: the element of the map index, in Airflow's order
  (the last expanded argument varies fastest).

Parameters annotated ``ArtifactRef[...]`` or ``Annotated[..., Columns(...)]`` receive what the
XCom backend would give them: a lazy handle, or only those columns.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.definitions.xcom_arg import ConcatXComArg, MapXComArg, PlainXComArg, XComArg, ZipXComArg

from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.exceptions import ArtifactLookupError, ArtifactNotFoundError
from airflow_mlops_provider.xcom import _lazy

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops_provider.artifacts.manager import ArtifactManager


class ReplayInputError(ArtifactLookupError):
    """An input of the replayed task cannot be read from the run (no XCom row, or its object is gone)."""


def _is_xcom_arg(value: Any) -> bool:
    return isinstance(value, XComArg)


class RecordedInputs:
    """Resolves the arguments of one task instance of a run.

    :param dag_id: the DAG.
    :param run_id: the run whose XCom rows hold the inputs.
    :param task: the task as the DAG file defines it (an operator or a mapped operator).
    :param func: the function that will be called (its annotations choose lazy or eager loading).
    :param map_index: the task instance's map index (``-1`` for an unmapped task).
    :param manager: reads and verifies the artifacts.
    """

    def __init__(
        self,
        dag_id: str,
        run_id: str,
        task: Any,
        func: Callable[..., Any],
        map_index: int,
        manager: ArtifactManager,
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.task = task
        self.func = func
        self.map_index = map_index
        self.manager = manager
        self._hints = _lazy.annotations_of(func)
        #: ``{parameter: [(upstream task, key, map index), ...]}``: the XComs each parameter read.
        self.sources: dict[str, list[tuple[str, str, int]]] = {}

    # -- the task's arguments ------------------------------------------------------------------

    def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """``(args, kwargs)`` for the function: what the task instance received in the run."""
        task = self.task
        if task.is_mapped:
            partial = task.partial_kwargs
            op_args, op_kwargs = list(partial.get("op_args") or ()), dict(partial.get("op_kwargs") or {})
            op_kwargs.update(self._expanded(task.op_kwargs_expand_input))
        else:
            op_args, op_kwargs = list(task.op_args or ()), dict(task.op_kwargs or {})
        names = self._positional_names(len(op_args))
        args = [self._resolve(value, name) for value, name in zip(op_args, names, strict=True)]
        kwargs = {name: self._resolve(value, name) for name, value in op_kwargs.items()}
        return args, kwargs

    def _positional_names(self, count: int) -> list[str]:
        params = [
            p.name
            for p in inspect.signature(self.func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        return [params[i] if i < len(params) else f"args[{i}]" for i in range(count)]

    def _expanded(self, expand_input: Any) -> dict[str, Any]:
        """The ``expand()`` / ``expand_kwargs()`` arguments of this map index."""
        from airflow.sdk.definitions._internal.expandinput import DictOfListsExpandInput

        if self.map_index < 0:
            raise ReplayInputError(
                f"Task {self.task.task_id!r} is mapped: pass the map index of the task instance to replay "
                "(map_index=N, or --map-index N)."
            )
        if isinstance(expand_input, DictOfListsExpandInput):
            lists = {name: self._resolve(value, name) for name, value in expand_input.value.items()}
            return {name: self._element(name, lists) for name in lists}
        mappings = expand_input.value
        mappings = self._resolve(mappings, "expand_kwargs") if _is_xcom_arg(mappings) else mappings
        mapping = self._at(mappings, self.map_index, "expand_kwargs")
        if _is_xcom_arg(mapping):
            mapping = self._resolve(mapping, "expand_kwargs")
        if not isinstance(mapping, Mapping):
            raise ReplayInputError(
                f"expand_kwargs() of task {self.task.task_id!r} gave a {type(mapping).__name__} at map index "
                f"{self.map_index}, not a dict."
            )
        return {
            name: self._resolve(value, name) if _is_xcom_arg(value) else value
            for name, value in mapping.items()
        }

    def _element(self, name: str, lists: dict[str, Any]) -> Any:
        """Airflow's ``DictOfListsExpandInput._expand_mapped_field``: the last argument varies fastest."""
        index = self.map_index
        for key in reversed(list(lists)):
            length = len(lists[key])
            if length < 1:
                raise ReplayInputError(
                    f"The expand() argument {key!r} of task {self.task.task_id!r} is empty."
                )
            if key == name:
                value = lists[key]
                return (
                    list(value.items())[index % length] if isinstance(value, dict) else value[index % length]
                )
            index //= length
        raise AssertionError(name)

    def _at(self, values: Any, index: int, what: str) -> Any:
        if not isinstance(values, Sequence) or index >= len(values):
            size = len(values) if isinstance(values, Sequence) else "no list"
            raise ReplayInputError(
                f"Task {self.task.task_id!r} has no map index {index} in run {self.run_id!r}: its {what} "
                f"input holds {size} element(s)."
            )
        return values[index]

    # -- XComArgs ------------------------------------------------------------------------------

    def _resolve(self, value: Any, parameter: str) -> Any:
        if isinstance(value, PlainXComArg):
            return self._pull(value.operator, value.key, parameter)
        if isinstance(value, MapXComArg):
            resolved = self._resolve(value.arg, parameter)
            return [_apply(value.callables, item) for item in resolved]
        if isinstance(value, ZipXComArg):
            parts = [self._resolve(arg, parameter) for arg in value.args]
            from airflow.sdk.definitions._internal.types import is_arg_set

            if is_arg_set(value.fillvalue):
                return list(itertools.zip_longest(*parts, fillvalue=value.fillvalue))
            return list(zip(*parts, strict=False))
        if isinstance(value, ConcatXComArg):
            return list(itertools.chain.from_iterable(self._resolve(arg, parameter) for arg in value.args))
        if isinstance(value, list):
            return [self._resolve(item, parameter) for item in value]
        if isinstance(value, tuple):
            return tuple(self._resolve(item, parameter) for item in value)
        if isinstance(value, dict):
            return {key: self._resolve(item, parameter) for key, item in value.items()}
        return value

    def _pull(self, upstream: Any, key: str, parameter: str) -> Any:
        """The upstream XCom as the task received it (one value, or a mapped upstream's list)."""
        from airflow_mlops_provider.catalog import records

        group = upstream.get_closest_mapped_task_group()
        same_group = group is not None and self.task.get_closest_mapped_task_group() is group
        if same_group:
            return self.load(upstream.task_id, key, self.map_index, parameter)
        if not upstream.is_mapped and group is None:
            return self.load(upstream.task_id, key, -1, parameter)
        rows = records.xcoms(self.dag_id, self.run_id, upstream.task_id, key=key)
        indexes = sorted(row.map_index for row in rows)
        return [self.load(upstream.task_id, key, index, parameter) for index in indexes]

    def load(self, task_id: str, key: str, map_index: int, parameter: str) -> Any:
        """One XCom of the run, loaded as ``parameter``'s annotation asks (refused if forged)."""
        from airflow_mlops_provider.notebook import get_xcom

        where = f"Input {parameter!r} of task {self.task.task_id!r}"
        try:
            row = get_xcom(self.dag_id, self.run_id, task_id, key, map_index, manager=self.manager).value
        except ArtifactLookupError as err:
            raise ReplayInputError(
                f"{where} is XCom {key!r} of task {task_id!r}, which run {self.run_id!r} lacks: {err} "
                "Rerun the upstream task in that run (or pick a run where it succeeded)."
            ) from err
        root = self.manager.store.root
        uris = [ref["uri"] for _, ref in codec.iter_references(row)]
        outside = [uri for uri in uris if not uri.startswith(root + "/")]
        if outside:
            raise ReplayInputError(
                f"{where} (XCom {key!r} of task {task_id!r} in run {self.run_id!r}) is stored outside the "
                f"configured artifact root {root}: {outside[0]}. A run of ml.run_local keeps its artifacts "
                "in its scratch root: replay it with [mlops] artifact_root set to that root."
            )
        self.sources.setdefault(parameter, []).append((task_id, key, map_index))
        form = _lazy.form_of(self._hints.get(parameter))
        try:
            if form is _lazy.LAZY:
                return self.manager.load_lazy(row)
            if isinstance(form, _lazy.ColumnsRequest):
                return self.manager.load_lazy(row).load(columns=form.names)
            return self.manager.load(row)
        except ArtifactNotFoundError as err:
            raise ReplayInputError(
                f"{where} (XCom {key!r} of task {task_id!r} in run {self.run_id!r}) cannot be loaded: {err} "
                "Rerun the DAG (or that upstream task) to produce it again, then replay that run."
            ) from err


def _apply(callables: Sequence[Callable[[Any], Any]], item: Any) -> Any:
    for func in callables:
        item = func(item)
    return item
