"""Typed artifacts, checks, metrics and an ML view for Apache Airflow 3.

The public API is deliberately small; everything not re-exported here is internal.
"""

from __future__ import annotations

from airflow_mlops_provider.artifacts.refs import ArtifactRef, Columns
from airflow_mlops_provider.artifacts.serializers import (
    Serializer,
    SerializerDeclined,
    TableSerializer,
    register_serializer,
)
from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactLookupError,
    ArtifactNotFoundError,
    ArtifactStoreError,
    BucketNotFoundError,
    PickleNotAllowedError,
    RefusedReferenceError,
    UnsupportedTypeError,
)
from airflow_mlops_provider.version import __version__


def __getattr__(name: str) -> object:
    # ``ml`` imports Airflow's TaskFlow machinery: load it only when DAG code asks for it.
    if name == "ml":
        import importlib

        return importlib.import_module("airflow_mlops_provider.ml")
    raise AttributeError(name)


__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactLookupError",
    "ArtifactNotFoundError",
    "ArtifactRef",
    "ArtifactStoreError",
    "BucketNotFoundError",
    "Columns",
    "PickleNotAllowedError",
    "RefusedReferenceError",
    "Serializer",
    "SerializerDeclined",
    "TableSerializer",
    "UnsupportedTypeError",
    "__version__",
    "ml",
    "register_serializer",
]
