"""``airflow mlops gc``: delete stored artifacts no XCom row refers to any more.

Airflow deletes XCom rows without calling the backend's ``purge`` when they are cleared from the UI
or the REST API, by ``airflow db clean`` and by cascading deletes of runs: their objects stay in
the store, orphaned. This command finds and removes them.

Safety rules (every one of them holds in ``--dry-run`` too, which deletes nothing):

* The unit is the **write folder** (``dag_id=../run_id=../task_id=../map_index=../key=../try=<n>-<id>``):
  every object of one XCom value lives in one folder. A folder is *referenced* if any XCom row of
  the metadata DB refers to an object inside it. Rows are matched on the layout below the root
  (``dag_id=...`` to ``try=...``, which includes a random write id), so a root spelled differently on
  the workers (another mount point, a trailing slash) still protects its folders.
* Anything that does not look like a write folder is never touched: ``<root>/_snapshots/``, other
  paths, and ``try=`` folders holding files other than ``<n>.<ext>`` objects and manifests.
* Folders whose newest object is younger than the grace period (``--grace``, 1 hour by default) are
  never deleted: a running task uploads its objects before Airflow writes the XCom row.
* Referenced folders are never deleted, except when ``--older-than`` is given **explicitly** together
  with ``--include-referenced``: then referenced folders older than that age are deleted too (the
  XCom rows stay and reading them raises ``ArtifactNotFoundError`` naming the URI and the producer),
  except those of runs that are not finished (queued or running). ``[mlops] retention_days`` alone
  only reports such folders.
* The XCom rows are read before the store is listed, and if the store holds write folders but none
  of them is referenced by any XCom row, nothing is deleted without ``--force``: that is what a CLI
  pointed at the wrong metadata DB would see.
* Shared objects of ``[mlops] deduplicate`` (``<root>/_cas/sha256/..``) are deleted only when no
  write folder that survives this collection links to them (``<n>.sha256-<hex>``) and they are
  older than the grace period, checked again just before the delete: writers renew a shared
  object's modification time when they link to it, and check it still exists after writing their
  manifest (a write that loses the race fails and is retried by Airflow).
* Unfinished multipart uploads (S3) under the root older than ``--stale-uploads`` (24 hours by
  default) are aborted: a worker killed mid-upload leaves its parts stored, invisible and billed.
  Younger ones may belong to running tasks and are only counted.
* Cache entries (``<root>/_cache/``) whose outputs are gone (after this collection, or before it:
  a purge, ``--include-referenced``) are dropped, and so are damaged ones; the rest are kept. A
  hit verifies every byte anyway, so a dropped entry only saves later runs a lookup that would miss.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.catalog import gc as catalog_gc
from airflow_mlops_provider.exceptions import ArtifactError, ArtifactNotFoundError, ArtifactStoreError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from sqlalchemy.orm import Session

    from airflow_mlops_provider.artifacts.store import ArtifactStore, PendingUpload

DEFAULT_GRACE = timedelta(hours=1)
DEFAULT_STALE_UPLOADS = timedelta(hours=24)
FINISHED_RUN_STATES = frozenset({"success", "failed"})


class GcRefused(ArtifactError):
    """Deleting would be unsafe (e.g. no write folder is referenced: wrong metadata DB?)."""


@dataclass
class GcFolder:
    """One write folder of the store."""

    uri: str
    folder: layout.WriteFolder
    size_bytes: int = 0
    objects: int = 0
    newest: datetime | None = None
    referenced: bool = False
    run_states: set[str] = field(default_factory=set)
    reason: str = ""
    unknown_age: bool = False

    def age(self, now: datetime) -> timedelta | None:
        return None if self.newest is None or self.unknown_age else now - self.newest

    def to_dict(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "uri": self.uri,
            "size_bytes": self.size_bytes,
            "objects": self.objects,
            "newest_object_at": self.newest.isoformat() if self.newest else None,
            "age_seconds": None if age is None else int(age.total_seconds()),
            "referenced": self.referenced,
            "reason": self.reason,
        }


@dataclass
class GcShared:
    """One shared, content-addressed object (``[mlops] deduplicate``)."""

    uri: str
    sha256: str
    size_bytes: int
    modified: datetime | None
    reason: str = ""

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "size_bytes": self.size_bytes,
            "age_seconds": None if self.modified is None else int((now - self.modified).total_seconds()),
            "reason": self.reason,
        }


@dataclass
class GcUpload:
    """An unfinished multipart upload under the root (S3)."""

    uri: str
    upload_id: str
    initiated: datetime | None
    size_bytes: int | None = None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "upload_id": self.upload_id,
            "initiated_at": self.initiated.isoformat() if self.initiated else None,
            "age_seconds": None if self.initiated is None else int((now - self.initiated).total_seconds()),
            "bytes": self.size_bytes,
        }


@dataclass
class GcReport:
    """What :func:`collect_garbage` found and did (or would do, with ``dry_run``)."""

    root: str
    dry_run: bool
    grace: timedelta
    older_than: timedelta | None
    include_referenced: bool
    now: datetime
    xcom_rows: int = 0
    referencing_rows: int = 0
    deleted: list[GcFolder] = field(default_factory=list)
    kept_referenced: list[GcFolder] = field(default_factory=list)
    kept_expired: list[GcFolder] = field(default_factory=list)
    kept_young: list[GcFolder] = field(default_factory=list)
    skipped_paths: list[str] = field(default_factory=list)
    skipped_snapshots: int = 0
    skipped_cache_entries: int = 0
    skipped_scratch: int = 0
    dropped_cache_entries: list[str] = field(default_factory=list)
    kept_cache_entries: int = 0
    deleted_shared: list[GcShared] = field(default_factory=list)
    kept_shared: list[GcShared] = field(default_factory=list)
    stale_uploads: timedelta = DEFAULT_STALE_UPLOADS
    aborted_uploads: list[GcUpload] = field(default_factory=list)
    recent_uploads: int = 0
    uploads_error: str | None = None

    @property
    def upload_bytes(self) -> int:
        return sum(u.size_bytes or 0 for u in self.aborted_uploads)

    @property
    def freed_bytes(self) -> int:
        return sum(f.size_bytes for f in self.deleted) + sum(o.size_bytes for o in self.deleted_shared)

    def to_dict(self) -> dict[str, Any]:
        def group(items: list[GcFolder]) -> dict[str, Any]:
            return {
                "folders": len(items),
                "bytes": sum(f.size_bytes for f in items),
                "items": [f.to_dict(self.now) for f in items],
            }

        return {
            "root": self.root,
            "dry_run": self.dry_run,
            "grace_seconds": int(self.grace.total_seconds()),
            "older_than_seconds": None if self.older_than is None else int(self.older_than.total_seconds()),
            "include_referenced": self.include_referenced,
            "xcom_rows": self.xcom_rows,
            "referencing_rows": self.referencing_rows,
            "deleted" if not self.dry_run else "would_delete": group(self.deleted),
            "freed_bytes": 0 if self.dry_run else self.freed_bytes,
            "kept_referenced": group(self.kept_referenced),
            "kept_expired_referenced": group(self.kept_expired),
            "kept_young": group(self.kept_young),
            "skipped_paths": self.skipped_paths,
            "skipped_snapshot_objects": self.skipped_snapshots,
            "skipped_cache_entries": self.skipped_cache_entries,
            "skipped_scratch_objects": self.skipped_scratch,
            "cache_entries": {
                "dropped" if not self.dry_run else "would_drop": len(self.dropped_cache_entries),
                "kept": self.kept_cache_entries,
                "items": self.dropped_cache_entries,
            },
            "shared_objects": {
                "deleted" if not self.dry_run else "would_delete": {
                    "objects": len(self.deleted_shared),
                    "bytes": sum(o.size_bytes for o in self.deleted_shared),
                    "items": [o.to_dict(self.now) for o in self.deleted_shared],
                },
                "kept": {
                    "objects": len(self.kept_shared),
                    "bytes": sum(o.size_bytes for o in self.kept_shared),
                },
            },
            "unfinished_uploads": {
                "older_than_seconds": int(self.stale_uploads.total_seconds()),
                "aborted" if not self.dry_run else "would_abort": {
                    "uploads": len(self.aborted_uploads),
                    "bytes": self.upload_bytes,
                    "items": [u.to_dict(self.now) for u in self.aborted_uploads],
                },
                "kept_recent": {"uploads": self.recent_uploads},
                "error": self.uploads_error,
            },
        }


@dataclass
class _Listing:
    """The store, sorted into what gc may collect and what it must leave alone."""

    folders: dict[layout.WriteFolder, GcFolder] = field(default_factory=dict)
    links: dict[layout.WriteFolder, set[str]] = field(default_factory=dict)
    shared: list[GcShared] = field(default_factory=list)
    cache_entries: list[str] = field(default_factory=list)


def _list(store: ArtifactStore, report: GcReport) -> _Listing:
    listing = _Listing()
    foreign: dict[layout.WriteFolder, list[str]] = defaultdict(list)  # folders holding unknown paths
    seen: dict[layout.WriteFolder, list[str]] = defaultdict(list)
    for item in store.walk():
        path = layout.parse(item.relative)
        if path.area is layout.Area.SNAPSHOTS:
            report.skipped_snapshots += 1
        elif path.area is layout.Area.CACHE:  # small; checked once the folders are collected
            report.skipped_cache_entries += 1
            if isinstance(path, layout.CacheEntryPath):
                listing.cache_entries.append(store.url(item.relative))
        elif path.area is layout.Area.SCRATCH:  # saved replays: the user's, deleted by hand
            report.skipped_scratch += 1
        elif isinstance(path, layout.SharedObject):
            listing.shared.append(GcShared(store.url(item.relative), path.sha256, item.size, item.modified))
        elif isinstance(path, layout.FolderObject):
            seen[path.folder].append(item.relative)
            if path.linked_sha256:
                listing.links.setdefault(path.folder, set()).add(path.linked_sha256)
            info = listing.folders.get(path.folder)
            if info is None:
                info = listing.folders[path.folder] = GcFolder(store.url(path.folder.relative), path.folder)
            info.size_bytes += item.size
            info.objects += 1
            if item.modified is None:
                info.unknown_age = True  # cannot prove it is old: treat it as young
            elif info.newest is None or item.modified > info.newest:
                info.newest = item.modified
        elif isinstance(path, layout.Unknown) and path.folder is not None:
            foreign[path.folder].append(item.relative)  # not what the provider writes: leave the folder
        else:
            report.skipped_paths.append(item.relative)
    for folder in sorted(foreign, key=lambda f: f.relative):
        listing.folders.pop(folder, None)  # never deleted, so its links still protect shared objects
        report.skipped_paths.extend(sorted(seen[folder] + foreign[folder]))
    return listing


def collect_garbage(
    store: ArtifactStore | None = None,
    *,
    older_than: timedelta | None = None,
    include_referenced: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    force: bool = False,
    session: Session | None = None,
    now: datetime | None = None,
    stale_uploads: timedelta = DEFAULT_STALE_UPLOADS,
) -> GcReport:
    """Delete orphaned write folders (and, on request, expired referenced ones) of the artifact store.

    :param store: the store to collect (the configured one by default).
    :param older_than: the retention age: referenced folders older than this are reported and, with
        ``include_referenced``, deleted. Orphans are deleted once older than ``grace`` regardless.
    :param include_referenced: also delete referenced folders older than ``older_than`` (required)
        whose runs are finished.
    :param grace: folders whose newest object is younger than this are never deleted.
    :param dry_run: report what would be deleted; delete nothing.
    :param force: delete even when no write folder at all is referenced by an XCom row.
    :param stale_uploads: abort unfinished multipart uploads (S3) initiated longer ago than this.
    :raises GcRefused: nothing referenced (see ``force``).
    :raises ArtifactStoreError: the store cannot be listed or a delete failed.
    """
    if include_referenced and older_than is None:
        raise ValueError("include_referenced needs an explicit older_than.")
    store = store or catalog_gc.configured_store()
    now = now or datetime.now(timezone.utc)
    report = GcReport(store.root, dry_run, grace, older_than, include_referenced, now)
    report.stale_uploads = stale_uploads

    # The DB first: a folder written after this scan is younger than the grace period.
    live = catalog_gc.live_folders(session)
    report.xcom_rows, report.referencing_rows = live.rows, live.referencing
    listing = _list(store, report)

    to_delete: list[GcFolder] = []
    for info in sorted(listing.folders.values(), key=lambda f: f.folder.relative):
        states = live.states.get(info.folder)
        info.referenced = states is not None
        info.run_states = set(states or ())
        age = info.age(now)
        if age is None or age < grace:
            info.reason = f"younger than the grace period ({grace})"
            report.kept_young.append(info)
        elif not info.referenced:
            info.reason = "orphaned: no XCom row refers to it"
            to_delete.append(info)
        elif older_than is not None and age >= older_than:
            unfinished = info.run_states - FINISHED_RUN_STATES
            if include_referenced and not unfinished:
                info.reason = f"referenced, older than {older_than} (--include-referenced)"
                to_delete.append(info)
            else:
                info.reason = f"referenced, older than {older_than}" + (
                    f"; run not finished ({', '.join(sorted(unfinished))})" if unfinished else ""
                )
                report.kept_expired.append(info)
        else:
            info.reason = "referenced by an XCom row"
            report.kept_referenced.append(info)

    referenced_any = any(f.referenced for f in listing.folders.values())
    if to_delete and not referenced_any and not force and not dry_run:
        raise GcRefused(
            f"Refusing to delete {len(to_delete)} folder(s): none of the {len(listing.folders)} write "
            f"folders under {store.root} is referenced by an XCom row of this metadata DB "
            f"({report.xcom_rows} rows scanned). Check that this machine uses the workers' metadata DB "
            "([database] sql_alchemy_conn) and artifact root; if every XCom row was really deleted, re-run "
            "with --force."
        )
    for info in to_delete:
        if not dry_run:
            store.delete_dir(info.uri, prune_parents=True)
        report.deleted.append(info)
    deleted = {info.folder for info in to_delete}
    linked = {sha for folder, hashes in listing.links.items() if folder not in deleted for sha in hashes}
    _collect_shared(store, report, listing.shared, linked)
    _drop_stale_cache_entries(store, report, listing.cache_entries, deleted)
    _abort_stale_uploads(store, report)
    return report


def _cache_entry_problem(
    store: ArtifactStore, url: str, deleted: set[layout.WriteFolder], deleted_shared: set[str]
) -> str | None:
    """Why the cache entry at ``url`` can never hit again (``None``: its outputs are all there)."""
    from airflow_mlops_provider.artifacts import codec
    from airflow_mlops_provider.artifacts.cache_index import CacheEntry
    from airflow_mlops_provider.artifacts.manifest import Reference

    try:
        entry = CacheEntry.from_json(store.get_bytes(url))
    except ArtifactNotFoundError:
        return None  # rewritten or cleared meanwhile: nothing to drop
    except (ValueError, TypeError, KeyError) as err:
        return f"damaged ({err})"
    for _, ref_row in codec.iter_references(entry.row):
        try:
            reference = Reference.from_row(ref_row)
        except (ValueError, TypeError, KeyError) as err:
            return f"damaged ({err})"
        if layout.write_folder_of(reference.uri) in deleted or reference.data_uri in deleted_shared:
            return f"{reference.uri} is collected now"
        if not store.exists(reference.data_uri):
            return f"{reference.data_uri} is gone"
    return None


def _drop_stale_cache_entries(
    store: ArtifactStore, report: GcReport, entries: list[str], deleted: set[layout.WriteFolder]
) -> None:
    """Drop the cache entries whose outputs are gone: they could only ever miss."""
    deleted_shared = {item.uri for item in report.deleted_shared}
    for url in sorted(entries):
        if _cache_entry_problem(store, url, deleted, deleted_shared) is None:
            report.kept_cache_entries += 1
            continue
        if not report.dry_run:
            with contextlib.suppress(ArtifactNotFoundError):
                store.delete_dir(url, prune_parents=True)
        report.dropped_cache_entries.append(url)


def _abort_stale_uploads(store: ArtifactStore, report: GcReport) -> None:
    """Abort the unfinished multipart uploads older than ``report.stale_uploads`` (S3 only).

    A store that refuses the listing (no ``s3:ListBucketMultipartUploads`` permission) is reported,
    not fatal: the bucket's ``AbortIncompleteMultipartUpload`` lifecycle rule still cleans up.
    """
    try:
        pending: list[PendingUpload] = store.pending_uploads()
        for upload in sorted(pending, key=lambda u: (u.relative, u.upload_id)):
            if upload.initiated is None or report.now - upload.initiated < report.stale_uploads:
                report.recent_uploads += 1
                continue
            item = GcUpload(store.url(upload.relative), upload.upload_id, upload.initiated)
            item.size_bytes = store.upload_size(upload)
            if not report.dry_run:
                store.abort_upload(upload)
            report.aborted_uploads.append(item)
    except ArtifactStoreError as err:
        report.uploads_error = str(err)


def _collect_shared(store: ArtifactStore, report: GcReport, shared: list[GcShared], linked: set[str]) -> None:
    """Delete the shared objects that no surviving write folder links to (see the module docs)."""
    # Links, not XCom rows, decide: values nested in a JSON artifact are linked but in no row, and
    # equal bytes written under another artifact root have the same hash.
    for item in sorted(shared, key=lambda o: o.uri):
        if item.sha256 in linked:
            item.reason = "linked from a write folder"
        elif item.modified is None or report.now - item.modified < report.grace:
            item.reason = f"younger than the grace period ({report.grace})"
        elif not report.dry_run and _renewed(store, item, report.grace):
            item.reason = "renewed by a writer during this collection"
        else:
            item.reason = "no write folder links to it"
            if not report.dry_run:
                store.delete_dir(item.uri, prune_parents=True)
            report.deleted_shared.append(item)
            continue
        report.kept_shared.append(item)


def _renewed(store: ArtifactStore, item: GcShared, grace: timedelta) -> bool:
    """Whether a shared object was written again (or deleted) since the store was listed."""
    try:
        modified = store.info(item.uri).modified
    except ArtifactNotFoundError:
        return True  # already gone: nothing to delete
    return modified is None or datetime.now(timezone.utc) - modified < grace


# -- the command ----------------------------------------------------------------------------------


def _render(report: GcReport, verbose: bool) -> list[str]:
    from airflow_mlops_provider.cli._common import human_bytes, human_duration

    def line(label: str, items: list[GcFolder]) -> str:
        size = sum(f.size_bytes for f in items)
        return f"  {label}: {len(items)} folder(s), {human_bytes(size)}"

    verb = "would delete" if report.dry_run else "deleted"
    lines = [
        f"Artifact root: {report.root}",
        f"XCom rows scanned: {report.xcom_rows} ({report.referencing_rows} refer to stored artifacts)",
        "Write folders:",
        line(f"{verb} (orphaned{', or expired' if report.include_referenced else ''})", report.deleted),
        line("kept, referenced by an XCom row", report.kept_referenced),
        line(f"kept, younger than the grace period ({human_duration(report.grace)})", report.kept_young),
    ]
    if report.older_than is not None:
        lines.append(
            line(
                f"kept, older than {human_duration(report.older_than)} but referenced"
                + ("" if report.include_referenced else " (--include-referenced deletes them)"),
                report.kept_expired,
            )
        )
    if report.deleted_shared or report.kept_shared:
        freed = human_bytes(sum(o.size_bytes for o in report.deleted_shared))
        kept = human_bytes(sum(o.size_bytes for o in report.kept_shared))
        lines.append(
            f"Shared objects (deduplicated): {verb} {len(report.deleted_shared)} ({freed}), "
            f"kept {len(report.kept_shared)} ({kept})"
        )
    if report.dropped_cache_entries or report.kept_cache_entries:
        drop_verb = "would drop" if report.dry_run else "dropped"
        lines.append(
            f"Cache entries: {drop_verb} {len(report.dropped_cache_entries)} whose outputs are gone, "
            f"kept {report.kept_cache_entries}"
        )
    if report.uploads_error:
        lines.append(f"Unfinished multipart uploads: not checked ({report.uploads_error})")
    elif report.aborted_uploads or report.recent_uploads:
        upload_verb = "would abort" if report.dry_run else "aborted"
        lines.append(
            f"Unfinished multipart uploads older than {human_duration(report.stale_uploads)}: {upload_verb} "
            f"{len(report.aborted_uploads)} ({human_bytes(report.upload_bytes)} of parts), kept "
            f"{report.recent_uploads} younger"
        )
    lines.append(
        f"Skipped: {len(report.skipped_paths)} path(s) outside artifact write folders, "
        f"{report.skipped_snapshots} object(s) under {layout.SNAPSHOTS_DIR}/, "
        f"{report.skipped_cache_entries} cache entr(ies) under {layout.CACHE_DIR}/"
        + (
            f", {report.skipped_scratch} saved replay object(s) under {layout.SCRATCH_DIR}/"
            if report.skipped_scratch
            else ""
        )
    )
    if verbose or report.dry_run:
        for info in report.deleted:
            age = info.age(report.now)
            age_text = human_duration(timedelta(seconds=int(age.total_seconds()))) if age else "?"
            size = human_bytes(info.size_bytes)
            lines.append(
                f"{verb}: {info.uri} ({info.objects} objects, {size}, age {age_text}; {info.reason})"
            )
        for item in report.deleted_shared:
            lines.append(f"{verb}: {item.uri} ({human_bytes(item.size_bytes)}; {item.reason})")
        for url in report.dropped_cache_entries:
            lines.append(f"{'would drop' if report.dry_run else 'dropped'}: cache entry {url}")
        for upload in report.aborted_uploads:
            size = "?" if upload.size_bytes is None else human_bytes(upload.size_bytes)
            started = upload.initiated.isoformat() if upload.initiated else "?"
            upload_verb = "would abort" if report.dry_run else "aborted"
            lines.append(
                f"{upload_verb}: unfinished upload of {upload.uri} ({size} of parts, begun {started})"
            )
    if verbose:
        lines += [f"skipped: {path}" for path in report.skipped_paths]
    if report.dry_run:
        lines.append(f"Dry run: would free {human_bytes(report.freed_bytes)}; nothing was deleted.")
    else:
        shared_note = f", {len(report.deleted_shared)} shared object(s)" if report.deleted_shared else ""
        lines.append(
            f"Freed {human_bytes(report.freed_bytes)} ({len(report.deleted)} folder(s){shared_note} deleted)."
        )
    return lines


def _gc(args: argparse.Namespace) -> None:
    from airflow_mlops_provider.cli._common import UsageError, parse_duration, print_json

    if args.older_than:
        older_than = parse_duration(args.older_than, "--older-than")
    else:
        try:
            older_than = catalog_gc.configured_retention()
        except ValueError as err:
            raise UsageError(str(err)) from None
    if args.include_referenced and not args.older_than:
        raise UsageError(
            "--include-referenced deletes artifacts that XCom rows still refer to; it needs an explicit "
            "--older-than (the [mlops] retention_days setting alone never deletes them)."
        )
    grace = parse_duration(args.grace, "--grace")
    stale_uploads = parse_duration(getattr(args, "stale_uploads", None) or "24h", "--stale-uploads")
    with _stdout_to_stderr() if args.output == "json" else contextlib.nullcontext():
        report = collect_garbage(
            older_than=older_than,
            include_referenced=args.include_referenced,
            grace=grace,
            dry_run=args.dry_run,
            force=args.force,
            stale_uploads=stale_uploads,
        )
    if args.output == "json":
        print_json(report.to_dict())
    else:
        print("\n".join(_render(report, args.verbose)))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to stdout meanwhile to stderr, at the file descriptor: Airflow's
    connection lookups log to handlers (set up at any time) that hold stdout itself, and
    ``--output json`` must print JSON only."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout file descriptor (embedded): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def gc(args: argparse.Namespace) -> None:
    """``airflow mlops gc``: an audited command (Airflow's action log records each run)."""
    from airflow.utils.cli import action_cli

    from airflow_mlops_provider.cli._common import command

    command(action_cli(check_db=False)(_gc))(args)
