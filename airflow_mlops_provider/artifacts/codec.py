"""Lossless JSON encoding of plain Python values, with tagged leaves for everything else.

JSON alone loses tuples, sets, non-finite floats and dates, and cannot tell a user's dict from one
of our artifact references. Values JSON already holds are encoded as themselves, so an inline XCom
row reads exactly like Airflow's default backend; everything else becomes a small dict tagged with
``TAG``. A user dict that happens to contain ``TAG`` (or Airflow serde's ``__classname__``) is
escaped, so it comes back as the user's dict and is never mistaken for a reference.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

TAG = "__mlops__"
_SERDE_CLASSNAME = "__classname__"
_RESERVED_KEYS = (TAG, _SERDE_CLASSNAME)

JsonValue = Any
Leaf = Callable[[Any], JsonValue]


class NotEncodable(TypeError):
    """Raised when a value holds something JSON cannot represent and no leaf handler was given."""

    def __init__(self, value: Any) -> None:
        super().__init__(f"{type(value).__module__}.{type(value).__qualname__} is not JSON-encodable")
        self.value = value


def encode(value: Any, leaf: Leaf | None = None) -> JsonValue:
    """Encode ``value``; values JSON cannot hold go to ``leaf`` (or raise :class:`NotEncodable`)."""
    return _Encoder(leaf).encode(value)


def decode(data: JsonValue, leaf: Callable[[dict[str, Any]], Any]) -> Any:
    """Invert :func:`encode`; artifact references are handed to ``leaf``."""
    if isinstance(data, list):
        return [decode(item, leaf) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        if _SERDE_CLASSNAME in data and "__data__" in data:
            # Written by Airflow's default backend before this one was configured.
            from airflow.sdk.serde import deserialize

            return deserialize(data)
        return {key: decode(item, leaf) for key, item in data.items()}
    if tag == "artifact":
        return leaf(data)
    if tag == "dict":
        return {key: decode(item, leaf) for key, item in data["items"].items()}
    if tag == "tuple":
        return tuple(decode(item, leaf) for item in data["items"])
    if tag == "set":
        return {decode(item, leaf) for item in data["items"]}
    if tag == "frozenset":
        return frozenset(decode(item, leaf) for item in data["items"])
    if tag == "float":
        return float(data["value"])
    if tag == "datetime":
        return dt.datetime.fromisoformat(data["value"])
    if tag == "date":
        return dt.date.fromisoformat(data["value"])
    if tag == "timedelta":
        return dt.timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["microseconds"])
    if tag == "numpy":
        import numpy as np

        return np.dtype(data["dtype"]).type(decode(data["value"], leaf))
    raise ValueError(f"Unknown {TAG} tag {tag!r}: written by a newer airflow-mlops-provider?")


def iter_references(data: JsonValue, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, reference_row)`` for every artifact reference inside an encoded value.

    ``path`` is what to index the decoded value with to reach the artifact (``""`` for the value
    itself, ``[0]``, ``['model']``, ``['models'][1]``): tuples and lists by position, dicts by key.
    Sets have no positions; their items are numbered in the stored (sorted) order.
    """
    if isinstance(data, list):
        for index, item in enumerate(data):
            yield from iter_references(item, f"{path}[{index}]")
        return
    if not isinstance(data, dict):
        return
    tag = data.get(TAG)
    if tag == "artifact":
        yield path, data
    elif tag == "dict" or tag is None:
        items = data["items"] if tag == "dict" else data
        for key, item in items.items():
            yield from iter_references(item, f"{path}[{key!r}]")
    elif tag in ("tuple", "set", "frozenset"):
        for index, item in enumerate(data["items"]):
            yield from iter_references(item, f"{path}[{index}]")


class _Encoder:
    def __init__(self, leaf: Leaf | None) -> None:
        self.leaf = leaf
        self.active: set[int] = set()  # containers on the stack, to refuse cycles

    def encode(self, value: Any) -> JsonValue:
        if value is None or type(value) in (str, bool):
            return value
        kind = type(value)
        if kind is int:
            return value
        if kind is float:
            return value if math.isfinite(value) else {TAG: "float", "value": repr(value)}
        if kind in (list, tuple, set, frozenset, dict):
            return self._container(value)
        if isinstance(value, dt.datetime):
            return {TAG: "datetime", "value": dt.datetime.isoformat(value)}
        if kind is dt.date:
            return {TAG: "date", "value": value.isoformat()}
        if kind is dt.timedelta:
            return {
                TAG: "timedelta",
                "days": value.days,
                "seconds": value.seconds,
                "microseconds": value.microseconds,
            }
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(value, numpy.generic) and value.dtype.kind in "biuf":
            return {TAG: "numpy", "dtype": value.dtype.str, "value": self.encode(value.item())}
        if self.leaf is None:
            raise NotEncodable(value)
        return self.leaf(value)

    def _container(self, value: Any) -> JsonValue:
        marker = id(value)
        if marker in self.active:
            raise NotEncodable(value)  # a cycle: only pickle can hold it
        self.active.add(marker)
        try:
            kind = type(value)
            if kind is dict:
                if not all(type(key) is str for key in value):
                    if self.leaf is None:
                        raise NotEncodable(value)
                    return self.leaf(value)
                items = {key: self.encode(item) for key, item in value.items()}
                if any(key in value for key in _RESERVED_KEYS):
                    return {TAG: "dict", "items": items}
                return items
            if kind is list:
                return [self.encode(item) for item in value]
            if kind is tuple:
                return {TAG: "tuple", "items": [self.encode(item) for item in value]}
            try:
                ordered = sorted(value)
            except TypeError:
                ordered = sorted(value, key=repr)
            return {TAG: kind.__name__, "items": [self.encode(item) for item in ordered]}
        finally:
            self.active.discard(marker)
