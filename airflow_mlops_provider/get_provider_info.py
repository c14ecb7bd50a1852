"""Provider metadata read by Airflow's ProvidersManager (``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-mlops-provider",
        "name": "MLOps",
        "description": "Typed artifacts (a custom XCom backend), ML checks and metrics, and an ML view "
        "for Apache Airflow 3.",
        "versions": ["0.1.0"],
        "task-decorators": [
            {"name": "ml", "class-name": "airflow_mlops_provider.decorators.ml_task"},
            {"name": "ml_check", "class-name": "airflow_mlops_provider.decorators.ml_check"},
            {"name": "ml_metric", "class-name": "airflow_mlops_provider.decorators.ml_metric"},
        ],
        "plugins": [{"name": "mlops", "plugin-class": "airflow_mlops_provider.plugins.MLOpsPlugin"}],
        "cli": ["airflow_mlops_provider.cli.definition.get_mlops_cli_commands"],
        "config": {
            "mlops": {
                "description": "Typed-artifact XCom backend "
                "(``airflow_mlops_provider.xcom.ArtifactXComBackend``).",
                "options": {
                    "artifact_root": {
                        "description": "Where artifacts are stored: ``s3://bucket/prefix``, "
                        "``file:///path`` or any URL Airflow's ObjectStoragePath understands. "
                        "Empty means ``$AIRFLOW_HOME/mlops_artifacts`` on the local disk, which only "
                        "works when every worker shares that disk.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://my-bucket/airflow-artifacts",
                        "default": "",
                    },
                    "aws_conn_id": {
                        "description": "Airflow connection used for ``s3://`` roots (and for other "
                        "schemes whose filesystem takes a connection). Put ``endpoint_url`` in its "
                        "extras for MinIO, R2 or other S3-compatible stores.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "aws_default",
                        "default": "aws_default",
                    },
                    "inline_threshold_bytes": {
                        "description": "JSON values whose encoding is smaller than this many bytes "
                        "are kept inline in the XCom row; larger ones go to the artifact store.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "4096",
                        "default": "4096",
                    },
                    "allow_pickle": {
                        "description": "Allow the cloudpickle format for objects no data format can "
                        "hold (models, custom classes). False refuses to write or read pickles.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                    "signing_key": {
                        "description": "Secret used to sign pickle artifacts (HMAC-SHA256 of their "
                        "content hash). When set, unsigned or tampered pickles are refused. Supply it "
                        "through a secrets backend or ``AIRFLOW__MLOPS__SIGNING_KEY_SECRET``.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": None,
                        "default": "",
                    },
                    "table_format": {
                        "description": "How tables (pandas, polars, pyarrow) are stored: ``arrow`` "
                        "(Arrow IPC file, the fastest round trip) or ``parquet`` (for teams that read "
                        "the store with other tools). Artifacts keep the format they were written in.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "parquet",
                        "default": "arrow",
                    },
                    "arrow_compression": {
                        "description": (
                            "Arrow IPC buffer codec for tables (zstd, lz4, none); tables under 256 KiB "
                            "are left uncompressed."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "lz4",
                        "default": "zstd",
                    },
                    "arrow_compression_level": {
                        "description": (
                            "zstd level of Arrow IPC buffers. -1 (zstd's fast range) writes and reads "
                            "a quarter to a half faster than level 1 and stores what does not compress "
                            "as it is, for 4-25% more bytes; 1 to 22 make smaller files, slower."
                        ),
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "3",
                        "default": "-1",
                    },
                    "parquet_compression": {
                        "description": "Parquet codec for tables (zstd, snappy, lz4, gzip, none).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "zstd",
                        "default": "zstd",
                    },
                    "store_timeout_seconds": {
                        "description": "How long one request to a remote artifact store (``s3://``) "
                        "may wait to connect, or for the next bytes of an answer. A request that times "
                        "out is retried (at most 3 attempts in all), then the task fails with an "
                        "``ArtifactStoreError`` naming the root and the connection, so a store that "
                        "accepts connections but never answers cannot hang a task.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "30",
                        "default": "60",
                    },
                    "retention_days": {
                        "description": "Retention age of stored artifacts for ``airflow mlops gc``, in "
                        "days (0 = off). gc reports artifacts older than this that XCom rows still refer "
                        "to, but never deletes them on this setting alone: that needs an explicit "
                        "``--older-than`` and ``--include-referenced``. Orphaned artifacts (no XCom row "
                        "refers to them) are deleted by gc whatever this is.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "30",
                        "default": "0",
                    },
                    "deduplicate": {
                        "description": "Store identical artifact bytes once. Data objects then live "
                        "content-addressed under ``<artifact_root>/_cas/sha256/``; each write folder keeps "
                        "its manifest, preview and a zero-byte ``<n>.sha256-<hex>`` link, and XCom rows "
                        "name the shared object. ``airflow mlops gc`` deletes a shared object only when no "
                        "remaining write folder links to it. Artifacts written before the switch stay "
                        "readable either way.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "killed_task_notifier": {
                        "description": "Import path of an Airflow notifier called when a task's process "
                        "died without Airflow's own failure handling (killed by a signal such as the OOM "
                        "killer's SIGKILL, exited abnormally, or lost its heartbeat) and that failure "
                        "failed the DAG run. A notifier instance (any BaseNotifier, a callable taking the "
                        "context, or a list) is used as it is; a notifier class is instantiated without "
                        "arguments. Called by the scheduler (and airflow dags test), which must be able "
                        "to import it. Empty: no pages.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "my_company.alerts.oom_pager",
                        "default": "",
                    },
                },
            }
        },
    }
