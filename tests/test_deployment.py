"""The deployment example (deploy/) says what the provider needs, and says it right.

Docker images cannot be pulled here, so the compose file is not started; these tests hold it to the
code instead: every Airflow component runs the image that installs the provider, every ``[mlops]``
option it sets exists, the XCom backend it names imports, and the settings the Celery tier of the
test suite (tests/test_celery_cluster.py) depends on are there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())


def _airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in compose["services"].items()
        if isinstance(s.get("command"), str) and s["command"] in COMPONENTS
    }


def test_every_airflow_component_runs_the_image_with_the_provider(compose: dict[str, Any]) -> None:
    services = _airflow_services(compose)
    assert {s["command"] for s in services.values()} == COMPONENTS
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'"airflow-mlops-provider"', dockerfile)
    assert re.search(r'"apache-airflow==\$\{AIRFLOW_VERSION\}"', dockerfile)  # pip never moves Airflow
    for name, service in services.items():
        assert service.get("build") == ".", name
        assert service["image"] == compose["x-airflow-common"]["image"], name


def test_settings_exist_and_are_the_same_everywhere(compose: dict[str, Any]) -> None:
    from airflow_mlops_provider.get_provider_info import get_provider_info

    options = set(get_provider_info()["config"]["mlops"]["options"])
    common = compose["x-airflow-common"]["environment"]
    mlops = {k.removeprefix("AIRFLOW__MLOPS__").lower() for k in common if k.startswith("AIRFLOW__MLOPS__")}
    assert mlops and mlops <= options, mlops - options
    assert "artifact_root" in mlops
    for name, service in _airflow_services(compose).items():
        env = service["environment"]
        for key, value in common.items():
            assert env.get(key) == value, (name, key)

    from importlib import import_module

    backend = common["AIRFLOW__CORE__XCOM_BACKEND"]
    module, _, cls = backend.rpartition(".")
    assert getattr(import_module(module), cls).__name__ == cls
    module, _, name = common["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
    celery_config = getattr(import_module(module), name)
    assert celery_config["task_acks_late"] is not None  # Airflow's defaults, extended
    for preloaded in celery_config["imports"]:
        import_module(preloaded)


def test_no_shared_disk_between_workers(compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__MLOPS__ARTIFACT_ROOT"].startswith("s3://")
    assert common["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "true"  # the ML view reads tracebacks there
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert common["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    volumes = compose["x-airflow-common"]["volumes"]
    assert not [v for v in volumes if "logs" in v or "artifacts" in v], volumes
