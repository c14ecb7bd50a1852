"""Settings of the artifact layer, read from Airflow's ``[mlops]`` config section."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SECTION = "mlops"
TABLE_FORMATS = ("arrow", "parquet")
ARROW_CODECS = ("zstd", "lz4", "none")
#: zstd's level for Arrow IPC buffers unless ``[mlops] arrow_compression_level`` says otherwise: its
#: fast range, where zstd stores what does not compress as it is (measured: docs/performance.md).
DEFAULT_ZSTD_LEVEL = -1


def airflow_home() -> str:
    """``$AIRFLOW_HOME`` as Airflow resolves it (``~/airflow`` when unset)."""
    return os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")


def default_artifact_root() -> str:
    """``$AIRFLOW_HOME/mlops_artifacts``: the embedded default, so a fresh install needs no config."""
    return Path(airflow_home(), "mlops_artifacts").resolve().as_uri()


@dataclass(frozen=True)
class ArtifactSettings:
    """Resolved ``[mlops]`` options.

    :param artifact_root: URL of the folder or bucket prefix that holds every artifact.
    :param conn_id: Airflow connection for the store (used by ``s3://`` and other remote schemes).
    :param inline_threshold_bytes: JSON values smaller than this stay inline in the XCom row.
    :param allow_pickle: whether the cloudpickle format may be written and read.
    :param signing_key: HMAC key for pickle artifacts; ``None`` means pickles are not signed.
    :param table_format: how tables (pandas, polars, pyarrow) are stored: ``arrow`` (Arrow IPC
        file, the fastest round trip) or ``parquet`` (for teams that read the store with other tools).
        Artifacts keep the format they were written in: changing it never breaks a read.
    :param arrow_compression: Arrow IPC buffer codec (``zstd``, ``lz4`` or ``none``).
    :param arrow_compression_level: the zstd level of Arrow IPC buffers (-1 by default: faster
        writes and reads for 4-25% more bytes than level 1; 1 to 22 make smaller files more slowly).
    :param parquet_compression: Parquet codec for tables.
    :param deduplicate: store identical bytes once, content-addressed under ``<root>/_cas/``.
    :param retention_days: age in days past which ``airflow mlops gc`` reports artifacts that XCom
        rows still refer to (0: off; it never deletes them on this setting alone).
    :param store_timeout_seconds: how long one request to a remote store may wait to connect, or
        for the next bytes of an answer, before it is retried (at most 3 attempts), then fails.
    """

    artifact_root: str
    conn_id: str | None = "aws_default"
    inline_threshold_bytes: int = 4096
    allow_pickle: bool = True
    signing_key: bytes | None = field(default=None, repr=False)  # never in logs or reprs
    table_format: str = "arrow"
    arrow_compression: str = "zstd"
    arrow_compression_level: int = DEFAULT_ZSTD_LEVEL
    parquet_compression: str = "zstd"
    deduplicate: bool = False
    retention_days: int = 0
    store_timeout_seconds: float = 60.0

    @classmethod
    def current(cls) -> ArtifactSettings:
        """The settings now, read from Airflow's config again only when an ``AIRFLOW__MLOPS__*``
        variable, ``AIRFLOW_HOME`` or ``AIRFLOW_CONFIG`` changed: every XCom push and pull asks.

        Like Airflow's own settings, edits to ``airflow.cfg`` are seen by processes started after.
        """
        return _settings(tuple(map(os.environ.get, _WATCHED)))

    @classmethod
    def from_airflow_config(cls) -> ArtifactSettings:
        from airflow.providers.common.compat.sdk import conf

        root = (conf.get(SECTION, "artifact_root", fallback="") or "").strip() or default_artifact_root()
        if "://" not in root:  # a bare path: make it a file URL so every component sees the same root
            root = Path(root).expanduser().resolve().as_uri()
        key = conf.get(SECTION, "signing_key", fallback="") or ""
        return cls(
            artifact_root=root.rstrip("/"),
            conn_id=(conf.get(SECTION, "aws_conn_id", fallback="aws_default") or None),
            inline_threshold_bytes=conf.getint(SECTION, "inline_threshold_bytes", fallback=4096),
            allow_pickle=conf.getboolean(SECTION, "allow_pickle", fallback=True),
            signing_key=key.encode() if key else None,
            table_format=_choice("table_format", TABLE_FORMATS, "arrow"),
            arrow_compression=_choice("arrow_compression", ARROW_CODECS, "zstd"),
            arrow_compression_level=_zstd_level(),
            parquet_compression=(conf.get(SECTION, "parquet_compression", fallback="zstd") or "none"),
            deduplicate=conf.getboolean(SECTION, "deduplicate", fallback=False),
            retention_days=conf.getint(SECTION, "retention_days", fallback=0),
            store_timeout_seconds=conf.getfloat(SECTION, "store_timeout_seconds", fallback=60.0),
        )


def _watched() -> tuple[str, ...]:
    """The variables that can change the settings: each ``[mlops]`` option's, in the forms Airflow
    reads (looked up one by one: scanning the whole environment cost more than the rest of a small
    XCom's settings lookup)."""
    from airflow_mlops_provider.get_provider_info import get_provider_info

    options = get_provider_info()["config"][SECTION]["options"]
    prefix = f"AIRFLOW__{SECTION.upper()}__"
    variables = (
        f"{prefix}{option.upper()}{suffix}" for option in options for suffix in ("", "_CMD", "_SECRET")
    )
    return ("AIRFLOW_HOME", "AIRFLOW_CONFIG", *variables)


_WATCHED = _watched()


@lru_cache(maxsize=8)
def _settings(environment: tuple[str | None, ...]) -> ArtifactSettings:
    return ArtifactSettings.from_airflow_config()


def _choice(option: str, allowed: tuple[str, ...], default: str) -> str:
    """An option whose value must be one of ``allowed`` (case-insensitive); a clear error if not."""
    from airflow.providers.common.compat.sdk import conf

    value = (conf.get(SECTION, option, fallback=default) or default).strip().lower()
    if value not in allowed:
        raise ValueError(
            f"[{SECTION}] {option} = {value!r} is not one of {', '.join(allowed)}; fix it in airflow.cfg "
            f"or AIRFLOW__{SECTION.upper()}__{option.upper()}."
        )
    return value


def _zstd_level() -> int:
    """``[mlops] arrow_compression_level``, checked against the levels zstd has; a clear error if not."""
    from airflow.providers.common.compat.sdk import conf

    low, high = -(1 << 17), 22  # zstd's negative (fast) levels and its highest
    text = (conf.get(SECTION, "arrow_compression_level", fallback="") or "").strip()
    try:
        level = int(text) if text else DEFAULT_ZSTD_LEVEL
    except ValueError:
        level = None
    if level is None or not low <= level <= high or level == 0:
        raise ValueError(
            f"[{SECTION}] arrow_compression_level = {text!r} is not a zstd level: use -1 (fast, the "
            f"default) or 1 to 22 (smaller, slower), or a negative level down to {low}; fix it in "
            f"airflow.cfg or AIRFLOW__{SECTION.upper()}__ARROW_COMPRESSION_LEVEL."
        )
    return level
