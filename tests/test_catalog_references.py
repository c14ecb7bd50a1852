"""Where each artifact sits in an XCom value: the path a user indexes the loaded value with."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_mlops_provider.artifacts import codec


class Model:
    """Stands for a value that is stored as an artifact (a model, a frame...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.name == self.name

    def __lt__(self, other: Model) -> bool:
        return self.name < other.name


def _stored(value: Model) -> dict[str, Any]:
    return {codec.TAG: "artifact", "uri": f"file:///root/{value.name}"}


def _paths(value: Any) -> dict[str, str]:
    return {
        path: row["uri"].rsplit("/", 1)[1]
        for path, row in codec.iter_references(codec.encode(value, _stored))
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Model("m"), {"": "m"}),
        ([Model("a"), 1, Model("b")], {"[0]": "a", "[2]": "b"}),
        ((Model("a"), Model("b")), {"[0]": "a", "[1]": "b"}),
        ({"model": Model("m"), "n": 3}, {"['model']": "m"}),
        ({"runs": [{"best": (1, Model("x"))}]}, {"['runs'][0]['best'][1]": "x"}),
        # A user dict holding the codec's own tag is escaped when stored, and still walked by key.
        ({codec.TAG: "mine", "model": Model("m")}, {"['model']": "m"}),
        ({Model("b"), Model("a")}, {"[0]": "a", "[1]": "b"}),
        (frozenset({Model("z")}), {"[0]": "z"}),
        ({"when": dt.date(2024, 1, 2), "scores": [0.5, float("nan")]}, {}),
    ],
)
def test_paths_index_the_decoded_value(value: Any, expected: dict[str, str]) -> None:
    assert _paths(value) == expected


def test_a_path_reaches_the_artifact_in_the_loaded_value() -> None:
    value = {"runs": [{"best": (1, Model("x"))}], "other": [Model("y")]}
    loaded = codec.decode(codec.encode(value, _stored), lambda row: Model(row["uri"].rsplit("/", 1)[1]))
    for path, row in codec.iter_references(codec.encode(value, _stored)):
        assert eval(f"loaded{path}", {"loaded": loaded}).name == row["uri"].rsplit("/", 1)[1]
