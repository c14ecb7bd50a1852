"""``airflow mlops artifacts list | show | get``."""

from __future__ import annotations

import json
import os
import posixpath
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.artifacts import chunks
from airflow_mlops_provider.cli._common import (
    UsageError,
    command,
    describe_producer,
    human_bytes,
    manifests_for,
    print_json,
    render_table,
)
from airflow_mlops_provider.exceptions import ArtifactError, ArtifactIntegrityError, ArtifactNotFoundError

if TYPE_CHECKING:
    import argparse

    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Manifest, Reference
    from airflow_mlops_provider.notebook import XComEntry

CHUNK_BYTES = 8 * 1024 * 1024
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_INLINE_CHARS = 4000


# -- list ----------------------------------------------------------------------------------------


@command
def artifacts_list(args: argparse.Namespace) -> None:
    """``airflow mlops artifacts list DAG_ID [--run RUN_ID] [--task TASK_ID]``."""
    from airflow_mlops_provider.notebook import list_artifacts

    entries = list_artifacts(
        args.dag_id, args.run, args.task, key=args.key, include_records=args.include_records
    )
    if args.output == "json":
        print_json(entries)
        return
    if not entries:
        print(f"No XComs found for DAG {args.dag_id!r} with these filters.")
        return
    rows = [
        [
            e["run_id"],
            e["task_id"],
            "-" if e["map_index"] < 0 else e["map_index"],
            e["key"] + e.get("path", ""),
            e.get("status"),
            e.get("format"),
            human_bytes(e.get("size_bytes")),
            e.get("summary"),
            e.get("uri") or "(inline in the XCom row)",
        ]
        for e in entries
    ]
    headers = ["RUN_ID", "TASK_ID", "MAP", "XCOM", "STATUS", "FORMAT", "SIZE", "SUMMARY", "URI"]
    print(render_table(headers, rows, max_width=2000))
    stored = [e for e in entries if not e["inline"]]
    total = sum(int(e.get("size_bytes") or 0) for e in stored)
    inline = len(entries) - len(stored)
    print(f"\n{len(stored)} stored artifact(s), {human_bytes(total)}; {inline} inline value(s).")


# -- show ----------------------------------------------------------------------------------------


def _manifest_lines(manifest: Manifest) -> list[str]:
    ref = manifest.reference
    producer = {
        "dag_id": ref.producer.dag_id,
        "run_id": ref.producer.run_id,
        "task_id": ref.producer.task_id,
        "map_index": ref.producer.map_index,
        "key": ref.producer.key,
        "try_number": ref.producer.try_number,
    }
    lines = [
        f"Artifact:   {ref.uri}",
        *([f"Stored as:  {ref.blob} (deduplicated)"] if ref.blob else []),
        f"Summary:    {ref.summary}",
        f"Type:       {ref.type}",
        f"Format:     {ref.format} v{ref.format_version} "
        f"(serializer {ref.serializer}, {manifest.media_type})",
        f"Size:       {human_bytes(ref.size_bytes)} ({ref.size_bytes:,} bytes)",
        f"Hash:       {ref.hash_description}",
        f"Producer:   {describe_producer(producer)}",
        f"Created:    {manifest.created_at}",
        f"Versions:   {', '.join(f'{k} {v}' for k, v in manifest.versions.items())}",
    ]
    if ref.signature:
        lines.append("Signature:  HMAC-SHA256 (signed pickle)")
    if ref.details:
        lines.append(f"Details:    {json.dumps(ref.details, default=str)}")
    execution = manifest.execution
    if execution:
        facts = [f"code sha256 {execution.get('code_hash')}"]
        if "duration_seconds" in execution:
            facts.append(f"{execution['duration_seconds']} s")
        if "peak_rss_mb" in execution:
            facts.append(f"peak {execution['peak_rss_mb']} MiB")
        lines.append(f"Execution:  {execution.get('operator', 'task')}, {', '.join(facts)}")
        if execution.get("params"):
            lines.append(f"Params:     {json.dumps(execution['params'], sort_keys=True, default=str)}")
        for index, item in enumerate(execution.get("inputs") or []):
            task = (item.get("producer") or {}).get("task_id")
            label = "Inputs:" if index == 0 else ""
            lines.append(f"{label:<11} {item.get('uri')} (task {task!r})")
    return lines


def _inline_text(value: Any) -> tuple[str, bool]:
    text = json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return (text, False) if len(text) <= _INLINE_CHARS else (text[:_INLINE_CHARS], True)


@command
def artifacts_show(args: argparse.Namespace) -> None:
    """``airflow mlops artifacts show (URI | DAG_ID RUN_ID TASK_ID)``: manifest and preview."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.cli.preview import render_preview

    manager = ArtifactManager.configured()
    manifests, entry = manifests_for(args, manager)
    if entry is not None and not manifests:
        if args.output == "json":
            print_json({"xcom": _xcom_dict(entry), "inline": True, "value": entry.value})
            return
        text, truncated = _inline_text(entry.value)
        print(f"The XCom of {entry.describe()} is stored inline in the XCom row (no artifact):")
        print(text + ("\n... (truncated)" if truncated else ""))
        return
    if args.output == "json":
        results = [{"manifest": json.loads(m.to_json()), "preview": _preview(manager, m)} for m in manifests]
        out: Any = results[0] if len(results) == 1 and entry is None else results
        if entry is not None:
            out = {"xcom": _xcom_dict(entry), "artifacts": results}
        print_json(out)
        return
    if entry is not None and len(manifests) > 1:
        print(f"The XCom of {entry.describe()} holds {len(manifests)} artifacts.\n")
    for index, manifest in enumerate(manifests):
        if index:
            print()
        print("\n".join(_manifest_lines(manifest)))
        sys.stdout.flush()
        print("\n".join(render_preview(_preview(manager, manifest), manifest.reference.serializer)))


def _preview(manager: ArtifactManager, manifest: Manifest) -> dict[str, Any] | None:
    """The artifact's preview (the one the ML view shows), once its object is found with the recorded
    size: a preview is never shown for an artifact that is gone or truncated."""
    manager.stored(manifest.reference).check()
    return manager.preview(manifest.reference)


def _xcom_dict(entry: XComEntry) -> dict[str, Any]:
    return {
        "dag_id": entry.dag_id,
        "run_id": entry.run_id,
        "task_id": entry.task_id,
        "map_index": entry.map_index,
        "key": entry.key,
    }


# -- get -----------------------------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        filled = int(30 * done / self.total)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * done / self.total:5.1f}% "
            f"{human_bytes(done)} / {human_bytes(self.total)}"
        )
        sys.stderr.flush()

    def close(self, done: int) -> None:
        if self.enabled:
            self.update(done, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def download(manager: ArtifactManager, reference: Reference, target: Path, progress: bool) -> None:
    """Stream the object to ``target`` in chunks, verifying size and content hash; delete it on failure."""
    sha = chunks.content_hasher(reference.chunk_bytes)
    done = 0
    bar = _Progress(reference.size_bytes, progress)
    try:
        with manager.store.open_read(reference.data_uri) as source, open(target, "wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                sha.update(memoryview(chunk))
                out.write(chunk)
                done += len(chunk)
                bar.update(done)
        bar.close(done)
        if done != reference.size_bytes or sha.hexdigest() != reference.sha256:
            raise ArtifactIntegrityError(
                f"The artifact {reference.uri} written by {reference.producer.describe()} does not match the "
                f"hash recorded when it was written (expected {reference.size_bytes} bytes with "
                f"{reference.hash_description}, got {done} bytes hashing to {sha.hexdigest()}). Nothing was "
                "saved."
            )
    except BaseException as err:
        target.unlink(missing_ok=True)
        if isinstance(err, FileNotFoundError) and not isinstance(err, ArtifactError):
            raise ArtifactNotFoundError(
                f"The artifact {reference.uri} written by {reference.producer.describe()} is missing from "
                "the store."
            ) from err
        if isinstance(err, ArtifactNotFoundError):
            raise ArtifactNotFoundError(
                f"The artifact {reference.uri} ({reference.summary}) written by "
                f"{reference.producer.describe()} is missing from the store; clear and re-run the producing "
                "task to write it again."
            ) from err
        raise


def file_in_folder(folder: Path, reference: Reference, xcom: str | None = None) -> Path:
    """``folder/<the object's file name>``, refused unless it stays inside ``folder``.

    The name comes from the store (an XCom row or a manifest, which anyone who can write there may
    have forged): ``.``, ``..``, an empty name or a symlink leading out would write elsewhere.
    """
    name = posixpath.basename(reference.uri)
    base = folder.resolve()
    problem = None
    if name in ("", ".", "..") or not name.isprintable() or "\\" in name:
        problem = f"its file name {name!r} is not a plain file name"
    elif (base / name).resolve().parent != base:
        problem = f"{folder / name} leads to {(base / name).resolve()}, outside {folder}"
    if problem is None:
        return folder / name
    where = xcom or reference.producer.describe()
    raise ArtifactError(
        f"Not saving the artifact {reference.uri!r} of the XCom of {where} into {folder}: {problem}. "
        "The provider never writes such a URI: the XCom row or manifest was altered. Nothing was "
        "saved; check the row in Airflow's metadata DB, or pass a file path to -o to choose the name."
    )


@command
def artifacts_get(args: argparse.Namespace) -> None:
    """``airflow mlops artifacts get (URI | DAG_ID RUN_ID TASK_ID) -o PATH``."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.cli._common import resolve_target
    from airflow_mlops_provider.notebook import read_manifest

    manager = ArtifactManager.configured()
    uri, entry = resolve_target(args)
    if uri is not None:
        references = [read_manifest(uri, manager=manager).reference]
    else:
        assert entry is not None
        references = entry.references  # the XCom row is the authoritative record of size and hash
        if not references:
            raise ArtifactError(
                f"The XCom of {entry.describe()} is stored inline in the XCom row; there is no object to "
                "download. `airflow mlops artifacts show` prints it."
            )
        if len(references) > 1:
            raise UsageError(
                f"The XCom of {entry.describe()} holds {len(references)} artifacts; pass one of their URIs: "
                + " ".join(ref.uri for ref in references)
            )
    reference = references[0]
    dest = Path(args.output_path).expanduser()
    if dest.is_dir():
        dest = file_in_folder(dest, reference, entry.describe() if entry else None)
    if dest.is_dir():
        raise UsageError(f"{dest} is a folder; pass another PATH to -o.")
    if dest.exists() and not args.force:
        raise UsageError(f"{dest} already exists; pass --force to overwrite it.")
    if not dest.parent.is_dir():
        raise UsageError(f"The folder {dest.parent} does not exist.")
    partial = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    progress = args.progress or (reference.size_bytes >= PROGRESS_MIN_BYTES and sys.stderr.isatty())
    download(manager, reference, partial, progress)
    try:
        os.replace(partial, dest)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ArtifactError(f"Could not save {reference.uri} to {dest}: {err}. Nothing was saved.") from err
    size = f"{reference.size_bytes:,} bytes"
    print(f"Saved {reference.uri} to {dest} ({size}, {reference.hash_description} verified).")
