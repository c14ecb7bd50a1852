"""The typed-artifact XCom backend.

Enable it with ``AIRFLOW__CORE__XCOM_BACKEND=airflow_mlops_provider.xcom.ArtifactXComBackend``.
"""

from __future__ import annotations

from airflow_mlops_provider.xcom.backend import ArtifactXComBackend

__all__ = ["ArtifactXComBackend"]
