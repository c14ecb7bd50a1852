"""Property tests: any DataFrame pyarrow can hold comes back with the same values, dtypes and index."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from airflow_mlops_provider.artifacts.config import TABLE_FORMATS, ArtifactSettings
from airflow_mlops_provider.artifacts.manager import ArtifactManager
from airflow_mlops_provider.artifacts.manifest import Producer

PRODUCER = Producer("prop_dag", "run", "task", -1, "return_value", 1)

_ints = st.integers(-(2**53), 2**53)
_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_text = st.text(max_size=12)
_times = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1))


def _nullable(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def frames(draw) -> pd.DataFrame:
    df = draw(
        data_frames(
            [
                column("i64", dtype="int64", elements=_ints),
                column("f64", dtype="float64", elements=_floats),
                column("f32", dtype="float32", elements=st.floats(width=32, allow_nan=True)),
                column("flag", dtype="bool"),
                column("ts", dtype="datetime64[ns]", elements=_times),
            ],
            index=range_indexes(min_size=0, max_size=30),
        )
    )
    n = len(df)
    df["nullable_int"] = pd.array(draw(st.lists(_nullable(_ints), min_size=n, max_size=n)), dtype="Int64")
    df["text"] = pd.Series(draw(st.lists(_nullable(_text), min_size=n, max_size=n)), dtype="str")
    categories = ["low", "mid", "high"]
    df["cat"] = pd.Categorical(
        draw(st.lists(_nullable(st.sampled_from(categories)), min_size=n, max_size=n)),
        categories=categories,
        ordered=draw(st.booleans()),
    )
    tz = draw(st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
    df["ts_tz"] = df["ts"].dt.tz_localize("UTC").dt.tz_convert(tz)
    if draw(st.booleans()):
        df.index = pd.Index(draw(st.lists(_text, min_size=n, max_size=n)), name="key", dtype="str")
    return df


def _check(manager: ArtifactManager, df: pd.DataFrame) -> None:
    row = manager.dump(df, PRODUCER)
    assert row["format"] == manager.settings.table_format
    back = manager.load(row)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert list(back.dtypes) == list(df.dtypes)
    # assert_frame_equal takes UTC as ZoneInfo('UTC') and datetime.timezone.utc alike: the class must stay.
    for name, dtype in df.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            assert type(back[name].dtype.tz) is type(dtype.tz), (name, back[name].dtype.tz, dtype.tz)
    assert type(back.index) is type(df.index) and back.index.names == df.index.names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames())
def test_dataframes_round_trip_exactly_local(tmp_path_factory, df: pd.DataFrame) -> None:
    root = tmp_path_factory.mktemp("prop").as_uri()
    for table_format in TABLE_FORMATS:
        _check(ArtifactManager(ArtifactSettings(root, table_format=table_format)), df)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames())
def test_dataframes_round_trip_exactly_s3(s3_server, monkeypatch, df: pd.DataFrame) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", s3_server.connection_uri())
    s3_server.client().create_bucket(Bucket="props")
    for table_format in TABLE_FORMATS:
        settings = ArtifactSettings("s3://props/p", conn_id="aws_default", table_format=table_format)
        _check(ArtifactManager(settings), df)


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame(),
        pd.DataFrame({"a": pd.Series([], dtype="Int64"), "b": pd.Series([], dtype="category")}),
        pd.DataFrame({"a": [None, None]}, dtype="float64"),
        pd.DataFrame({"x": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])),
        pd.DataFrame({"d": pd.to_timedelta([1, 2], unit="s"), "u8": np.array([1, 255], dtype="uint8")}),
    ],
    ids=["empty", "empty-typed", "all-null", "multiindex", "timedelta-uint8"],
)
def test_edge_frames_round_trip(tmp_path, df: pd.DataFrame) -> None:
    for table_format in TABLE_FORMATS:
        _check(ArtifactManager(ArtifactSettings(tmp_path.as_uri(), table_format=table_format)), df)


def test_frames_parquet_cannot_hold_fall_back_to_pickle(tmp_path) -> None:
    manager = ArtifactManager(ArtifactSettings(tmp_path.as_uri()))
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    mixed = pd.DataFrame({"m": [1, "two", 3.0]})
    int_names = pd.DataFrame({0: [1], 1: [2]})
    for df in (duplicated, mixed, int_names):
        row = manager.dump(df, PRODUCER)
        assert row["format"] == "cloudpickle"
        pd.testing.assert_frame_equal(manager.load(row), df)
