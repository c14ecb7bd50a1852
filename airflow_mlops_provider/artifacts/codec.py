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
NUL_TEXT = "\\x00"  # what a NUL character becomes in summaries (see jsonb_safe)
_SERDE_CLASSNAME = "__classname__"
_RESERVED_KEYS = (TAG, _SERDE_CLASSNAME)
# Containers nested deeper than this are not JSON-encoded: encoding, Airflow's JSON handling of the
# row and decoding all recurse, and Python's recursion limit (1000 frames) must hold them with room
# for the caller's stack. A deeper part goes to the leaf handler (the pickle fallback) whole.
MAX_DEPTH = 100

JsonValue = Any
Leaf = Callable[[Any], JsonValue]


class NotEncodable(TypeError):
    """Raised when a value holds something JSON cannot represent and no leaf handler was given."""

    def __init__(self, value: Any) -> None:
        super().__init__(f"{type(value).__module__}.{type(value).__qualname__} is not JSON-encodable")
        self.value = value


class NestingTooDeep(NotEncodable):
    """A container nested more than :data:`MAX_DEPTH` levels deep."""

    def __init__(self, value: Any) -> None:
        TypeError.__init__(self, _too_deep(value))
        self.value = value


def _too_deep(value: Any) -> str:
    return (
        f"a {type(value).__qualname__} nested more than {MAX_DEPTH} levels deep (dicts, lists, tuples, "
        f"sets inside each other) cannot be stored as JSON: the limit of {MAX_DEPTH} levels keeps "
        "writing and reading it within Python's recursion limit"
    )


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
        return _decode_datetime(data)
    if tag == "date":
        return dt.date.fromisoformat(data["value"])
    if tag == "timedelta":
        return dt.timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["microseconds"])
    if tag == "numpy":
        import numpy as np

        return np.dtype(data["dtype"]).type(decode(data["value"], leaf))
    raise ValueError(f"Unknown {TAG} tag {tag!r}: written by a newer airflow-mlops-provider?")


def jsonb_safe(data: JsonValue) -> JsonValue:
    """``data`` with every NUL character in strings and keys written as the text ``\\x00``.

    For what describes an artifact in its XCom row (summary, type, details such as column names):
    PostgreSQL's JSONB rejects ``\\u0000`` and the row would fail to save. The artifact's bytes
    are stored in the object store unchanged; values themselves never go inline with NUL.
    """
    if isinstance(data, str):
        return data.replace("\x00", NUL_TEXT) if "\x00" in data else data
    if isinstance(data, (list, tuple)):
        return [jsonb_safe(item) for item in data]
    if isinstance(data, dict):
        return {jsonb_safe(key): jsonb_safe(item) for key, item in data.items()}
    return data


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
        self.depth = 0

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
            encoded = _encode_datetime(value)
            if encoded is not None:
                return encoded
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
        if self.depth >= MAX_DEPTH:
            return self._too_deep(value)
        self.active.add(marker)
        self.depth += 1
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
            self.depth -= 1

    def _too_deep(self, value: Any) -> JsonValue:
        """The part of a value below :data:`MAX_DEPTH` goes whole to the leaf handler (the pickle
        fallback stores it exactly); without one, or if it refuses, the error names the limit."""
        if self.leaf is None:
            raise NestingTooDeep(value)
        from airflow_mlops_provider.exceptions import UnsupportedTypeError

        try:
            return self.leaf(value)
        except UnsupportedTypeError as err:
            raise UnsupportedTypeError(f"{_too_deep(value)[0].upper()}{_too_deep(value)[1:]}. {err}") from err


# -- datetimes ----------------------------------------------------------------------------------------
#
# ISO 8601 keeps the wall time and the UTC offset, not the timezone: a datetime in Europe/Paris would
# come back with a fixed +01:00, a pendulum DateTime or a pandas Timestamp as a plain datetime. The tag
# records the timezone and the class when they differ from what the ISO text gives back, and every
# encoding is decoded again at once: a datetime that would not come back identical (a timezone or
# class we cannot rebuild, a fold the text cannot carry) goes to the leaf handler (pickle) instead.

_DATETIME_CLASSES = {"pendulum.DateTime": "pendulum", "pandas.Timestamp": "pandas"}


def _encode_datetime(value: dt.datetime) -> dict[str, Any] | None:
    kind = type(value)
    if kind is not dt.datetime:
        cls = _DATETIME_CLASSES.get(f"{kind.__module__.split('.', 1)[0]}.{kind.__name__}")
        if cls is None:
            return None
    else:
        cls = None
    encoded: dict[str, Any] = {TAG: "datetime", "value": value.isoformat()}
    if cls is not None:
        encoded["class"] = cls
        if cls == "pandas":
            encoded["unit"] = value.unit  # type: ignore[attr-defined]
    if value.fold:  # the UTC offset in the text tells the fold of a repeated wall time, not all of it
        encoded["fold"] = 1
    tz = value.tzinfo
    if tz is not None:
        try:  # the timezone the ISO text alone gives back: the same one for UTC and fixed offsets
            keeps_tz = same_tz(tz, _decode_datetime(encoded).tzinfo)
        except Exception:
            keeps_tz = False
        if not keeps_tz:
            spec = tz_spec(tz)
            if spec is None:
                return None
            encoded["tz"] = spec
    try:
        back = _decode_datetime(encoded)
    except Exception:
        return None
    return encoded if same_datetime(value, back) else None


def _decode_datetime(data: dict[str, Any]) -> dt.datetime:
    cls, spec = data.get("class"), data.get("tz")
    tz = tz_from_spec(spec) if spec else None
    fold = data.get("fold")
    if cls == "pandas":
        import pandas as pd

        stamp = pd.Timestamp(data["value"]).as_unit(data["unit"])
        stamp = stamp.tz_convert(tz) if tz is not None else stamp
        return stamp.replace(fold=fold) if fold is not None else stamp
    value = dt.datetime.fromisoformat(data["value"])
    if tz is not None:
        value = value.astimezone(tz)
        if hasattr(tz, "normalize"):  # pytz
            value = tz.normalize(value)
    if fold is not None:
        value = value.replace(fold=fold)
    if cls == "pendulum":
        import pendulum

        fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        return pendulum.DateTime(*fields, value.microsecond, tzinfo=value.tzinfo, fold=value.fold)
    return value


def same_datetime(a: dt.datetime, b: Any) -> bool:
    """``a`` and ``b`` are the same datetime: class, instant, wall time, fold and timezone."""
    if a is b:
        return True
    if type(a) is not type(b) or a.replace(tzinfo=None) != b.replace(tzinfo=None) or a.fold != b.fold:
        return False
    if getattr(a, "unit", None) != getattr(b, "unit", None):
        return False
    return same_tz(a.tzinfo, b.tzinfo) and (a.tzinfo is None or a.utcoffset() == b.utcoffset())


def same_tz(a: Any, b: Any) -> bool:
    """The same timezone object, or an identical one (same class, same name and definition)."""
    return a is b or (type(a) is type(b) and repr(a) == repr(b) and str(a) == str(b))


def tz_spec(tz: Any) -> dict[str, Any] | None:
    """A JSON description that :func:`tz_from_spec` rebuilds ``tz`` from (``None`` if it cannot)."""
    spec: dict[str, Any]
    module = type(tz).__module__.split(".", 1)[0]
    if type(tz) is dt.timezone:
        spec = {"kind": "timezone", "seconds": tz.utcoffset(None).total_seconds(), "name": tz.tzname(None)}
    elif module in ("zoneinfo", "pendulum") and getattr(tz, "key", None):
        spec = {"kind": module, "key": tz.key}
    elif module == "pendulum" and isinstance(getattr(tz, "offset", None), int):
        spec = {"kind": "pendulum-fixed", "seconds": tz.offset, "name": tz.name}
    elif module == "pytz":
        zone = getattr(tz, "zone", None)
        spec = {"kind": "pytz", "zone": zone} if zone else {"kind": "pytz-fixed", "minutes": tz._minutes}
    elif module == "dateutil" and type(tz).__name__ == "tzutc":
        spec = {"kind": "dateutil-utc"}
    elif module == "dateutil" and getattr(tz, "_filename", None):
        spec = {"kind": "dateutil", "name": tz._filename}
    else:
        return None
    try:
        rebuilt = tz_from_spec(spec)
    except Exception:
        return None
    return spec if same_tz(tz, rebuilt) else None


def tz_from_spec(spec: dict[str, Any]) -> Any:
    kind = spec["kind"]
    if kind == "timezone":
        offset = dt.timedelta(seconds=spec["seconds"])
        if offset == dt.timedelta(0) and spec["name"] == dt.timezone.utc.tzname(None):
            return dt.timezone.utc
        unnamed = dt.timezone(offset)
        return unnamed if spec["name"] == unnamed.tzname(None) else dt.timezone(offset, spec["name"])
    if kind == "zoneinfo":
        import zoneinfo

        return zoneinfo.ZoneInfo(spec["key"])
    if kind == "pendulum":
        import pendulum

        return pendulum.timezone(spec["key"])
    if kind == "pendulum-fixed":
        import pendulum

        return pendulum.FixedTimezone(spec["seconds"], name=spec["name"])
    if kind == "pytz":
        import pytz

        return pytz.timezone(spec["zone"])
    if kind == "pytz-fixed":
        import pytz

        return pytz.FixedOffset(spec["minutes"])
    if kind == "dateutil":
        from dateutil import tz

        return tz.gettz(spec["name"])
    if kind == "dateutil-utc":
        from dateutil import tz

        return tz.tzutc()
    raise ValueError(f"Unknown timezone kind {kind!r}: written by a newer airflow-mlops-provider?")
