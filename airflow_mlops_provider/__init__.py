"""Typed artifacts, checks, metrics and an ML view for Apache Airflow 3.

The public API is deliberately small; everything not re-exported here is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"

from airflow_mlops_provider.artifacts.refs import ArtifactRef, Columns
from airflow_mlops_provider.artifacts.serializers import Serializer, register_serializer
from airflow_mlops_provider.exceptions import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactLookupError,
    ArtifactNotFoundError,
    ArtifactStoreError,
    PickleNotAllowedError,
    UnsupportedTypeError,
)


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
    "Columns",
    "PickleNotAllowedError",
    "Serializer",
    "UnsupportedTypeError",
    "__version__",
    "ml",
    "register_serializer",
]
