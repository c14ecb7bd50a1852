"""What a task process needs to hand over artifacts, imported once per worker (see celery_config)."""

from __future__ import annotations

import contextlib

import numpy  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401

import airflow_mlops_provider.xcom.backend  # noqa: F401

with contextlib.suppress(ImportError):  # only where the amazon provider's S3 filesystem is installed
    import airflow.providers.amazon.aws.fs.s3  # noqa: F401
    import s3fs  # noqa: F401
