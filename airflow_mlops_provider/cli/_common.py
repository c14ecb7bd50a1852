"""Shared pieces of the ``airflow mlops`` commands: error handling, target resolution, formatting."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ArtifactStoreError,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Sequence

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Manifest, Reference
    from airflow_mlops_provider.notebook import XComEntry

# Exit codes of expected errors (argparse itself exits with 2 on malformed command lines).
EXIT_ERROR = 1  # unknown DAG/run/task/key, missing object, URI outside the root, pickle refused
EXIT_USAGE = 2  # arguments that parse but make no sense together
EXIT_STORE = 3  # the artifact store (or the metadata DB) cannot be reached
EXIT_INTEGRITY = 4  # bytes differ from the recorded size / SHA-256


class UsageError(Exception):
    """Arguments that argparse accepted but that cannot be used together."""


def one_line(text: str, limit: int = 2000) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def fail(message: str, code: int = EXIT_ERROR) -> None:
    """Print ``Error: message`` on one line of stderr and exit with ``code``."""
    sys.stdout.flush()
    print(f"Error: {one_line(message)}", file=sys.stderr)
    sys.exit(code)


def command(func: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """Wrap a CLI command: expected errors become one line on stderr and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> None:
        from airflow.utils.providers_configuration_loader import providers_configuration_loaded
        from sqlalchemy.exc import OperationalError

        with logs_to_stderr():
            try:
                providers_configuration_loaded(func)(args)
            except UsageError as err:
                fail(str(err), EXIT_USAGE)
            except ArtifactStoreError as err:
                fail(str(err), EXIT_STORE)
            except ArtifactIntegrityError as err:
                fail(str(err), EXIT_INTEGRITY)
            except ArtifactError as err:
                fail(str(err), EXIT_ERROR)
            except OperationalError as err:
                fail(f"Cannot query Airflow's metadata DB: {getattr(err, 'orig', None) or err}", EXIT_STORE)
            except BrokenPipeError:  # `airflow mlops ... | head`: stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(0)
            except KeyboardInterrupt:
                fail("Interrupted.", 130)

    return wrapper


@contextlib.contextmanager
def logs_to_stderr() -> Iterator[None]:
    """While a command runs, everything logged goes to stderr and stdout carries its output only,
    so ``--output json`` is pure JSON (``| jq``).

    Airflow's console log handler and its structlog loggers hold the ``sys.stdout`` stream object
    itself (the amazon provider logs at INFO when a hook reads its connection), so re-pointing
    handlers is not enough: file descriptor 1 is pointed at stderr for the command's duration,
    which moves every holder of that object, and ``print`` gets a new stream on the real stdout.
    Loggers created meanwhile are given the old object. Skipped when stdout is not file
    descriptor 1 (captured in-process by tests).
    """
    try:
        from airflow.cli.utils import redirect_stdout_log_handlers_to_stderr

        redirect_stdout_log_handlers_to_stderr()
    except ImportError:  # older Airflow
        pass
    logs = sys.stdout
    try:
        moved = logs.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        moved = False
    if not moved:
        yield
        return
    logs.flush()
    saved = os.dup(1)
    output = open(saved, "w", encoding=logs.encoding, errors=logs.errors)  # noqa: SIM115
    os.dup2(2, 1)
    factory = _structlog_factory()
    if factory is not None:
        factory.io = logs  # a structlog logger made now would otherwise capture ``output``
    sys.stdout = output
    try:
        yield
    finally:
        sys.stdout = logs
        if factory is not None:
            factory.io = None
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (``| head``)
            output.flush()
        with contextlib.suppress(OSError, ValueError):
            logs.flush()
        os.dup2(saved, 1)
        with contextlib.suppress(OSError, ValueError):
            output.close()


def _structlog_factory() -> Any:
    """Airflow's structlog logger factory when it writes to the default stream (``io`` None)."""
    structlog = sys.modules.get("structlog")
    factory = structlog.get_config().get("logger_factory") if structlog else None
    return factory if factory is not None and getattr(factory, "io", False) is None else None


# -- targets: URI | DAG_ID RUN_ID TASK_ID --------------------------------------------------------


def resolve_target(args: argparse.Namespace) -> tuple[str | None, XComEntry | None]:
    """``(uri, None)`` for ``URI``, ``(None, entry)`` for ``DAG_ID RUN_ID TASK_ID``."""
    from airflow_mlops_provider.notebook import get_xcom

    target: Sequence[str] = args.target
    if len(target) == 1:
        uri = target[0]
        if "://" not in uri:
            raise UsageError(
                f"Expected an artifact URI (e.g. s3://bucket/prefix/dag_id=.../0.arrow) or DAG_ID RUN_ID "
                f"TASK_ID; got {uri!r}."
            )
        return uri, None
    if len(target) == 3:
        dag_id, run_id, task_id = target
        return None, get_xcom(dag_id, run_id, task_id, args.key, args.map_index)
    raise UsageError(
        f"Expected URI or DAG_ID RUN_ID TASK_ID; got {len(target)} arguments: {' '.join(target)}"
    )


def manifests_for(
    args: argparse.Namespace, manager: ArtifactManager
) -> tuple[list[Manifest], XComEntry | None]:
    """The manifests of the target's stored artifacts (none for an inline XCom value)."""
    from airflow_mlops_provider.notebook import read_manifest

    uri, entry = resolve_target(args)
    if uri is not None:
        return [read_manifest(uri, manager=manager)], None
    assert entry is not None
    return [_manifest_or_reference(ref, manager) for ref in entry.references], entry


#: ``created_at`` of a manifest rebuilt from an XCom row's reference (its own manifest is gone).
MANIFEST_MISSING = "unknown (manifest missing: fields from the XCom row)"


def _manifest_or_reference(reference: Reference, manager: ArtifactManager) -> Manifest:
    """The artifact's manifest; when only the manifest was deleted and the data object is intact
    (checked: found with the recorded size), one rebuilt from the row's reference, as
    ``artifacts list`` shows it."""
    from airflow_mlops_provider.artifacts.manifest import Manifest
    from airflow_mlops_provider.notebook import read_manifest

    try:
        return read_manifest(reference.uri, manager=manager)
    except ArtifactNotFoundError:
        manager.stored(reference).check()  # the data object too: raises naming it
        return Manifest("", reference, "application/octet-stream", MANIFEST_MISSING, {})


# -- formatting --------------------------------------------------------------------------------


def human_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_duration(text: str, what: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``; a bare number is days."""
    match = _DURATION.match(text or "")
    if not match:
        raise UsageError(f"{what}: cannot read {text!r} as a duration; use e.g. 30d, 12h, 90m, 45s or 2w.")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    """A plain-text table (no wrapping, no colours), so output can be grepped and piped."""

    def cell(value: Any) -> str:
        text = "" if value is None else " ".join(str(value).split())
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body)
    return "\n".join(lines)


def describe_producer(producer: dict[str, Any]) -> str:
    where = (
        f"dag {producer.get('dag_id')!r}, run {producer.get('run_id')!r}, task {producer.get('task_id')!r}"
    )
    map_index = producer.get("map_index")
    if isinstance(map_index, int) and map_index >= 0:
        where += f", map index {map_index}"
    where += f", key {producer.get('key', 'return_value')!r}"
    if producer.get("try_number"):
        where += f", try {producer['try_number']}"
    return where
