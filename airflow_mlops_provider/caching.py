"""``@ml.task(cache=...)``: skip a task whose code, params and inputs did not change.

Before the function runs, a cached task computes a key from its code hash (as the structure diff
defines it), its params, the content hashes of its artifact inputs, the values of its other inputs
and the policy's ``version``. An earlier successful try's outputs recorded under that key
(:mod:`airflow_mlops_provider.artifacts.cache_index`) are reused when every byte of them still
verifies; the task then returns handles to them, which the XCom backend copies into this try's
folder (a link to the same shared object with ``[mlops] deduplicate``), so no run depends on
another's folder and ``gc`` or purging one run never breaks another. Anything else is a miss: the
function runs and, once the try succeeded, its outputs are recorded under the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops_provider.artifacts import chunks, codec, lineage
from airflow_mlops_provider.artifacts.cache_index import CacheEntry, CacheIndex, now_iso
from airflow_mlops_provider.artifacts.manifest import Reference
from airflow_mlops_provider.artifacts.refs import ArtifactRef
from airflow_mlops_provider.exceptions import ArtifactError, UncacheableInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops_provider.artifacts.manager import ArtifactManager

__all__ = ["Cache"]

log = logging.getLogger(__name__)

Scope = Literal["dag", "global"]

KEY_FORMAT = 1
_HASH_CHUNK = 8 << 20
#: The run param (or DAG run conf key) that, set to ``false``, makes every cached task miss.
RUN_PARAM = "cache"
#: The XCom key naming a hit's staging folder (see :func:`claim`); no XCom row ever has it.
STAGING_KEY = "mlops.cache_staging"
#: Context entries that are live objects: a function taking one cannot be keyed.
_LIVE_CONTEXT = frozenset(
    {
        "ti",
        "task_instance",
        "dag_run",
        "task",
        "dag",
        "conn",
        "var",
        "macros",
        "context",
        "inlet_events",
        "outlet_events",
        "triggering_asset_events",
        "exception",
    }
)


@dataclass(frozen=True)
class Cache:
    """How ``@ml.task(cache=ml.Cache(...))`` reuses earlier outputs.

    :param version: bump it to invalidate every earlier output (e.g. after a library upgrade the
        code hash cannot see).
    :param expire: outputs computed longer ago than this are not reused; ``None`` keeps them until
        ``airflow mlops cache clear``.
    :param scope: ``"dag"`` reuses outputs of any run of the same DAG; ``"global"`` also of other
        DAGs' tasks with the same task id and key.
    """

    version: str = ""
    expire: timedelta | None = None
    scope: Scope = "dag"

    def __post_init__(self) -> None:
        if self.scope not in ("dag", "global"):
            raise ValueError(f"Cache scope must be 'dag' or 'global', not {self.scope!r}.")
        if self.expire is not None and self.expire <= timedelta(0):
            raise ValueError(f"Cache expire must be a positive duration, not {self.expire!r}.")
        if not isinstance(self.version, str):
            raise TypeError(f"Cache version must be a string, not {type(self.version).__name__}.")

    @classmethod
    def of(cls, value: bool | Cache | None) -> Cache | None:
        """The policy ``cache=`` asks for: ``True`` is the default policy, ``False``/``None`` none."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, Cache):
            return value
        raise TypeError(f"cache= takes True, False or ml.Cache(...), not {type(value).__name__}.")


class DeferredInput:
    """An artifact input of a cached task, not loaded yet: a hit never reads it, a miss loads it
    (verified, as any input) before the function runs. Its key part is its content hashes.

    :param row: the XCom row (one or more artifact references, possibly inside JSON).
    :param manager: the artifact manager that reads it.
    """

    def __init__(self, row: Any, manager: ArtifactManager) -> None:
        self.row = row
        self.manager = manager
        for _, ref_row in codec.iter_references(row):
            lineage.record_read(Reference.from_row(ref_row))

    def __repr__(self) -> str:
        uris = [r.get("uri") for _, r in codec.iter_references(self.row)]
        return f"DeferredInput({', '.join(map(str, uris))})"

    def load(self) -> Any:
        return self.manager.load(self.row)

    def content(self) -> Any:
        """The row with every reference replaced by what identifies its content."""

        def walk(data: Any) -> Any:
            if isinstance(data, list):
                return [walk(item) for item in data]
            if not isinstance(data, dict):
                return data
            if data.get(codec.TAG) == "artifact":
                return _reference_content(Reference.from_row(data))
            return {key: walk(item) for key, item in data.items()}

        return walk(self.row)


def load_deferred(values: Any) -> Any:
    """``op_args`` or ``op_kwargs`` with each :class:`DeferredInput` loaded."""
    if isinstance(values, dict):
        return {k: v.load() if isinstance(v, DeferredInput) else v for k, v in values.items()}
    return [v.load() if isinstance(v, DeferredInput) else v for v in values]


# -- keys -----------------------------------------------------------------------------------------


def _reference_content(reference: Reference) -> list[Any]:
    """What identifies an artifact's content wherever it is stored."""
    return ["artifact", reference.sha256, reference.serializer, reference.format, reference.type]


def _digest(value: Any, where: str) -> Any:
    """A canonical JSON form of an input: artifacts by content hash, other values as JSON."""
    if (reference := lineage.loaded_from(value)) is not None:
        return _reference_content(reference)
    if isinstance(value, DeferredInput):  # a plain reference keys as the loaded value would
        return value.content()
    if isinstance(value, ArtifactRef):
        if value.reference is not None:
            return _reference_content(value.reference)
        return _digest(value.load(), where)
    if isinstance(value, Mapping):
        return ["map", sorted(([repr(k), _digest(v, f"{where}[{k!r}]")] for k, v in value.items()))]
    if isinstance(value, (list, tuple)) or (
        isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))
    ):  # includes Airflow's lazy sequence of a mapped upstream's values
        return [type(value).__name__, [_digest(v, f"{where}[{i}]") for i, v in enumerate(value)]]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", hashlib.sha256(value).hexdigest()]
    try:
        return ["value", codec.encode(value)]
    except codec.NotEncodable:
        raise UncacheableInputError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which no cache key can "
            "capture: cached tasks take artifacts (values returned by other tasks through the provider's "
            "XCom backend) and JSON-like values (numbers, strings, dates, lists, dicts)."
        ) from None


def check_signature(task_id: str, python_callable: Callable[..., Any]) -> None:
    """Refuse, at parse time, a cached function whose inputs cannot be keyed.

    :raises UncacheableInputError: it takes ``**kwargs`` (Airflow passes its whole context), a live
        context object (``ti``, ``dag_run``...), or has a default value no key can capture.
    """
    what = f"Task {task_id!r} has cache=True, but"
    for name, parameter in inspect.signature(python_callable).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            raise UncacheableInputError(
                f"{what} its parameter **{name} receives Airflow's whole context (task instance, DAG "
                "run...), which no cache key can capture. Take the values it needs as named parameters "
                "(params, ds, ...), or drop cache=True."
            )
        if name in _LIVE_CONTEXT:
            raise UncacheableInputError(
                f"{what} its parameter {name!r} receives Airflow's live {name!r} object, which no cache "
                "key can capture. Pass the values it needs as parameters instead, or drop cache=True."
            )
        if parameter.default is not inspect.Parameter.empty:
            try:
                _digest(parameter.default, f"the default of parameter {name!r}")
            except UncacheableInputError as err:
                raise UncacheableInputError(f"{what} {err}") from None


def check_arguments(
    task_id: str, python_callable: Callable[..., Any], op_args: Sequence[Any], op_kwargs: Mapping[str, Any]
) -> None:
    """Refuse, at parse time, literal arguments no key can capture (a hook, a connection...).

    XComArgs and templates are resolved when the task runs; they are keyed then.
    """
    from airflow.sdk.definitions.xcom_arg import XComArg

    def check(value: Any, where: str) -> None:
        if isinstance(value, XComArg):
            return
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                check(item, f"{where}[{i}]")
            return
        if isinstance(value, dict):
            for k, item in value.items():
                check(item, f"{where}[{k!r}]")
            return
        try:
            _digest(value, where)
        except UncacheableInputError as err:
            raise UncacheableInputError(f"Task {task_id!r} has cache=True, but {err}") from None

    names = list(inspect.signature(python_callable).parameters)
    for i, value in enumerate(op_args):
        check(value, f"parameter {names[i]!r}" if i < len(names) else f"positional argument {i}")
    for name, value in op_kwargs.items():
        check(value, f"parameter {name!r}")


def cache_key(
    policy: Cache,
    *,
    code_hash: str,
    params: Mapping[str, Any],
    op_args: Sequence[Any],
    op_kwargs: Mapping[str, Any],
    context_inputs: Mapping[str, Any],
    task_id: str,
) -> str:
    """The key of one try's inputs (hex sha256).

    :param context_inputs: the context values the function takes by name (``ds``, ``params``...).
    :raises UncacheableInputError: an input is neither an artifact nor a JSON-like value.
    """
    try:
        body = {
            "format": KEY_FORMAT,
            "code": code_hash,
            "version": policy.version,
            "params": _digest({k: v for k, v in params.items() if k != RUN_PARAM}, "a run param"),
            "args": [_digest(v, f"positional argument {i}") for i, v in enumerate(op_args)],
            "kwargs": {name: _digest(v, f"parameter {name!r}") for name, v in op_kwargs.items()},
            "context": {name: _digest(v, f"parameter {name!r}") for name, v in context_inputs.items()},
        }
    except UncacheableInputError as err:
        raise UncacheableInputError(f"Task {task_id!r} has cache=True, but {err}") from None
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def disabled_for_run(context: Mapping[str, Any]) -> bool:
    """``cache=False`` was given as a run param or in the DAG run's conf."""
    params = context.get("params") or {}
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    return params.get(RUN_PARAM) is False or conf.get(RUN_PARAM) is False


# -- hits -----------------------------------------------------------------------------------------


def _problem(manager: ArtifactManager, row: Any) -> str | None:
    """Why the outputs in ``row`` cannot be reused (``None``: every byte verifies)."""
    for _, ref_row in codec.iter_references(row):
        try:
            reference = Reference.from_row(ref_row)
            digest = chunks.content_hasher(reference.chunk_bytes)
            with manager.open_raw(reference) as data:
                while chunk := data.read(_HASH_CHUNK):
                    digest.update(memoryview(chunk))
            if digest.hexdigest() != reference.sha256:
                return f"{reference.uri} no longer matches its content hash"
            for suffix, expected in (reference.details.get("sidecars") or {}).items():
                sidecar = manager.store.get_bytes(reference.sibling(suffix))
                if hashlib.sha256(sidecar).hexdigest() != expected:
                    return f"{reference.sibling(suffix)} no longer matches its sha256"
        except (ArtifactError, ValueError, OSError) as err:
            return f"{ref_row.get('uri')}: {err}"
    return None


def find_hit(
    manager: ArtifactManager, policy: Cache, *, dag_id: str, task_id: str, key: str
) -> CacheEntry | None:
    """The newest entry for ``key`` that has not expired and whose outputs all verify."""
    now = datetime.now(timezone.utc)
    for entry in CacheIndex(manager.store).candidates(task_id, key, dag_id, any_dag=policy.scope == "global"):
        if policy.expire is not None and now - entry.computed > policy.expire:
            log.info(
                "Cache: the outputs of %s for key %s expired (expire=%s).",
                entry.describe(),
                key,
                policy.expire,
            )
            continue
        problem = _problem(manager, entry.row)
        if problem is not None:
            log.warning(
                "Cache: not reusing the outputs of %s for key %s: %s. Running the task.",
                entry.describe(),
                key,
                problem,
            )
            continue
        return entry
    return None


def reuse(manager: ArtifactManager, entry: CacheEntry) -> Any:
    """The value to return for a hit: the recorded value with each artifact as a handle."""
    if entry.row is None:
        return None
    return codec.decode(entry.row, lambda ref_row: ArtifactRef(Reference.from_row(ref_row), manager))


@dataclass(frozen=True)
class Claimed:
    """A hit's outputs, copied into this try's own staging folder while the function could still run.

    :param value: what the task returns: handles to the staged copies.
    :param row: the staged row (``None`` when the outputs hold no stored artifact: nothing staged).
    """

    value: Any
    row: Any = None


def claim(manager: ArtifactManager, entry: CacheEntry, context: Mapping[str, Any]) -> Claimed:
    """Copy a hit's outputs into this try's folder before the task returns them.

    The XCom backend copies a returned handle only after ``execute`` returned, when running the
    function is no longer possible: had ``gc`` or a purge removed the source in between, the try
    would fail. Copied here, a vanished source raises while the caller can still treat the hit as a
    miss; the staged copy is what the backend copies from, and :func:`record_success` deletes it.

    :raises ArtifactNotFoundError: an output vanished since it was verified.
    """
    if entry.row is None or next(codec.iter_references(entry.row), None) is None:
        return Claimed(reuse(manager, entry))
    from airflow_mlops_provider.artifacts.manifest import Producer

    ti = context["ti"]
    producer = Producer(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index if ti.map_index is not None else -1,
        key=STAGING_KEY,
        try_number=ti.try_number,
    )
    with lineage.unreported():  # a staging copy is no output of the task
        row = manager.dump(reuse(manager, entry), producer)

    def handle(ref_row: dict[str, Any]) -> ArtifactRef[Any]:
        # The backend names the staged copy as "copied_from"; "reused_from" keeps the real source.
        reference = Reference.from_row(ref_row)
        details = {**reference.details, "reused_from": reference.details.get("copied_from")}
        return ArtifactRef(dataclasses.replace(reference, details=details), manager)

    return Claimed(codec.decode(row, handle), row)


# -- recording ------------------------------------------------------------------------------------


@dataclass
class _Pending:
    manager: ArtifactManager
    entry: CacheEntry
    returned_none: bool = False
    staged: Any = None


def _drop_staging(pending: _Pending | None) -> None:
    """Delete a hit's staging copy (best effort: ``gc`` collects it as an orphan otherwise)."""
    if pending is None or pending.staged is None:
        return
    try:
        pending.manager.purge(pending.staged)
    except ArtifactError as err:
        log.warning("Cache: could not delete the staging copy of %s: %s", pending.entry.describe(), err)


_pending: _Pending | None = None


def expect_outputs(
    manager: ArtifactManager, entry: CacheEntry, *, returned_none: bool, staged: Any = None
) -> None:
    """Record ``entry`` (with the ``return_value`` row the task pushes) once the try succeeded.

    :param staged: the row of a hit's staging copy (:func:`claim`), deleted once the push is done.
    """
    global _pending
    _drop_staging(_pending)
    _pending = _Pending(manager, entry, returned_none, staged)


def record_success() -> None:
    """Called when a task instance succeeded in this process: write its pending cache entry.

    Never fails the task: a missing entry only means the next run misses.
    """
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return
    _drop_staging(pending)
    row = lineage.return_row()
    if row is None and not pending.returned_none:
        log.warning(
            "Cache: not recording the outputs of %s: its return value was not stored by the provider's "
            "XCom backend ([core] xcom_backend), so there is nothing to reuse.",
            pending.entry.describe(),
        )
        return
    entry = CacheEntry(**{**pending.entry.__dict__, "row": row})
    try:
        url = CacheIndex(pending.manager.store).put(entry)
    except ArtifactError as err:
        log.warning("Cache: could not record the outputs of %s: %s", entry.describe(), err)
        return
    log.info("Cache: recorded the outputs of %s under key %s (%s).", entry.describe(), entry.key, url)


def forget_pending() -> None:
    """The try failed: record nothing, and drop a hit's staging copy."""
    global _pending
    pending, _pending = _pending, None
    _drop_staging(pending)


def new_entry(
    key: str, context: Mapping[str, Any], *, code_hash: str, policy: Cache, computed_at: str | None
) -> CacheEntry:
    ti = context["ti"]
    return CacheEntry(
        key=key,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index if ti.map_index is not None else -1,
        try_number=ti.try_number,
        code_hash=code_hash,
        version=policy.version,
        computed_at=computed_at or now_iso(),
    )
