"""The built-in check functions (``ml.checks``): pure functions, no Airflow involved."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pendulum
import pytest

from airflow_mlops_provider.checks import builtin
from airflow_mlops_provider.checks.builtin import (
    BUILTIN_CHECKS,
    PSI_EPSILON,
    allowed_values,
    drift,
    freshness,
    has_columns,
    in_range,
    not_null,
    row_count,
    unique,
)
from airflow_mlops_provider.checks.result import CheckResult

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


def assert_plain(value: Any) -> None:
    """Details must be plain JSON: no numpy scalars, no NaN/inf."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, key
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)
    else:
        assert type(value) in (str, int, float, bool, type(None)), (value, type(value))
        if type(value) is float:
            assert math.isfinite(value)
    json.dumps(value, allow_nan=False)


def check(result: CheckResult) -> CheckResult:
    """Common invariants of every result."""
    assert isinstance(result, CheckResult)
    assert type(result.passed) is bool
    assert result.message and "\n" not in result.message
    assert_plain(result.details)
    if isinstance(result.failing, pd.DataFrame):
        assert result.failing_count == len(result.failing)
    return result


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "age": [25.0, 17.0, 40.0, np.nan, 130.0, 60.0],
            "segment": ["new", "loyal", "vip", None, "new", "gold"],
            "spend": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )


def test_registry_lists_every_check() -> None:
    registry = dict(BUILTIN_CHECKS)
    assert registry == {
        "has_columns": has_columns,
        "not_null": not_null,
        "unique": unique,
        "in_range": in_range,
        "allowed_values": allowed_values,
        "row_count": row_count,
        "drift": drift,
        "freshness": freshness,
    }
    for function in BUILTIN_CHECKS.values():
        assert function.__doc__
    assert builtin.__doc__


# ----------------------------------------------------------------------------------- has_columns


def test_has_columns_passes_for_names_kinds_and_dtypes(customers: pd.DataFrame) -> None:
    assert check(has_columns(customers, ["customer_id", "age"])).passed
    frame = customers.assign(
        segment_cat=customers["segment"].astype("category"),
        segment_obj=customers["segment"].astype(object),
        at=pd.to_datetime(["2024-01-01"] * 6, utc=True),  # microsecond unit in pandas 3
        flag=[True, False] * 3,
        count=pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
    )
    result = check(
        has_columns(
            frame,
            {
                "customer_id": "int64",
                "age": "float64",
                "spend": "numeric",
                "segment": "str",
                "segment_obj": "string",
                "segment_cat": "category",
                "at": "datetime64[ns, UTC]",
                "flag": "bool",
                "count": "integer",
            },
        )
    )
    assert result.passed, result.message
    assert result.details == {"missing": [], "mismatched": {}}
    assert "customer_id (int64)" in result.message and "at (datetime64[ns, UTC])" in result.message
    assert check(has_columns(frame, {"at": "datetime", "segment": "object", "age": "float"})).passed


def test_has_columns_reports_missing_columns_and_dtype_mismatches(customers: pd.DataFrame) -> None:
    result = check(
        has_columns(
            customers, {"customer_id": "string", "age": "integer", "zip": "str", "segment": "category"}
        )
    )
    assert not result.passed
    assert result.failing is None
    assert result.details == {
        "missing": ["zip"],
        "mismatched": {
            "customer_id": {"expected": "string", "found": "int64"},
            "age": {"expected": "integer", "found": "float64"},
            "segment": {"expected": "category", "found": "str"},
        },
    }
    assert "missing column zip (available: customer_id, age, segment, spend)" in result.message
    assert "age expected integer, found float64" in result.message
    assert "segment expected category, found str" in result.message
    missing = check(has_columns(customers, ["zip", "city", "age"]))
    assert not missing.passed and missing.details["missing"] == ["zip", "city"]
    assert "missing columns zip, city" in missing.message


def test_has_columns_compares_time_zones_and_string_content() -> None:
    frame = pd.DataFrame(
        {"at": pd.to_datetime(["2024-01-01"], utc=True), "codes": pd.Series([1], dtype=object)}
    )
    result = check(has_columns(frame, {"at": "datetime64[ns]", "codes": "string"}))
    assert not result.passed
    assert result.details["mismatched"] == {
        "at": {"expected": "datetime64[ns]", "found": "datetime64[us, UTC]"},
        "codes": {"expected": "string", "found": "object"},
    }
    assert check(has_columns(frame, {"codes": "object"})).passed


def test_has_columns_argument_errors(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown dtype 'weird' for column 'age'"):
        has_columns(customers, {"age": "weird"})
    with pytest.raises(ValueError, match="columns is empty"):
        has_columns(customers, [])
    with pytest.raises(ValueError, match="columns is empty"):
        has_columns(customers, {})
    with pytest.raises(TypeError, match="must be a pandas DataFrame, got list"):
        has_columns([1, 2], ["a"])  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- not_null


def test_not_null_passes_and_fails_with_the_rows_holding_nulls(customers: pd.DataFrame) -> None:
    ok = check(not_null(customers, ["customer_id", "spend"]))
    assert ok.passed and ok.failing_count == 0
    assert ok.details == {"null_counts": {}, "rows": 6}
    assert "customer_id, spend" in ok.message

    frame = customers.copy()
    frame.loc[15, "spend"] = np.nan
    result = check(not_null(frame))
    assert not result.passed
    assert list(result.failing.index) == [13, 15]
    assert result.failing_count == 2
    assert result.details == {"null_counts": {"age": 1, "segment": 1, "spend": 1}, "rows": 6}
    assert result.message == (
        "expected no nulls in customer_id, age, segment, spend, found 2 rows with nulls "
        "(age 1, segment 1, spend 1)"
    )
    single = check(not_null(frame, "spend"))
    assert list(single.failing.index) == [15] and single.details["null_counts"] == {"spend": 1}


def test_not_null_sees_every_kind_of_missing_value() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
            "t": pd.to_datetime(["2024-01-01", None, None, "2024-01-04"]),
            "o": pd.Series(["a", "b", None, "d"], dtype=object),
            "f": [1.0, 2.0, 3.0, np.nan],
        }
    )
    result = check(not_null(frame))
    assert list(result.failing.index) == [1, 2, 3]
    assert result.details["null_counts"] == {"n": 1, "t": 2, "o": 1, "f": 1}


def test_not_null_errors_and_empty_frames(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown column 'agee'.*available columns: 'customer_id', 'age'"):
        not_null(customers, ["agee"])
    with pytest.raises(ValueError, match="columns is empty"):
        not_null(customers, [])
    assert check(not_null(customers.iloc[:0])).passed
    assert check(not_null(pd.DataFrame())).passed


# ---------------------------------------------------------------------------------------- unique


def test_unique_reports_every_row_involved_in_a_duplicate() -> None:
    frame = pd.DataFrame(
        {"id": pd.array([1, 2, 2, 3, 3, 3, None, None], dtype="Int64"), "x": range(8)},
        index=list("abcdefgh"),
    )
    assert check(unique(frame, "x")).passed
    result = check(unique(frame, "id"))
    assert not result.passed
    assert list(result.failing.index) == ["b", "c", "d", "e", "f"]
    assert result.failing_count == 5
    assert result.details == {"duplicated_count": 2, "duplicated_values": ["2", "3"], "null_rows_ignored": 2}
    assert result.message == "expected unique id, found 5 rows sharing 2 duplicated values (e.g. 2, 3)"


def test_unique_over_a_combination_of_columns() -> None:
    frame = pd.DataFrame({"day": [1, 1, 2, 2, 1], "store": ["a", "b", "a", "a", "b"]})
    assert check(unique(frame, ["day"])).passed is False
    result = check(unique(frame, ["day", "store"]))
    assert list(result.failing.index) == [1, 2, 3, 4]
    assert result.details["duplicated_values"] == ["(1, 'b')", "(2, 'a')"]
    assert "(day, store) combinations" in result.message and "2 duplicated combinations" in result.message
    assert check(unique(frame.iloc[[0, 1, 2]], ["day", "store"])).passed


def test_unique_errors_and_empty_frames(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        unique(customers, "nope")
    with pytest.raises(ValueError, match="columns is empty"):
        unique(customers, [])
    empty = check(unique(customers.iloc[:0], "customer_id"))
    assert empty.passed and empty.failing_count == 0


# -------------------------------------------------------------------------------------- in_range


def test_in_range_passes_within_bounds(customers: pd.DataFrame) -> None:
    result = check(in_range(customers, "spend", min=10, max=60))
    assert result.passed and result.failing_count == 0
    assert result.details["observed_min"] == 10.0 and result.details["observed_max"] == 60.0
    assert "spend" in result.message and "[10, 60]" in result.message


def test_in_range_fails_with_rows_outside_and_ignores_nulls(customers: pd.DataFrame) -> None:
    result = check(in_range(customers, "age", min=18, max=120))
    assert not result.passed
    assert list(result.failing.index) == [11, 14]  # 17 and 130; the NaN in row 13 is not_null's job
    assert result.failing_count == 2
    assert result.message == (
        "age: expected values in [18, 120], found 2 rows outside (observed min 17, max 130)"
    )
    assert result.details == {
        "observed_min": 17.0,
        "observed_max": 130.0,
        "min": 18,
        "max": 120,
        "inclusive": True,
        "below_min": 1,
        "above_max": 1,
    }
    exclusive = check(in_range(customers, "age", min=25, inclusive=False))
    assert list(exclusive.failing.index) == [10, 11]
    assert "expected values > 25" in exclusive.message
    left = check(in_range(customers, "spend", min=10, max=60, inclusive="left"))
    assert list(left.failing.index) == [15] and "[10, 60)" in left.message


def test_in_range_on_datetimes_nullable_ints_and_empty_columns() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2024-01-01", "2023-12-31", None, "2024-02-01"], utc=True),
            "n": pd.array([1, None, 5, 2], dtype="Int64"),
            "empty": [np.nan] * 4,
        }
    )
    result = check(in_range(frame, "at", min=pd.Timestamp("2024-01-01", tz="UTC")))
    assert list(result.failing.index) == [1]
    assert result.details["observed_min"] == "2023-12-31T00:00:00+00:00"
    assert list(check(in_range(frame, "n", max=4)).failing.index) == [2]
    empty = check(in_range(frame, "empty", min=0, max=1))
    assert empty.passed and empty.details["observed_min"] is None and "no non-null values" in empty.message
    assert check(in_range(frame.iloc[:0], "n", min=0)).passed


def test_in_range_argument_errors(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"empty range \[5, 1\] for column 'age'"):
        in_range(customers, "age", min=5, max=1)
    with pytest.raises(ValueError, match="empty range"):
        in_range(customers, "age", min=5, max=5, inclusive=False)
    with pytest.raises(ValueError, match="give min and/or max"):
        in_range(customers, "age")
    with pytest.raises(ValueError, match="inclusive='sometimes'"):
        in_range(customers, "age", min=1, inclusive="sometimes")
    with pytest.raises(
        ValueError, match=r"unknown column 'agee' in column; available columns: 'customer_id'"
    ):
        in_range(customers, "agee", min=1)
    with pytest.raises(ValueError, match=r"cannot compare column 'segment' \(str\)"):
        in_range(customers, "segment", min=3)
    with pytest.raises(ValueError, match="use None for no bound"):
        in_range(customers, "age", min=float("nan"))
    assert check(in_range(customers, "age", min=40, max=40)).failing_count == 4


# -------------------------------------------------------------------------------- allowed_values


def test_allowed_values_passes_and_fails_with_unexpected_rows(customers: pd.DataFrame) -> None:
    ok = check(allowed_values(customers, "segment", ["new", "loyal", "vip", "gold"]))
    assert ok.passed and ok.details == {"unexpected_values": [], "unexpected_count": 0}

    result = check(allowed_values(customers, "segment", ["new", "loyal"]))
    assert not result.passed
    assert list(result.failing.index) == [12, 15]  # the null in row 13 is ignored
    assert result.failing_count == 2
    assert result.details == {"unexpected_values": ["vip", "gold"], "unexpected_count": 2}
    assert result.message == (
        "segment: expected values in {'new', 'loyal'}, found 2 rows with 2 unexpected values: "
        "'vip' (1), 'gold' (1)"
    )


def test_allowed_values_lists_at_most_twenty_most_frequent_first() -> None:
    values = [f"v{i}" for i in range(30)] + ["often"] * 3 + ["ok"]
    frame = pd.DataFrame({"code": pd.Series(values, dtype="category")})
    result = check(allowed_values(frame, "code", {"ok"}))
    assert result.failing_count == 33
    assert result.details["unexpected_count"] == 31
    assert result.details["unexpected_values"][:2] == ["often", "v0"]
    assert len(result.details["unexpected_values"]) == 20
    assert "and 26 more" in result.message
    numbers = check(allowed_values(pd.DataFrame({"n": [1, 2, 3, None]}), "n", [1, 2]))
    assert list(numbers.failing.index) == [2] and numbers.details["unexpected_values"] == ["3.0"]


def test_allowed_values_argument_errors(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="allowed set for column 'segment' is empty"):
        allowed_values(customers, "segment", [])
    with pytest.raises(ValueError, match="must be a list or set"):
        allowed_values(customers, "segment", "new")
    with pytest.raises(ValueError, match="unknown column 'segmnt'"):
        allowed_values(customers, "segmnt", ["new"])
    assert check(allowed_values(customers.iloc[:0], "segment", ["new"])).passed


# ------------------------------------------------------------------------------------- row_count


def test_row_count(customers: pd.DataFrame) -> None:
    ok = check(row_count(customers, min=1, max=10))
    assert ok.passed and ok.details == {"rows": 6, "min": 1, "max": 10}
    assert ok.message == "6 rows (expected between 1 and 10 rows)"
    few = check(row_count(customers, min=1_000))
    assert not few.passed and few.message == "expected at least 1000 rows, found 6"
    assert few.details == {"rows": 6, "min": 1000, "max": None}
    many = check(row_count(customers, max=5))
    assert not many.passed and many.message == "expected at most 5 rows, found 6"
    assert not check(row_count(customers.iloc[:0], min=1)).passed


def test_row_count_argument_errors(customers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="min=10 is greater than max=5"):
        row_count(customers, min=10, max=5)
    with pytest.raises(ValueError, match="min=-1"):
        row_count(customers, min=-1)
    with pytest.raises(ValueError, match="give min and/or max"):
        row_count(customers)


# ----------------------------------------------------------------------------------------- drift


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def sample(rng: np.random.Generator, n: int = 2000, mean: float = 100.0, probabilities: Any = None) -> Any:
    return pd.DataFrame(
        {
            "spend": rng.normal(mean, 30.0, n),
            "segment": rng.choice(["new", "loyal", "lapsed"], n, p=probabilities or [0.5, 0.3, 0.2]),
        }
    )


def test_drift_without_reference_is_skipped_not_passed(rng: np.random.Generator) -> None:
    result = check(drift(sample(rng), None))
    assert result.skipped and result.status == "skipped" and result.failing is None
    assert bool(result)  # a skipped check does not fail the task
    assert result.message == "no reference to compare with (reference is None: no earlier successful run)"
    assert result.details == {"reference": None}


def test_drift_skips_id_like_columns_unless_asked(rng: np.random.Generator) -> None:
    reference = sample(rng, n=500).assign(
        customer_id=np.arange(1000, 1500), order_key=np.array([f"o-{i}" for i in range(500)], dtype=object)
    )
    current = sample(rng, n=400).assign(
        customer_id=np.arange(5000, 5400),  # new ids every run: would "drift" by KS
        order_key=pd.array([f"o-{i}" for i in range(1000, 1400)], dtype="str"),
    )
    result = check(drift(current, reference))
    assert result.passed and not result.skipped, result.message
    for column in ("customer_id", "order_key"):
        assert result.details[column] == {
            "method": None,
            "statistic": None,
            "p_value": None,
            "drifted": None,
            "skipped": True,
            "reason": "id-like: all values distinct",
        }
    assert result.message.startswith("no drift in 2 columns (")
    assert result.message.endswith(
        "; skipped 2 id-like columns (customer_id, order_key; all values distinct, "
        "pass columns= to compare them)"
    )
    # Listed explicitly, an id column is compared (and drifts); repeated integers are not id-like.
    assert not check(drift(current, reference, columns=["customer_id"])).passed
    shifted = check(
        drift(current.assign(store=np.arange(400) % 7), reference.assign(store=np.arange(500) % 7 + 3))
    )
    assert shifted.details["store"]["method"] == "ks" and shifted.details["store"]["drifted"] is True
    # Nothing left to compare: skipped, not passed.
    only_ids = check(drift(current[["customer_id"]], reference[["customer_id"]]))
    assert only_ids.skipped and only_ids.message.startswith("no columns to compare; skipped 1 id-like column")


def test_drift_same_distribution_passes(rng: np.random.Generator) -> None:
    result = check(drift(sample(rng), sample(rng)))
    assert result.passed, result.message
    assert result.failing is None
    assert set(result.details) == {"spend", "segment"}
    spend, segment = result.details["spend"], result.details["segment"]
    assert spend["method"] == "ks" and spend["drifted"] is False and spend["statistic"] < 0.1
    assert 0 < spend["p_value"] <= 1 and 0 <= spend["psi"] < 0.2
    assert segment == {"method": "psi", "statistic": segment["statistic"], "p_value": None, "drifted": False}
    assert segment["statistic"] < 0.05
    assert "no drift in 2 columns" in result.message


def test_drift_shifted_normal_fails_by_ks(rng: np.random.Generator) -> None:
    result = check(drift(sample(rng, mean=130.0), sample(rng)))  # +1 sd
    assert not result.passed
    spend = result.details["spend"]
    assert spend["method"] == "ks" and spend["drifted"] is True
    assert 0.3 < spend["statistic"] < 0.5  # the theoretical D is 0.383
    assert spend["p_value"] < 1e-6 and spend["psi"] > 0.2
    assert result.details["segment"]["drifted"] is False
    assert result.message.startswith("drift in 1 of 2 columns: spend (KS D=0.")
    assert "> 0.1)" in result.message and "segment" not in result.message


def test_drift_ks_statistic_matches_scipy(rng: np.random.Generator) -> None:
    stats = pytest.importorskip("scipy.stats")
    current, reference = rng.normal(0, 1, 300), rng.normal(0.2, 1.5, 700)
    result = drift(pd.DataFrame({"x": current}), pd.DataFrame({"x": reference}))
    expected = stats.ks_2samp(current, reference)
    assert result.details["x"]["statistic"] == pytest.approx(expected.statistic)
    assert result.details["x"]["p_value"] == pytest.approx(expected.pvalue)


def test_drift_categorical_proportions_fail_by_psi_and_noise_passes(rng: np.random.Generator) -> None:
    reference = sample(rng, n=5000)
    noisy = check(drift(sample(rng, n=5000, probabilities=[0.48, 0.32, 0.2]), reference))
    assert noisy.passed, noisy.message
    assert noisy.details["segment"]["statistic"] < 0.02

    changed = check(drift(sample(rng, n=5000, probabilities=[0.1, 0.3, 0.6]), reference))
    assert not changed.passed
    segment = changed.details["segment"]
    assert segment["method"] == "psi" and segment["drifted"] is True and segment["statistic"] > 0.5
    assert changed.details["spend"]["drifted"] is False
    assert "segment (PSI=" in changed.message and "> 0.2)" in changed.message


def test_drift_psi_value_epsilon_and_null_category() -> None:
    reference = pd.DataFrame({"c": ["a"] * 90 + ["b"] * 10})
    current = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    expected = (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1)
    assert drift(current, reference).details["c"]["statistic"] == pytest.approx(expected)

    new_category = drift(pd.DataFrame({"c": ["a"] * 99 + ["z"]}), pd.DataFrame({"c": ["a"] * 100}))
    statistic = new_category.details["c"]["statistic"]
    assert math.isfinite(statistic)
    assert statistic == pytest.approx(
        (0.01 - PSI_EPSILON) * math.log(0.01 / PSI_EPSILON) + (0.99 - 1.0) * math.log(0.99)
    )

    half_null = pd.DataFrame({"c": ["a", None] * 50})
    result = check(drift(half_null, reference.assign(c="a")))
    assert result.details["c"]["drifted"] is True  # null is a category of its own
    bools = check(drift(pd.DataFrame({"b": [True] * 10}), pd.DataFrame({"b": [True, False] * 5})))
    assert bools.details["b"]["method"] == "psi" and bools.details["b"]["drifted"] is True


def test_drift_added_removed_and_selected_columns(rng: np.random.Generator) -> None:
    reference = sample(rng).assign(old=1)
    current = sample(rng).assign(new="x")
    result = check(drift(current, reference))
    assert not result.passed
    assert list(result.details) == ["spend", "segment", "new", "old"]
    assert result.details["new"] == {
        "method": None,
        "statistic": None,
        "p_value": None,
        "drifted": True,
        "reason": "column added",
    }
    assert result.details["old"]["reason"] == "column removed"
    assert result.message == "drift in 2 of 4 columns: new (column added), old (column removed)"

    selected = check(drift(current, reference, columns=["spend"]))
    assert selected.passed and list(selected.details) == ["spend"]
    assert not check(drift(current, reference, columns="old")).passed
    with pytest.raises(ValueError, match=r"unknown column 'nope'.*available columns: 'spend', 'segment'"):
        drift(current, reference, columns=["nope"])


def test_drift_thresholds_type_changes_and_datetimes(rng: np.random.Generator) -> None:
    current, reference = sample(rng, mean=110.0), sample(rng)
    assert not drift(current, reference).passed
    assert drift(current, reference, ks_threshold=0.5).passed
    changed = check(drift(current.assign(spend=current["spend"].astype(str)), reference))
    assert changed.details["spend"]["drifted"] is True
    assert changed.details["spend"]["reason"] == "type changed from float64 to str"

    days = pd.date_range("2024-01-01", periods=500, freq="h")
    same = check(drift(pd.DataFrame({"at": days.as_unit("s")}), pd.DataFrame({"at": days.as_unit("ns")})))
    assert same.details["at"]["method"] == "ks" and same.details["at"]["statistic"] == 0.0
    later = check(drift(pd.DataFrame({"at": days + pd.Timedelta(days=30)}), pd.DataFrame({"at": days})))
    assert later.details["at"]["drifted"] is True


def test_drift_argument_errors(rng: np.random.Generator) -> None:
    frame = sample(rng, n=10)
    with pytest.raises(ValueError, match="psi_threshold=0"):
        drift(frame, frame, psi_threshold=0)
    with pytest.raises(ValueError, match=r"ks_threshold=-0\.1"):
        drift(frame, frame, ks_threshold=-0.1)
    with pytest.raises(ValueError, match="bins=1"):
        drift(frame, frame, bins=1)
    with pytest.raises(TypeError, match="reference must be a pandas DataFrame"):
        drift(frame, [1, 2])  # type: ignore[arg-type]


def test_drift_with_nulls_and_empty_frames(rng: np.random.Generator) -> None:
    reference = sample(rng, n=200)
    with_nulls = reference.copy()
    with_nulls.loc[::4, "spend"] = np.nan
    assert check(drift(with_nulls, reference)).details["spend"]["drifted"] is False  # KS over non-nulls

    empty = check(drift(reference.iloc[:0], reference))
    assert not empty.passed
    assert empty.details["spend"]["reason"] == "no non-null values in current"
    assert empty.details["segment"]["reason"] == "no rows in current"
    both_empty = check(drift(reference.iloc[:0], reference.iloc[:0]))
    assert both_empty.passed and both_empty.details["spend"]["drifted"] is False
    all_null = check(drift(pd.DataFrame({"spend": [None, None]}), reference[["spend"]]))
    assert all_null.details["spend"] == {
        "method": "ks",
        "statistic": None,
        "p_value": None,
        "psi": None,
        "drifted": True,
        "reason": "no non-null values in current",
    }
    assert check(drift(pd.DataFrame(), pd.DataFrame())).passed
    lists = check(drift(pd.DataFrame({"l": [[1], [2], None]}), pd.DataFrame({"l": [[1], [1], [2]]})))
    assert lists.details["l"]["method"] == "psi" and lists.details["l"]["drifted"] is True
    constant = check(drift(pd.DataFrame({"x": [1.0] * 5}), pd.DataFrame({"x": [1.0] * 5})))
    assert constant.passed and constant.details["x"]["psi"] == 0.0


# ------------------------------------------------------------------------------------- freshness


def test_freshness_passes_and_fails() -> None:
    ok = check(freshness(NOW - timedelta(hours=2), max_age=timedelta(days=1), now=NOW))
    assert ok.passed and ok.failing is None
    assert ok.details == {
        "age_seconds": 7200.0,
        "max_age_seconds": 86400.0,
        "created_at": "2024-06-01T10:00:00+00:00",
        "now": "2024-06-01T12:00:00+00:00",
    }
    assert ok.message == "produced 2h ago (2024-06-01T10:00:00+00:00), within 1d"

    stale = check(freshness("2024-05-20T00:00:00Z", 7 * 86400, now=NOW))
    assert not stale.passed
    assert stale.details["age_seconds"] == 12.5 * 86400
    assert stale.message == "produced 12d 12h ago (2024-05-20T00:00:00+00:00), expected within 7d"


def test_freshness_never_produced_naive_pendulum_and_future() -> None:
    never = check(freshness(None, max_age=timedelta(days=7), now=NOW))
    assert not never.passed and never.details["age_seconds"] is None and never.details["created_at"] is None
    assert never.message == "never produced (no creation time), expected within 7d"
    naive = check(freshness(datetime(2024, 6, 1, 11, 0), 3600, now=NOW))  # naive = UTC
    assert naive.passed and naive.details["age_seconds"] == 3600.0
    assert check(freshness(pendulum.datetime(2024, 6, 1, 13, 0, tz="Europe/Paris"), 3600, now=NOW)).passed
    future = check(freshness(NOW + timedelta(minutes=5), 60, now=NOW))
    assert future.passed and future.details["age_seconds"] == -300.0 and "in the future" in future.message
    assert check(freshness(datetime.now(timezone.utc), timedelta(minutes=5))).passed


def test_freshness_argument_errors() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        freshness(NOW, -1, now=NOW)
    with pytest.raises(ValueError, match="timedelta or a number of seconds"):
        freshness(NOW, "1 day", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="created_at='yesterday-ish' is not an ISO 8601 timestamp"):
        freshness("yesterday-ish", 60, now=NOW)
    with pytest.raises(ValueError, match="created_at must be a datetime"):
        freshness(1717243200, 60, now=NOW)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- combine


def test_combine_with_skipped_members(rng: np.random.Generator, customers: pd.DataFrame) -> None:
    skipped = drift(sample(rng), None)
    passed = row_count(customers, min=1)
    failed = row_count(customers, max=1)

    all_skipped = check(CheckResult.combine({"a": skipped, "b": CheckResult.skip("nothing to compare")}))
    assert all_skipped.skipped and all_skipped.status == "skipped"
    assert all_skipped.message.startswith("a skipped: no reference") and "b skipped: nothing to compare" in (
        all_skipped.message
    )

    some = check(CheckResult.combine({"drift": skipped, "size": passed}))
    assert some.passed and not some.skipped  # a real pass, the skipped member named
    assert some.message.startswith("1 of 2 checks passed; drift skipped: no reference")
    assert some.details["drift"]["status"] == "skipped" and some.details["drift"]["passed"] is None
    assert some.details["size"]["status"] == "ok"

    failing = check(CheckResult.combine({"drift": skipped, "size": failed}))
    assert not failing.passed and failing.status == "failed"
    assert failing.message.startswith("size: expected at most 1 rows") and "drift skipped" in failing.message

    assert CheckResult.combine({}).skipped
    with pytest.raises(ValueError, match="needs a reason"):
        CheckResult.skip("  ")
    with pytest.raises(ValueError, match="cannot also have failed"):
        CheckResult(False, "x", skipped=True)


def test_results_combine_into_one(customers: pd.DataFrame) -> None:
    combined = CheckResult.combine(
        {
            "ids": unique(customers, "customer_id"),
            "ages": in_range(customers, "age", min=18, max=120),
            "size": row_count(customers, min=1),
        }
    )
    assert not combined.passed
    assert combined.message.startswith("ages: age: expected values in [18, 120]")
    assert list(combined.failing.index) == [11, 14] and combined.failing_count == 2
    assert_plain(combined.details)
