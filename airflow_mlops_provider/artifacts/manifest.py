"""Manifests (stored next to the bytes) and references (stored in the XCom row).

A manifest makes the store readable without Airflow's database: it says what the bytes are, how
they were written and who wrote them. A reference is the compact subset a reader needs, plus a
one-line summary for people looking at Airflow's XCom tab.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.artifacts.chunks import check_chunk_bytes
from airflow_mlops_provider.artifacts.codec import TAG, jsonb_safe

MANIFEST_VERSION = 1
# The newest reference version this provider reads. Rows are written as version 1 unless their hash
# is over chunks (version 2): a provider that predates chunk hashes says to upgrade, never checks
# the wrong hash.
REFERENCE_VERSION = 2


@dataclass(frozen=True)
class Producer:
    """The task instance (and XCom key) that wrote an artifact."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    key: str = "return_value"
    try_number: int = 0

    def describe(self) -> str:
        where = f"dag {self.dag_id!r}, run {self.run_id!r}, task {self.task_id!r}"
        if self.map_index >= 0:
            where += f", map index {self.map_index}"
        return f"{where}, key {self.key!r}, try {self.try_number}"


@dataclass
class Reference:
    """What an XCom row (or an enclosing JSON artifact) holds for one stored artifact.

    :param uri: URL of the data object in its write folder (manifest and preview sit beside it).
    :param type: fully qualified class name of the value that was written.
    :param serializer: registry name of the serializer that wrote it.
    :param format: storage format (``arrow``, ``parquet``, ``npy``, ``json+zstd``, ``png``,
        ``cloudpickle``...).
    :param format_version: the serializer's format version when it wrote the bytes.
    :param size_bytes: size of the data object.
    :param sha256: hex content hash of the data object: its SHA-256 or, with ``chunk_bytes``, the
        SHA-256 of its chunks' BLAKE3 digests (the ``chunks.sha256`` sidecar), which covers every
        byte too.
    :param producer: task instance and key that wrote it.
    :param summary: one line for people; ``details`` holds the same as structured data.
    :param details: rows/columns/dtypes for tables, shape/dtype for arrays, class for objects...
    :param signature: HMAC-SHA256 of ``sha256`` for pickle artifacts when a signing key is set.
    :param blob: with ``[mlops] deduplicate``, URL of the shared content-addressed object that holds
        the bytes (``uri`` then names no object: it only places the manifest and preview).
    :param chunk_bytes: the chunk size ``sha256`` is computed over (objects of more than one chunk);
        ``None``: ``sha256`` is the hash of the bytes themselves.
    """

    uri: str
    type: str
    serializer: str
    format: str
    format_version: int
    size_bytes: int
    sha256: str
    producer: Producer
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    signature: str | None = None
    blob: str | None = None
    chunk_bytes: int | None = None

    @property
    def data_uri(self) -> str:
        """Where the bytes are: the shared object when deduplicated, else ``uri``."""
        return self.blob or self.uri

    def sibling(self, suffix: str) -> str:
        """URI of a file stored beside the data object (its manifest, preview, a sidecar)."""
        return layout.sibling(self.uri, suffix)

    @property
    def hash_description(self) -> str:
        """What ``sha256`` is the hash of, for people and error messages."""
        if self.chunk_bytes is None:
            return f"sha256 {self.sha256}"
        return f"sha256 {self.sha256} (of its {self.chunk_bytes:,}-byte chunks' BLAKE3 digests)"

    @property
    def manifest_uri(self) -> str:
        return self.sibling(layout.MANIFEST)

    @property
    def preview_uri(self) -> str:
        return self.sibling(layout.PREVIEW)

    def to_row(self) -> dict[str, Any]:
        """The XCom row; its descriptive fields are JSONB-safe (no NUL: PostgreSQL refuses them)."""
        row: dict[str, Any] = {
            TAG: "artifact",
            "v": 1,
            "summary": jsonb_safe(self.summary),
            "uri": self.uri,
            "type": jsonb_safe(self.type),
            "format": self.format,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "serializer": self.serializer,
            "format_version": self.format_version,
            "producer": asdict(self.producer),
            "details": jsonb_safe(self.details),
        }
        if self.signature:
            row["signature"] = self.signature
        if self.blob:
            row["blob"] = self.blob
        if self.chunk_bytes is not None:
            row["v"] = 2
            row["chunk_bytes"] = self.chunk_bytes
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Reference:
        if row.get(TAG) != "artifact":
            raise ValueError(f"Not an artifact reference: {row!r:.200}")
        if int(row.get("v", 1)) > REFERENCE_VERSION:
            raise ValueError(
                f"Artifact reference version {row['v']} for {row.get('uri')} was written by a newer "
                "airflow-mlops-provider; upgrade the provider on this machine."
            )
        return cls(
            uri=row["uri"],
            type=row["type"],
            serializer=row["serializer"],
            format=row["format"],
            format_version=int(row["format_version"]),
            size_bytes=int(row["size_bytes"]),
            sha256=row["sha256"],
            producer=Producer(**row["producer"]),
            summary=row.get("summary", ""),
            details=row.get("details") or {},
            signature=row.get("signature"),
            blob=row.get("blob"),
            chunk_bytes=_chunk_bytes(row),
        )


def _chunk_bytes(row: dict[str, Any]) -> int | None:
    value = row.get("chunk_bytes")
    return None if value is None else check_chunk_bytes(int(value))


@dataclass
class Manifest:
    """Self-description stored beside every data object (``<name>.manifest.json``).

    ``execution`` is filled for values returned by ``@ml`` tasks: the code that ran and its hash,
    duration, peak memory, params and the input artifacts it read (lineage).
    """

    artifact_id: str
    reference: Reference
    media_type: str
    created_at: str
    versions: dict[str, str]
    execution: dict[str, Any] | None = None
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        body = {
            "manifest_version": self.manifest_version,
            "artifact_id": self.artifact_id,
            "created_at": self.created_at,
            "media_type": self.media_type,
            "versions": self.versions,
            **{k: v for k, v in self.reference.to_row().items() if k not in (TAG, "v")},
        }
        if self.execution:
            body["execution"] = self.execution
        return json.dumps(body, indent=2, sort_keys=False, default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Manifest:
        body = json.loads(raw)
        if int(body.get("manifest_version", 1)) > MANIFEST_VERSION:
            raise ValueError(
                f"Manifest version {body['manifest_version']} is newer than this provider understands."
            )
        reference = Reference.from_row({TAG: "artifact", "v": REFERENCE_VERSION, **body})
        return cls(
            artifact_id=body["artifact_id"],
            reference=reference,
            media_type=body.get("media_type", "application/octet-stream"),
            created_at=body["created_at"],
            versions=body.get("versions", {}),
            execution=body.get("execution"),
            manifest_version=int(body.get("manifest_version", 1)),
        )
