"""Users' own serializers: the public API, entry points, MRO dispatch and format versions."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from typing import Any

import pytest

from airflow_mlops_provider import Serializer, register_serializer
from airflow_mlops_provider.artifacts.config import ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer
from airflow_mlops_provider.artifacts.serializers import SerializerRegistry, registry

PRODUCER = Producer("reg_dag", "run", "task", -1, "return_value", 1)


class Vector:
    def __init__(self, *values: float) -> None:
        self.values = list(values)


class UnitVector(Vector):
    pass


class VectorSerializer(Serializer):
    """Writes vectors as JSON text: a stand-in for a user's own format."""

    name = "test.vector"
    types = (Vector,)
    format = "vector-json"
    format_version = 2
    extension = ".vec.json"

    def write(self, value: Any, sink, settings) -> dict[str, Any]:
        sink.write(json.dumps({"class": type(value).__name__, "v": value.values}).encode())
        return {"length": len(value.values)}

    def read(self, data, reference, settings) -> Any:
        body = json.loads(bytes(data))
        if reference.format_version == 1:  # version 1 wrote a bare list
            return Vector(*body)
        return {"Vector": Vector, "UnitVector": UnitVector}[body["class"]](*body["v"])

    def describe(self, value_type: str, details: dict[str, Any]) -> str:
        return f"vector of {details['length']}"


def _manager(tmp_path, serializers: SerializerRegistry) -> ArtifactManager:
    return ArtifactManager(ArtifactSettings(tmp_path.as_uri(), allow_pickle=False), serializers=serializers)


def test_registered_serializer_handles_subclasses_via_mro(tmp_path) -> None:
    reg = SerializerRegistry()
    reg.register(VectorSerializer)
    manager = _manager(tmp_path, reg)
    row = manager.dump(UnitVector(0.6, 0.8), PRODUCER)
    assert row["serializer"] == "test.vector" and row["summary"] == "vector of 2"
    assert row["type"].endswith("UnitVector")
    back = manager.load(row)
    assert type(back) is UnitVector and back.values == [0.6, 0.8]


def test_old_format_versions_stay_readable(tmp_path) -> None:
    reg = SerializerRegistry()
    reg.register(VectorSerializer)
    manager = _manager(tmp_path, reg)
    row = manager.dump(Vector(1.0), PRODUCER)
    # Rewrite the object as version 1 of the format did, with the matching reference.
    legacy = b"[3.0, 4.0]"
    import hashlib

    manager.store.put_bytes(row["uri"], legacy)
    row = dict(row, format_version=1, size_bytes=len(legacy), sha256=hashlib.sha256(legacy).hexdigest())
    assert manager.load(row).values == [3.0, 4.0]


def test_register_serializer_is_public_and_later_registration_wins(tmp_path) -> None:
    @register_serializer
    class LoudVector(VectorSerializer):
        name = "test.vector.loud"

        def describe(self, value_type: str, details: dict[str, Any]) -> str:
            return "LOUD"

    try:
        manager = ArtifactManager(ArtifactSettings(tmp_path.as_uri()))
        assert manager.dump(Vector(1.0), PRODUCER)["summary"] == "LOUD"
    finally:
        registry._by_type[f"{Vector.__module__}.{Vector.__qualname__}"].clear()


def test_serializer_from_an_entry_point(tmp_path, monkeypatch) -> None:
    package = tmp_path / "site"
    (package / "vecplugin").mkdir(parents=True)
    (package / "vecplugin" / "__init__.py").write_text(
        textwrap.dedent("""
        from airflow_mlops_provider import Serializer

        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

        class PointSerializer(Serializer):
            name = "vecplugin.point"
            types = ("vecplugin.Point",)
            format = "point-csv"
            def write(self, value, sink, settings):
                sink.write(f"{value.x},{value.y}".encode())
                return {}
            def read(self, data, reference, settings):
                x, y = bytes(data).decode().split(",")
                return Point(float(x), float(y))
    """)
    )
    dist = package / "vecplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vecplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[airflow_mlops_provider.serializers]\npoint = vecplugin:PointSerializer\n"
    )
    monkeypatch.syspath_prepend(str(package))
    # Installed after this process scanned its entry points: like Airflow's plugins, serializers are
    # found by a process started after the install; here the scan is redone instead.
    for module in ("airflow.sdk._shared.module_loading", "airflow.utils.entry_points"):  # 3.2+, 3.1
        try:
            scan = importlib.import_module(module)._get_grouped_entry_points
        except (ImportError, AttributeError):
            continue
        scan.cache_clear()
        break
    import vecplugin

    manager = _manager(tmp_path / "store", SerializerRegistry())
    row = manager.dump(vecplugin.Point(1, 2), PRODUCER)
    assert row["serializer"] == "vecplugin.point" and row["format"] == "point-csv"
    back = manager.load(row)
    assert (back.x, back.y) == (1.0, 2.0)
    sys.modules.pop("vecplugin", None)


def test_unknown_serializer_name_says_what_to_install(tmp_path) -> None:
    manager = _manager(tmp_path, SerializerRegistry())
    row = manager.dump(b"x", PRODUCER)
    with pytest.raises(LookupError, match="install the package"):
        manager.load(dict(row, serializer="someone.elses"))


def test_serializer_must_name_itself() -> None:
    class Nameless(VectorSerializer):
        name = ""

    with pytest.raises(TypeError, match="must define 'name'"):
        SerializerRegistry().register(Nameless)
