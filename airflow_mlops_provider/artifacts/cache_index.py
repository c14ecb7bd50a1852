"""The cache index: which outputs a cached task's successful try produced under a cache key.

One small JSON object per (task, key, DAG) in the store (see :class:`layout.CacheEntryPath`). It
holds the ``return_value`` XCom row of the try, whose artifact references carry the content hashes
a hit verifies before reusing anything, and a sha256 of its own body: a damaged entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.exceptions import ArtifactNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_mlops_provider.artifacts.store import ArtifactStore

log = logging.getLogger(__name__)

ENTRY_FORMAT = 1


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class CacheEntry:
    """The outputs of one successful try of a cached task.

    :param key: the cache key (hex sha256) the try computed.
    :param row: its ``return_value`` XCom row (``None`` when it returned nothing).
    :param computed_at: when the function last really ran for this key (ISO 8601, UTC); hits
        rewrite the entry to point at their own copy but keep this, so ``expire`` counts from it.
    """

    key: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    code_hash: str
    version: str
    computed_at: str
    row: Any = None

    @property
    def computed(self) -> datetime:
        return datetime.fromisoformat(self.computed_at)

    def describe(self) -> str:
        where = f"{self.run_id}/{self.task_id}"
        return where if self.map_index < 0 else f"{where}[{self.map_index}]"

    def to_json(self) -> bytes:
        body = {"format": ENTRY_FORMAT, **asdict(self)}
        return _canonical({**body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()})

    @classmethod
    def from_json(cls, data: bytes) -> CacheEntry:
        """:raises ValueError: not an entry, written by a newer provider, or damaged."""
        body = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        digest = body.pop("sha256", None)
        if digest != hashlib.sha256(_canonical(body)).hexdigest():
            raise ValueError("its sha256 does not match its content")
        if body.pop("format", None) != ENTRY_FORMAT:
            raise ValueError("unknown entry format (written by another provider version?)")
        return cls(**body)


class CacheIndex:
    """Reads and writes the cache index of one store.

    :param store: the artifact store the cached outputs live in.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store

    def _read(self, url: str) -> CacheEntry | None:
        try:
            return CacheEntry.from_json(self._store.get_bytes(url))
        except ArtifactNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as err:  # a damaged entry is a miss, not an error
            log.warning("Ignoring the cache entry %s: %s", url, err)
            return None

    def candidates(self, task_id: str, key: str, dag_id: str, *, any_dag: bool) -> Iterator[CacheEntry]:
        """Entries for ``key``: this DAG's, then (``any_dag``) the other DAGs', newest first."""
        own = self._read(self._store.url(layout.CacheEntryPath.of(task_id, key, dag_id).relative))
        if own is not None:
            yield own
        if not any_dag:
            return
        others = []
        for item in self._store.walk(layout.cache_key_dir(task_id, key)):
            path = layout.parse(item.relative)
            if isinstance(path, layout.CacheEntryPath) and path.dag_id != layout.safe_component(dag_id):
                entry = self._read(self._store.url(item.relative))
                if entry is not None:
                    others.append(entry)
        yield from sorted(others, key=lambda e: e.computed_at, reverse=True)

    def put(self, entry: CacheEntry) -> str:
        """Write (or replace) the entry; returns its URL."""
        url = self._store.url(layout.CacheEntryPath.of(entry.task_id, entry.key, entry.dag_id).relative)
        self._store.put_bytes(url, entry.to_json())
        return url

    def clear(self, dag_id: str, task_id: str | None = None) -> list[str]:
        """Delete a DAG's entries (of one task, with ``task_id``); returns the URLs deleted."""
        dag = layout.safe_component(dag_id)
        deleted = []
        for item in self._store.walk(layout.cache_dir(task_id)):
            path = layout.parse(item.relative)
            if isinstance(path, layout.CacheEntryPath) and path.dag_id == dag:
                url = self._store.url(item.relative)
                self._store.delete_dir(url)
                deleted.append(url)
        return deleted


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
