"""Never wrong data: a value comes back exactly as it was, or the write fails with a clear error.

The property tests hunt for counterexamples: object columns holding mixed values, missing-value
markers, timezones of every library, index attributes (freq, names, object levels), datetimes in
JSON values. "Exactly" is checked by a comparator that is stricter than ``assert_frame_equal``: every
object value must have the same class (recursively), every timezone the same class and name.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
import pendulum
import pytest
import pytz
from dateutil import tz as dateutil_tz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_mlops_provider.artifacts import codec
from airflow_mlops_provider.artifacts.config import TABLE_FORMATS, ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer
from airflow_mlops_provider.exceptions import UnsupportedTypeError

PRODUCER = Producer("exact_dag", "run", "task", -1, "return_value", 1)
# MLOPS_HUNT_EXAMPLES=5000 hunts longer than the default run does.
_SETTINGS = settings(
    max_examples=int(os.environ.get("MLOPS_HUNT_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# -- the strict comparator ----------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Same class and value, recursively; NaN equals NaN; timezones of the same class and name."""
    if type(a) is not type(b):
        return False
    if a is None or a is pd.NA or a is pd.NaT or b is pd.NaT:
        return a is b
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (set, frozenset)):
        return a == b
    if isinstance(a, dt.datetime):
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and (a.fold == b.fold or not _fold_matters(a))
            and same_tz(a.tzinfo, b.tzinfo)
            and getattr(a, "unit", None) == getattr(b, "unit", None)
        )
    return bool(a == b)


def _fold_matters(value: dt.datetime) -> bool:
    """``fold`` is part of the value only where it picks the UTC offset (a repeated wall time)."""
    return value.replace(fold=0).utcoffset() != value.replace(fold=1).utcoffset()


def same_tz(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and str(a) == str(b) and repr(a) == repr(b))


def assert_same_index(a: pd.Index, b: pd.Index) -> None:
    assert type(a) is type(b), (type(a), type(b))
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert list(a.names) == list(b.names)
    assert getattr(a, "freq", None) == getattr(b, "freq", None), (a, b)
    for level in range(a.nlevels):
        left, right = a.get_level_values(level), b.get_level_values(level)
        assert same_tz(getattr(left, "tz", None), getattr(right, "tz", None))
        if left.dtype == object:
            assert all(same(x, y) for x, y in zip(left, right, strict=True)), (list(left), list(right))
    assert a.equals(b)


def assert_same_series(a: pd.Series, b: pd.Series) -> None:
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert same_tz(getattr(a.dtype, "tz", None), getattr(b.dtype, "tz", None)), (a.dtype, b.dtype)
    if a.dtype == object:
        assert all(same(x, y) for x, y in zip(a, b, strict=True)), (list(a), list(b))
    else:
        pd.testing.assert_series_equal(a, b, check_exact=True, check_names=False)


def assert_exact(original: Any, back: Any) -> None:
    assert type(back) is type(original)
    assert_same_index(original.index, back.index)
    if isinstance(original, pd.Series):
        assert back.name == original.name
        assert_same_series(original, back)
        return
    assert list(back.columns) == list(original.columns)
    assert back.columns.name == original.columns.name
    assert back.attrs == original.attrs
    for position in range(original.shape[1]):
        assert_same_series(original.iloc[:, position], back.iloc[:, position])


def assert_changeable_like(original: Any, back: Any) -> None:
    """What can be assigned in place in the value written can be in the value read: pyarrow reads
    columns as read-only views, and ``df.iloc[0, j] = x`` then raises "assignment destination is
    read-only" in the task that reads them."""
    if not isinstance(original, (pd.DataFrame, pd.Series)) or len(original) < 2:
        return
    frame = original if isinstance(original, pd.DataFrame) else original.to_frame()
    back = back if isinstance(back, pd.DataFrame) else back.to_frame()
    for position in range(frame.shape[1]):
        trial = frame.copy()
        try:
            trial.iloc[0, position] = frame.iloc[1, position]
        except Exception:  # pandas refuses this assignment in the original too (a list into a cell)
            continue
        back.iloc[0, position] = back.iloc[1, position]


def _manager(
    tmp_path_factory: Any, allow_pickle: bool = True, table_format: str = "arrow"
) -> ArtifactManager:
    root = tmp_path_factory.mktemp("exact").as_uri()
    return ArtifactManager(ArtifactSettings(root, allow_pickle=allow_pickle, table_format=table_format))


def round_trip(tmp_path_factory: Any, value: Any) -> None:
    """With pickle allowed the value always comes back exactly; without it, it comes back exactly
    (as a table, in both table formats) or the write fails naming what a table cannot hold."""
    with_pickle = _manager(tmp_path_factory)
    row = with_pickle.dump(value, PRODUCER)
    back = with_pickle.load(row)
    assert_exact(value, back)
    assert_changeable_like(value, back)
    for table_format in TABLE_FORMATS:
        without = _manager(tmp_path_factory, allow_pickle=False, table_format=table_format)
        try:
            row = without.dump(value, PRODUCER)
        except UnsupportedTypeError as err:
            message = str(err)
            assert "exact_dag" in message and "allow_pickle" in message, message
            assert "column" in message or "index" in message or "series" in message, message
            continue
        assert row["format"] == table_format
        back = without.load(row)
        assert_exact(value, back)
        assert_changeable_like(value, back)


# -- strategies -------------------------------------------------------------------------------------

_ZONES = st.sampled_from(
    [
        dt.timezone.utc,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(dt.timedelta(hours=-3), "BRT"),
        zoneinfo.ZoneInfo("Europe/Paris"),
        zoneinfo.ZoneInfo("UTC"),
        zoneinfo.ZoneInfo("America/New_York"),
        pytz.timezone("Asia/Kolkata"),
        pytz.utc,
        pytz.FixedOffset(120),
        dateutil_tz.gettz("Europe/Berlin"),
        dateutil_tz.tzutc(),
        pendulum.timezone("Europe/Paris"),
        pendulum.timezone("UTC"),
    ]
)
_naive_times = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1))
_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(),  # beyond int64 too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.booleans(),
    st.none(),
    st.just(float("nan")),
    st.just(pd.NA),
    st.just(pd.NaT),
    st.decimals(allow_nan=False, places=3, max_value=10**6, min_value=-(10**6)),
    st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2200, 1, 1)),
    _naive_times,
    _naive_times.map(pd.Timestamp),
    st.timedeltas(min_value=dt.timedelta(days=-999), max_value=dt.timedelta(days=999)),
    st.builds(
        lambda t, z: t.replace(tzinfo=z) if not hasattr(z, "localize") else z.localize(t),
        _naive_times,
        _ZONES,
    ),
    st.builds(lambda t: pendulum.instance(t, tz="Europe/Paris"), _naive_times),
    st.sampled_from([np.int64(3), np.float32(1.5), np.str_("np"), np.bool_(True)]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    ),
    max_leaves=6,
)
# Columns of one kind are the common case (and must stay tables); mixed ones are the hunt.
_homogeneous = st.one_of(
    st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=8),
    st.lists(st.one_of(st.just(float("nan")), st.text(max_size=6)), max_size=8),
    st.lists(st.binary(max_size=6), max_size=8),
    st.lists(st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2), max_size=8),
    st.lists(st.dates(), max_size=8),
    st.lists(st.booleans(), max_size=8),
)
_object_columns = st.one_of(_homogeneous, st.lists(_values, max_size=8))


@st.composite
def object_frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 8))
    columns = {}
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, min_size=1, max_size=3)):
        values = draw(_object_columns)
        values = (values * (n // max(len(values), 1) + 1))[:n] if values else [None] * n
        columns[name] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    kind = draw(st.sampled_from(["range", "object", "datetime", "multi"]))
    if kind == "object":
        frame.index = pd.Index(draw(st.lists(_scalars, min_size=n, max_size=n)), dtype=object, name="key")
    elif kind == "datetime":
        frame.index = pd.date_range(
            "2024-01-01",
            periods=n,
            freq=draw(st.sampled_from(["D", "h", "15min"])),
            tz=draw(_ZONES),
            name="at",
        )
    elif kind == "multi" and n:
        first = draw(st.lists(st.sampled_from(["x", "y", None]), min_size=n, max_size=n))
        frame.index = pd.MultiIndex.from_arrays(
            [pd.Index(first, dtype=object), pd.RangeIndex(n)], names=["k", "n"]
        )
    return frame


# -- properties ---------------------------------------------------------------------------------------


@_SETTINGS
@given(frame=object_frames())
def test_object_frames_come_back_exactly_or_fail_clearly(tmp_path_factory: Any, frame: pd.DataFrame) -> None:
    round_trip(tmp_path_factory, frame)


@_SETTINGS
@given(values=_object_columns, name=st.one_of(st.none(), st.text(max_size=4), st.integers()))
def test_object_series_come_back_exactly_or_fail_clearly(
    tmp_path_factory: Any, values: list, name: Any
) -> None:
    round_trip(tmp_path_factory, pd.Series(values, dtype=object, name=name))


@st.composite
def timezone_frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    start = draw(_naive_times)
    freq = draw(st.sampled_from(["D", "h", "s", "7min", "B", "W-MON", "MS"]))
    index = pd.date_range(start, periods=n, freq=freq, tz=draw(st.one_of(st.none(), _ZONES)), name="at")
    if draw(st.booleans()):
        index = pd.timedelta_range("1s", periods=n, freq=draw(st.sampled_from(["s", "h", "D"])), name="after")
    frame = pd.DataFrame({"x": np.arange(n)}, index=index)
    frame["t"] = pd.date_range(start, periods=n, freq="h", tz=draw(_ZONES))
    frame.columns.name = draw(st.one_of(st.none(), st.just("fields")))
    if draw(st.booleans()):
        frame.attrs = {"source": "hypothesis"}
    return frame


@_SETTINGS
@given(frame=timezone_frames())
def test_timezones_and_index_attributes_come_back_exactly(tmp_path_factory: Any, frame: pd.DataFrame) -> None:
    for table_format in TABLE_FORMATS:
        manager = _manager(tmp_path_factory, allow_pickle=False, table_format=table_format)
        row = manager.dump(frame, PRODUCER)
        assert row["format"] == table_format
        assert_exact(frame, manager.load(row))
        series = frame["t"].copy()
        row = manager.dump(series, PRODUCER)
        assert_exact(series, manager.load(row))


_json_datetimes = st.one_of(
    _naive_times,
    st.datetimes(
        timezones=st.timezones(), min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2300, 1, 1)
    ),
    st.builds(
        lambda t, z: t.replace(tzinfo=z) if not hasattr(z, "localize") else z.localize(t),
        _naive_times,
        _ZONES,
    ),
    st.builds(
        lambda t, z: pendulum.instance(t, tz=z),
        _naive_times,
        st.sampled_from(["UTC", "Europe/Paris", "Asia/Tokyo"]),
    ),
    st.builds(lambda t: pendulum.naive(t.year, t.month, t.day, t.hour, t.minute, t.second), _naive_times),
    st.builds(
        lambda t, z: pd.Timestamp(t).tz_localize(z),
        _naive_times,
        st.sampled_from([None, "UTC", "Europe/Paris"]),
    ),
    _naive_times.map(lambda t: t.replace(fold=1)),
)


@_SETTINGS
@given(value=_json_datetimes, container=st.sampled_from(["bare", "list", "dict"]))
def test_datetimes_in_json_values_come_back_exactly(
    tmp_path_factory: Any, value: dt.datetime, container: str
) -> None:
    wrapped = {"bare": value, "list": [value], "dict": {"at": value}}[container]
    manager = _manager(tmp_path_factory)
    back = manager.load(manager.dump(wrapped, PRODUCER))
    assert same(wrapped, back), (wrapped, back)


# -- named counterexamples (the issue's, and what the hunt found) ---------------------------------------


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ([1, 2.5], "holds values of the types float, int"),
        ([{"a": 1}, {"b": 2}], "would read back as {'a': 1.0, 'b': None}"),
        ([(1, 2), (3, 4)], "(tuple) at row 0 would read back as array"),
        (["a", b"b"], "'a' (str) at row 0 would read back as b'a' (bytes)"),
        (["a", None, float("nan")], "holds missing values of the types NoneType, float"),
        (
            [pendulum.datetime(2024, 1, 1, tz="Europe/Paris")],
            "(DateTime) at row 0 would read back as Timestamp",
        ),
    ],
    ids=["int-float", "dict-keys", "tuples", "str-bytes", "none-and-nan", "pendulum"],
)
def test_issue_counterexamples(tmp_path_factory: Any, values: list, why: str) -> None:
    frame = pd.DataFrame({"mixed": pd.Series(values, dtype=object)})
    manager = _manager(tmp_path_factory)
    row = manager.dump(frame, PRODUCER)
    assert row["format"] == "cloudpickle"
    assert_exact(frame, manager.load(row))
    series = frame["mixed"]
    row = manager.dump(series, PRODUCER)
    assert row["format"] == "cloudpickle"
    assert_exact(series, manager.load(row))
    strict = _manager(tmp_path_factory, allow_pickle=False)
    with pytest.raises(UnsupportedTypeError) as caught:
        strict.dump(frame, PRODUCER)
    message = str(caught.value)
    assert "column 'mixed'" in message and why in message and "task 'task'" in message, message
    assert "allow_pickle" in message, message
    with pytest.raises(UnsupportedTypeError, match="the series' values") as caught:
        strict.dump(series, PRODUCER)
    assert why in str(caught.value)


@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_object_columns_of_one_type_stay_tables(tmp_path_factory: Any, table_format: str) -> None:
    frame = pd.DataFrame(
        {
            "s": pd.Series(["a", None, "c"], dtype=object),
            "nan": pd.Series(["a", float("nan"), "c"], dtype=object),
            "na": pd.Series(["a", pd.NA, "c"], dtype=object),
            "b": pd.Series([b"x", None, b"z"], dtype=object),
            "d": pd.Series([{"a": 1}, {"a": 2}, None], dtype=object),
            "day": pd.Series([dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)], dtype=object),
            "dec": pd.Series([decimal.Decimal("1.50"), None, decimal.Decimal("2.25")], dtype=object),
        },
        index=pd.Index(["k1", None, "k3"], dtype=object, name="key"),
    )
    manager = _manager(tmp_path_factory, allow_pickle=False, table_format=table_format)
    row = manager.dump(frame, PRODUCER)
    assert row["format"] == table_format
    assert_exact(frame, manager.load(row))
    ref = manager.load_lazy(row)
    assert_exact(frame[["nan", "b"]], ref.load(columns=["nan", "b"]))


@pytest.mark.parametrize("table_format", TABLE_FORMATS)
@pytest.mark.parametrize(
    ("rows", "parts"),
    [(5, "one"), (200_000, "one"), (200_000, "one-large"), (200_000, "several")],
    ids=["uncompressed", "compressed", "consolidated", "several-batches"],
)
def test_a_frame_read_back_can_be_changed_in_place(
    tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch, table_format: str, rows: int, parts: str
) -> None:
    """Every kind of column of a frame read back (whole, by columns, as a series, batch by batch)
    takes ``iloc`` / ``loc`` assignments as the frame written did, and changing it changes neither
    the artifact nor another read of it."""
    from airflow_mlops_provider.artifacts.serializers import table_formats, tabular

    if parts == "several":  # record batches / row groups of 1,024 rows
        monkeypatch.setattr(table_formats, "_ARROW_BATCH_BYTES", 1)
        monkeypatch.setattr(table_formats, "_PARQUET_GROUP_BYTES", 1)
    if parts == "one-large":  # converted as tables of tens of MB are
        monkeypatch.setattr(tabular, "_CONSOLIDATE_FROM", 1)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "float": rng.standard_normal(rows),
            "int": rng.integers(0, 100, rows),
            "bool": rng.random(rows) > 0.5,
            "category": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
            "naive": pd.date_range("2024-01-01", periods=rows, freq="s"),
            "aware": pd.date_range("2024-01-01", periods=rows, freq="s", tz="Europe/Paris"),
            "delta": pd.to_timedelta(rng.integers(0, 1000, rows), unit="s"),
            "nullable": pd.array(rng.integers(0, 9, rows), dtype="Int64"),
            "text": pd.Series(rng.choice(["x", "y"], rows), dtype="str"),
        },
        index=pd.RangeIndex(rows, name="row"),
    )
    manager = _manager(tmp_path_factory, allow_pickle=False, table_format=table_format)
    row = manager.dump(frame, PRODUCER)
    reads = {
        "whole": manager.load(row),
        "columns": manager.load_lazy(row).load(columns=["float", "category", "aware"]),
        "series": manager.load(manager.dump(frame["float"], PRODUCER)).to_frame(),
        "batch": next(manager.load_lazy(row).iter_pandas(batch_size=rows)),
    }
    for how, back in reads.items():
        for position, name in enumerate(back.columns):
            back.iloc[0, position] = back.iloc[1, position]
            assert back.iloc[0, position] == back.iloc[1, position], (how, name)
        back.loc[back.index[-1], "float"] = 42.0
        assert back["float"].iloc[-1] == 42.0, how
    assert_exact(frame, manager.load(row))


def test_datetime_index_keeps_freq_and_zoneinfo(tmp_path_factory: Any) -> None:
    index = pd.date_range("2024-03-30", periods=48, freq="h", tz=zoneinfo.ZoneInfo("Europe/Paris"), name="at")
    frame = pd.DataFrame({"x": np.arange(48)}, index=index)
    manager = _manager(tmp_path_factory, allow_pickle=False)
    back = manager.load(manager.dump(frame, PRODUCER))
    assert back.index.freq == index.freq
    assert type(back.index.tz) is zoneinfo.ZoneInfo
    assert_exact(frame, back)


def test_unknown_timezone_is_declined_with_the_column(tmp_path_factory: Any) -> None:
    class Odd(dt.tzinfo):
        def utcoffset(self, when: Any) -> dt.timedelta:
            return dt.timedelta(hours=1)

        def dst(self, when: Any) -> dt.timedelta:
            return dt.timedelta(0)

        def tzname(self, when: Any) -> str:
            return "ODD"

    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=2, tz=Odd())})
    with pytest.raises(UnsupportedTypeError, match="column 't' has the timezone"):
        _manager(tmp_path_factory, allow_pickle=False).dump(frame, PRODUCER)


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("allow_pickle", [True, False])
def test_800_levels_deep_fails_clearly(tmp_path: Any, allow_pickle: bool) -> None:
    manager = ArtifactManager(ArtifactSettings(tmp_path.as_uri(), allow_pickle=allow_pickle))
    with pytest.raises(
        UnsupportedTypeError, match=f"nested more than {codec.MAX_DEPTH} levels deep"
    ) as caught:
        manager.dump(_nested(800), PRODUCER)
    assert "exact_dag" in str(caught.value)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]  # nothing left behind


def test_deep_values_below_the_pickle_limit_come_back_exactly(tmp_path_factory: Any) -> None:
    manager = _manager(tmp_path_factory)
    shallow = _nested(codec.MAX_DEPTH - 1)
    row = manager.dump(shallow, PRODUCER)
    assert "artifact" not in str(row)  # all JSON
    assert manager.load(row) == shallow
    deeper = _nested(codec.MAX_DEPTH + 150)
    row = manager.dump(deeper, PRODUCER)
    assert "cloudpickle" in str(row)  # the part below the limit is pickled whole
    assert manager.load(row) == deeper
    with pytest.raises(codec.NestingTooDeep, match="levels deep"):
        codec.encode(_nested(codec.MAX_DEPTH + 1))


def test_footer_copy_with_a_flipped_bit_is_never_trusted(tmp_path: Any) -> None:
    from pathlib import Path
    from urllib.parse import urlparse

    frame = pd.DataFrame({"age": np.arange(5000, dtype="int64"), "name": [f"n{i}" for i in range(5000)]})
    manager = ArtifactManager(ArtifactSettings(tmp_path.as_uri(), table_format="parquet"))
    row = manager.dump(frame, PRODUCER)
    data_path = Path(urlparse(row["uri"]).path)
    footer = data_path.with_name(data_path.name.replace(".parquet", ".footer.parquet"))
    raw = bytearray(footer.read_bytes())
    # Flip one bit in every byte position in turn (a few of them): the column name "age" lives there.
    position = raw.find(b"age")
    assert position >= 0
    for offset in (position, position + 1, len(raw) // 2, len(raw) - 9):
        flipped = bytearray(raw)
        flipped[offset] ^= 0x01
        footer.write_bytes(bytes(flipped))
        ref = manager.load_lazy(row)
        try:
            column = ref.load(columns=["age"])
        except Exception as err:  # refusing clearly is allowed; wrong data is not
            assert "age" in str(err) or "artifact" in str(err).lower(), err
        else:
            pd.testing.assert_frame_equal(column, frame[["age"]], check_exact=True)
        batches = list(ref.iter_batches(batch_size=1000, columns=["age"]))
        assert [b.schema.names for b in batches] == [["age"]] * 5
        assert np.concatenate([b.column(0).to_numpy() for b in batches]).tolist() == list(range(5000))
    footer.write_bytes(bytes(raw))


def test_pendulum_in_an_object_column_at_a_repeated_wall_time(tmp_path_factory: Any) -> None:
    late = pendulum.datetime(2024, 10, 27, 2, 30, tz="Europe/Paris")  # fold=1: the +01:00 one
    frame = pd.DataFrame({"at": pd.Series([late], dtype=object)})
    manager = _manager(tmp_path_factory)
    back = manager.load(manager.dump(frame, PRODUCER))
    # pendulum's own pickling drops fold; the pickle fallback keeps it.
    assert type(back["at"][0]) is pendulum.DateTime and back["at"][0].fold == 1
    assert back["at"][0].timestamp() == late.timestamp()


def test_pendulum_json_value_at_a_repeated_wall_time(tmp_path_factory: Any) -> None:
    late = pendulum.datetime(2024, 10, 27, 2, 30, tz="Europe/Paris")
    manager = _manager(tmp_path_factory)
    row = manager.dump({"at": late}, PRODUCER)
    back = manager.load(row)["at"]
    assert type(back) is pendulum.DateTime and back.timestamp() == late.timestamp() and back.fold == 1
