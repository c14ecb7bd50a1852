"""Built-in data checks to call inside ``@ml.check`` tasks (exposed as ``ml.checks``).

Each function is pure (pandas/numpy; scipy only for an optional KS p-value) and returns a
:class:`~airflow_mlops_provider.checks.result.CheckResult` with a one-line message naming the
column(s), what was expected and what was found, the failing rows of the input DataFrame (row-level
checks), their count, and small JSON-able details. Combine several with :meth:`CheckResult.combine`.

Wrong arguments (unknown column, ``min > max``, empty allowed set...) raise :class:`ValueError`; an
input that is not a DataFrame raises :class:`TypeError`. Nulls are only judged by :func:`not_null`:
the other row-level checks ignore them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from airflow_mlops_provider.checks.result import CheckResult

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

__all__ = [
    "BUILTIN_CHECKS",
    "PSI_EPSILON",
    "allowed_values",
    "drift",
    "freshness",
    "has_columns",
    "in_range",
    "not_null",
    "row_count",
    "unique",
]

#: Proportion used for a bucket that is empty in one of the two samples, so PSI stays finite.
PSI_EPSILON = 1e-4
_MAX_LISTED = 20  # values listed in details
_MAX_SHOWN = 5  # values shown in a message
_MAX_COLUMNS_SHOWN = 10


# --------------------------------------------------------------------------------------- helpers


def _require_frame(df: Any, func: str, arg: str = "df") -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{func}: {arg} must be a pandas DataFrame, got {type(df).__qualname__}.")
    return df


def _shorten(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _names(columns: Iterable[Hashable], limit: int = _MAX_COLUMNS_SHOWN) -> str:
    return _shorten([str(c) for c in columns], limit)


def _as_list(columns: Any, func: str, arg: str = "columns") -> list[Hashable]:
    """A column name or a list of names -> a list without repeats; an empty list is an error."""
    if isinstance(columns, (list, tuple, set, frozenset, pd.Index, np.ndarray)):
        names = list(dict.fromkeys(columns))
    else:
        names = [columns]
    if not names:
        raise ValueError(f"{func}: {arg} is empty; give at least one column name.")
    return names


def _known(df: pd.DataFrame, columns: list[Hashable], func: str, arg: str = "columns") -> list[Hashable]:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        available = _shorten([repr(c) for c in df.columns], 50) or "none"
        raise ValueError(
            f"{func}: unknown column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} in {arg}; available columns: {available}."
        )
    return columns


def _column(df: pd.DataFrame, name: Hashable) -> pd.Series:
    """The column ``name`` (the first one if the frame repeats the name)."""
    column = df[name]
    return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column


def _rows(df: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The rows where ``mask`` is true, by position (safe with a repeated index)."""
    return df.iloc[np.flatnonzero(mask)]


def _mask(values: Any) -> np.ndarray:
    """A boolean numpy mask from a (possibly nullable) boolean Series; missing -> False."""
    if isinstance(values, pd.Series):
        values = values.fillna(False) if values.hasnans else values
        return values.to_numpy(dtype=bool)
    return np.asarray(values, dtype=bool)


def _is_null_scalar(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(ptypes.is_scalar(value) and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A JSON-able Python value: no numpy scalars, no NaN/inf (None), timestamps as ISO strings."""
    if _is_null_scalar(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(pd.Timedelta(value))
    return str(value)


def _fmt(value: Any) -> str:
    """A value for a message: numbers compactly, strings quoted."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _row_result(
    df: pd.DataFrame, mask: np.ndarray, passed_message: str, failed_message: str, details: dict[str, Any]
) -> CheckResult:
    failing = _rows(df, mask)
    return CheckResult(
        passed=not len(failing),
        message=failed_message if len(failing) else passed_message,
        failing=failing,
        failing_count=len(failing),
        details=details,
    )


# ----------------------------------------------------------------------------------- has_columns


def _is_string_like(series: pd.Series) -> bool:
    dtype = series.dtype
    if ptypes.is_object_dtype(dtype):
        return ptypes.infer_dtype(series, skipna=True) in ("string", "empty")
    return ptypes.is_string_dtype(dtype)


_KINDS: dict[str, Callable[[pd.Series], bool]] = {
    "numeric": lambda s: ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype),
    "integer": lambda s: ptypes.is_integer_dtype(s.dtype),
    "float": lambda s: ptypes.is_float_dtype(s.dtype),
    "datetime": lambda s: ptypes.is_datetime64_any_dtype(s.dtype),
    "bool": lambda s: ptypes.is_bool_dtype(s.dtype),
    "string": _is_string_like,
    "str": _is_string_like,
    "object": lambda s: ptypes.is_object_dtype(s.dtype) or ptypes.is_string_dtype(s.dtype),
}


def _dtype_matcher(column: Hashable, expected: Any) -> tuple[str, Callable[[pd.Series], bool]]:
    """(how the expectation is shown, a predicate on the column) for one expected dtype."""
    if expected is str:
        expected = "str"
    if isinstance(expected, str) and expected.strip().lower() in _KINDS:
        kind = expected.strip().lower()
        return kind, _KINDS[kind]
    try:
        want = ptypes.pandas_dtype(expected)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"has_columns: unknown dtype {expected!r} for column {column!r}; use a pandas dtype "
            "('int64', 'float64', 'category', 'datetime64[ns, UTC]'...) or one of the kinds "
            f"{', '.join(_KINDS)}."
        ) from err

    def matches(series: pd.Series) -> bool:
        actual = series.dtype
        if isinstance(want, pd.CategoricalDtype) and want.categories is None:
            return isinstance(actual, pd.CategoricalDtype)
        if want.kind in "mM" and actual.kind == want.kind:
            # the unit (ns/us/ms/s) is an implementation detail; the time zone is not
            return str(getattr(actual, "tz", None)) == str(getattr(want, "tz", None))
        return bool(actual == want)

    return (expected if isinstance(expected, str) else str(want)), matches


def has_columns(df: pd.DataFrame, columns: list[Hashable] | Mapping[Hashable, Any]) -> CheckResult:
    """Check the schema: the columns exist and, when given as a dict, have the expected dtypes.

    Use it first in a check task, so a renamed or retyped upstream column fails with a clear
    message instead of a ``KeyError`` further down.

    :param columns: a list of names, or a dict ``name -> dtype``. A dtype is a pandas dtype string
        (``"int64"``, ``"float64"``, ``"category"``, ``"datetime64[ns, UTC]"``...; datetime units are
        not compared, time zones are) or a kind: ``"numeric"`` (not bool), ``"integer"``, ``"float"``,
        ``"datetime"``, ``"bool"``, ``"string"``/``"str"`` (string dtype, or object holding only
        strings) or ``"object"`` (object or string dtype); ``None`` only checks presence.

    Not row-level: ``failing`` and ``failing_count`` are None; ``details`` lists ``missing`` columns and
    ``mismatched`` ones (``{column: {"expected", "found"}}``).
    """
    _require_frame(df, "has_columns")
    if isinstance(columns, Mapping):
        expected: dict[Hashable, Any] = dict(columns)
        if not expected:
            raise ValueError("has_columns: columns is empty; give at least one column name.")
    else:
        expected = dict.fromkeys(_as_list(columns, "has_columns"))
    matchers = {
        column: _dtype_matcher(column, dtype) for column, dtype in expected.items() if dtype is not None
    }
    missing = [column for column in expected if column not in df.columns]
    mismatched = {
        column: (shown, str(_column(df, column).dtype))
        for column, (shown, matches) in matchers.items()
        if column in df.columns and not matches(_column(df, column))
    }
    details = {
        "missing": [str(c) for c in missing],
        "mismatched": {str(c): {"expected": e, "found": f} for c, (e, f) in mismatched.items()},
    }
    if not missing and not mismatched:
        shown = [f"{c} ({matchers[c][0]})" if c in matchers else str(c) for c in expected]
        return CheckResult(True, f"columns present as expected: {_shorten(shown, 10)}", details=details)
    problems = []
    if missing:
        problems.append(
            f"missing {'columns' if len(missing) > 1 else 'column'} {_names(missing)} "
            f"(available: {_names(df.columns) or 'none'})"
        )
    if mismatched:
        problems.append(
            "dtype mismatch: " + ", ".join(f"{c} expected {e}, found {f}" for c, (e, f) in mismatched.items())
        )
    return CheckResult(False, "; ".join(problems), details=details)


# ------------------------------------------------------------------------------ row-level checks


def not_null(df: pd.DataFrame, columns: Hashable | list[Hashable] | None = None) -> CheckResult:
    """Check that the columns (all of them if ``columns`` is None) hold no nulls (None, NaN, NaT, NA).

    ``failing`` holds every row with a null in any of the columns; ``details["null_counts"]`` counts
    the nulls of each column that has some.
    """
    _require_frame(df, "not_null")
    if columns is None:
        names = list(dict.fromkeys(df.columns))
    else:
        names = _known(df, _as_list(columns, "not_null"), "not_null")
    nulls = df[names].isna() if names else pd.DataFrame(index=df.index)
    per_column = {str(c): int(n) for c, n in nulls.sum().items() if n}
    mask = nulls.any(axis=1).to_numpy(dtype=bool) if names else np.zeros(len(df), dtype=bool)
    where = _names(names) if names else "no columns"
    counts = ", ".join(f"{c} {n}" for c, n in per_column.items())
    return _row_result(
        df,
        mask,
        f"no nulls in {where} ({_count(len(df), 'row')})",
        f"expected no nulls in {where}, found {_count(int(mask.sum()), 'row')} with nulls ({counts})",
        {"null_counts": per_column, "rows": len(df)},
    )


def unique(df: pd.DataFrame, columns: Hashable | list[Hashable]) -> CheckResult:
    """Check that no two rows share a value of ``columns`` (one column, or a combination).

    Use it for keys. ``failing`` holds every row involved in a duplicate (all copies, not only the
    second ones). Rows with a null in any of the columns are ignored (as SQL UNIQUE does; nulls are
    :func:`not_null`'s job).
    """
    _require_frame(df, "unique")
    names = _known(df, _as_list(columns, "unique"), "unique")
    keys = df[names]
    complete = keys.notna().all(axis=1).to_numpy(dtype=bool)
    mask = keys.duplicated(keep=False).to_numpy(dtype=bool) & complete
    duplicated = keys[mask].drop_duplicates()
    values = [
        str(row[0]) if len(names) == 1 else str(tuple(row))
        for row in duplicated.head(_MAX_LISTED).itertuples(index=False, name=None)
    ]
    what = str(names[0]) if len(names) == 1 else f"({_names(names)}) combinations"
    kind = "value" if len(names) == 1 else "combination"
    shown = _shorten(values, _MAX_SHOWN)
    return _row_result(
        df,
        mask,
        f"no duplicates in {what} ({_count(int(complete.sum()), 'row')} checked)",
        f"expected unique {what}, found {_count(int(mask.sum()), 'row')} sharing "
        f"{_count(len(duplicated), f'duplicated {kind}')} (e.g. {shown})",
        {
            "duplicated_count": len(duplicated),
            "duplicated_values": values,
            "null_rows_ignored": int((~complete).sum()),
        },
    )


_INCLUSIVE = {True: (True, True), False: (False, False)} | {
    "both": (True, True),
    "neither": (False, False),
    "left": (True, False),
    "right": (False, True),
}


def _range_text(low: Any, high: Any, closed: tuple[bool, bool]) -> str:
    if low is not None and high is not None:
        return f"{'[' if closed[0] else '('}{_fmt(low)}, {_fmt(high)}{']' if closed[1] else ')'}"
    if low is not None:
        return f"{'>=' if closed[0] else '>'} {_fmt(low)}"
    return f"{'<=' if closed[1] else '<'} {_fmt(high)}"


def in_range(
    df: pd.DataFrame,
    column: Hashable,
    min: Any = None,
    max: Any = None,
    inclusive: bool | str = True,
) -> CheckResult:
    """Check that the values of ``column`` lie within ``min``/``max`` (either may be omitted).

    Works for any ordered dtype (numbers, datetimes with comparable bounds, strings). Nulls are
    ignored. ``inclusive`` is True/False or, as in ``Series.between``, ``"both"``, ``"neither"``,
    ``"left"`` or ``"right"``. ``details`` holds the observed min/max of the non-null values.
    """
    _require_frame(df, "in_range")
    _known(df, [column], "in_range", "column")
    if min is None and max is None:
        raise ValueError(f"in_range: give min and/or max for column {column!r}.")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and _is_null_scalar(bound):
            raise ValueError(f"in_range: {name} for column {column!r} is {bound!r}; use None for no bound.")
    if not isinstance(inclusive, (bool, str)) or inclusive not in _INCLUSIVE:
        raise ValueError(
            f"in_range: inclusive={inclusive!r}; use True, False, 'both', 'neither', 'left' or 'right'."
        )
    closed = _INCLUSIVE[inclusive]
    if min is not None and max is not None:
        try:
            empty = min > max or (min == max and not all(closed))
        except TypeError as err:
            raise ValueError(f"in_range: cannot compare min={min!r} with max={max!r}: {err}") from err
        if empty:
            raise ValueError(
                f"in_range: empty range {_range_text(min, max, closed)} for column {column!r} "
                "(min must not exceed max)."
            )
    series = _column(df, column)
    try:
        below = _mask(series < min if closed[0] else series <= min) if min is not None else None
        above = _mask(series > max if closed[1] else series >= max) if max is not None else None
    except TypeError as err:
        raise ValueError(
            f"in_range: cannot compare column {column!r} ({series.dtype}) with the bounds "
            f"min={min!r}, max={max!r}: {err}"
        ) from err
    values = series.dropna()
    try:
        low, high = (values.min(), values.max()) if len(values) else (None, None)
    except TypeError:
        low = high = None
    valid = series.notna().to_numpy(dtype=bool)
    below = (below if below is not None else np.zeros(len(series), dtype=bool)) & valid
    above = (above if above is not None else np.zeros(len(series), dtype=bool)) & valid
    mask = below | above
    wanted = _range_text(min, max, closed)
    expected = f"in {wanted}" if min is not None and max is not None else wanted
    observed = f"observed min {_fmt(low)}, max {_fmt(high)}" if len(values) else "no non-null values"
    return _row_result(
        df,
        mask,
        f"{column} values {expected} ({observed})",
        f"{column}: expected values {expected}, found {_count(int(mask.sum()), 'row')} outside ({observed})",
        {
            "observed_min": _plain(low),
            "observed_max": _plain(high),
            "min": _plain(min),
            "max": _plain(max),
            "inclusive": inclusive,
            "below_min": int(below.sum()),
            "above_max": int(above.sum()),
        },
    )


def allowed_values(df: pd.DataFrame, column: Hashable, values: Iterable[Any]) -> CheckResult:
    """Check that every non-null value of ``column`` is one of ``values`` (an enum / category set).

    ``failing`` holds the rows with an unexpected value; ``details["unexpected_values"]`` lists up to
    20 of those values as strings, most frequent first, and ``details["unexpected_count"]`` how many
    distinct unexpected values there are. Nulls are ignored.
    """
    _require_frame(df, "allowed_values")
    _known(df, [column], "allowed_values", "column")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(
            f"allowed_values: values for column {column!r} must be a list or set of values, got {values!r}."
        )
    allowed = list(dict.fromkeys(values))
    if not allowed:
        raise ValueError(f"allowed_values: the allowed set for column {column!r} is empty.")
    series = _column(df, column)
    mask = series.notna().to_numpy(dtype=bool) & ~_mask(series.isin(allowed))
    counts = series[mask].value_counts(sort=False, dropna=True)
    ranked = sorted(((value, int(n)) for value, n in counts.items() if n), key=lambda item: -item[1])
    unexpected = [str(value) for value, _ in ranked[:_MAX_LISTED]]
    shown = _shorten([f"{_fmt(value)} ({n})" for value, n in ranked], _MAX_SHOWN)
    expected = "{" + _shorten([_fmt(v) for v in allowed], 10) + "}"
    return _row_result(
        df,
        mask,
        f"{column} values all in {expected}",
        f"{column}: expected values in {expected}, found {_count(int(mask.sum()), 'row')} with "
        f"{_count(len(ranked), 'unexpected value')}: {shown}",
        {"unexpected_values": unexpected, "unexpected_count": len(ranked)},
    )


# ---------------------------------------------------------------------------------- table checks


def _count_bound(value: Any, name: str) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value < 0:
        raise ValueError(f"row_count: {name}={value!r} must be a number of rows (>= 0) or None.")
    return int(value) if float(value).is_integer() else float(value)


def row_count(df: pd.DataFrame, min: int | None = None, max: int | None = None) -> CheckResult:
    """Check the number of rows, e.g. that an extract is not empty or truncated (``min``), or did not
    explode through a bad join (``max``)."""
    if not isinstance(df, (pd.DataFrame, pd.Series)):
        raise TypeError(f"row_count: df must be a pandas DataFrame, got {type(df).__qualname__}.")
    low, high = _count_bound(min, "min"), _count_bound(max, "max")
    if low is None and high is None:
        raise ValueError("row_count: give min and/or max.")
    if low is not None and high is not None and low > high:
        raise ValueError(f"row_count: min={low} is greater than max={high}.")
    rows = len(df)
    if low is not None and high is not None:
        expected = f"between {low} and {high} rows"
    else:
        expected = f"at least {low} rows" if low is not None else f"at most {high} rows"
    passed = (low is None or rows >= low) and (high is None or rows <= high)
    message = (
        f"{_count(rows, 'row')} (expected {expected})" if passed else f"expected {expected}, found {rows}"
    )
    return CheckResult(passed, message, details={"rows": rows, "min": low, "max": high})


# ----------------------------------------------------------------------------------------- drift


class _Null:
    """Null as its own category when comparing categorical distributions."""

    def __repr__(self) -> str:
        return "<null>"


_NULL = _Null()
_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _kind(series: pd.Series) -> str:
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return "categorical"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if ptypes.is_timedelta64_dtype(dtype):
        return "timedelta"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric"
    return "categorical"


def _numbers(series: pd.Series, kind: str) -> np.ndarray:
    """The non-null values as floats (datetimes as epoch seconds, timedeltas as seconds)."""
    values = series.dropna()
    if not len(values):
        return np.empty(0)
    if kind in ("datetime", "timedelta"):
        return values.astype("int64").to_numpy(dtype="float64") / _PER_SECOND[values.dt.unit]
    return values.to_numpy(dtype="float64")


def _psi(current: np.ndarray, reference: np.ndarray) -> float:
    """PSI of two count vectors over the same buckets (empty buckets count as ``PSI_EPSILON``)."""
    p = current / current.sum()
    q = reference / reference.sum()
    p = np.where(p > 0, p, PSI_EPSILON)
    q = np.where(q > 0, q, PSI_EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


def _ks_statistic(current: np.ndarray, reference: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov D: the largest gap between the two empirical CDFs."""
    x, y = np.sort(current), np.sort(reference)
    points = np.concatenate([x, y])
    gap = np.searchsorted(x, points, side="right") / len(x) - np.searchsorted(y, points, side="right") / len(
        y
    )
    return float(np.max(np.abs(gap)))


def _ks_pvalue(current: np.ndarray, reference: np.ndarray) -> float | None:
    try:
        from scipy import stats
    except ImportError:
        return None
    try:
        p_value = float(stats.ks_2samp(current, reference).pvalue)
    except Exception:
        return None
    return p_value if math.isfinite(p_value) else None


def _quantile_psi(current: np.ndarray, reference: np.ndarray, bins: int) -> float:
    """PSI over ``bins`` quantile bins of the reference (outer bins open-ended; tied edges merged)."""
    finite = reference[np.isfinite(reference)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))[1:-1]) if len(finite) else np.empty(0)
    buckets = len(edges) + 1
    counts_current = np.bincount(np.searchsorted(edges, current, side="right"), minlength=buckets)
    counts_reference = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=buckets)
    return _psi(counts_current.astype(float), counts_reference.astype(float))


def _category_counts(series: pd.Series) -> dict[Any, int]:
    values = series.astype(object)
    values = values.where(values.notna(), _NULL)
    try:
        return {key: int(n) for key, n in values.value_counts(sort=False).items()}
    except TypeError:  # unhashable values (lists, dicts): compare their text
        text = values.map(lambda v: v if v is _NULL else repr(v))
        return {key: int(n) for key, n in text.value_counts(sort=False).items()}


def _unusable(entry: dict[str, Any], n_current: int, n_reference: int, what: str) -> dict[str, Any]:
    """A column that cannot be compared because one side (or both) has no values."""
    if n_current or n_reference:
        side = "current" if not n_current else "reference"
        return entry | {"drifted": True, "reason": f"no {what} in {side}"}
    return entry | {"drifted": False, "reason": f"no {what} in either"}


def _drift_column(
    current: pd.Series, reference: pd.Series, psi_threshold: float, ks_threshold: float, bins: int
) -> dict[str, Any]:
    kind_current, kind_reference = _kind(current), _kind(reference)
    if kind_current != kind_reference:
        # an all-null column has an arbitrary dtype: judge it with the other side's kind
        if not current.notna().any():
            kind_current = kind_reference
        elif not reference.notna().any():
            kind_reference = kind_current
        else:
            return {
                "method": None,
                "statistic": None,
                "p_value": None,
                "drifted": True,
                "reason": f"type changed from {reference.dtype} to {current.dtype}",
            }
    if kind_current == "categorical":
        entry: dict[str, Any] = {"method": "psi", "statistic": None, "p_value": None}
        if not len(current) or not len(reference):
            return _unusable(entry, len(current), len(reference), "rows")
        counts_current, counts_reference = _category_counts(current), _category_counts(reference)
        categories = list(dict.fromkeys([*counts_reference, *counts_current]))
        psi = _psi(
            np.array([counts_current.get(c, 0) for c in categories], dtype=float),
            np.array([counts_reference.get(c, 0) for c in categories], dtype=float),
        )
        return entry | {"statistic": psi, "drifted": psi > psi_threshold}
    x, y = _numbers(current, kind_current), _numbers(reference, kind_reference)
    entry = {"method": "ks", "statistic": None, "p_value": None, "psi": None}
    if not len(x) or not len(y):
        return _unusable(entry, len(x), len(y), "non-null values")
    statistic = _ks_statistic(x, y)
    return entry | {
        "statistic": statistic,
        "p_value": _ks_pvalue(x, y),
        "psi": _quantile_psi(x, y, bins),
        "drifted": statistic > ks_threshold,
    }


#: A column needs at least this many non-null values in each frame to be taken as id-like.
ID_LIKE_MIN_VALUES = 20
ID_LIKE_REASON = "id-like: all values distinct"


def _id_like(series: pd.Series) -> bool:
    """An integer or text column whose non-null values are all distinct (an id, a key, a hash).

    Such a column drifts by construction (each run brings new ids), so comparing it says nothing.
    """
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or not (ptypes.is_integer_dtype(dtype) or _is_string_like(series)):
        return False
    values = series.dropna()
    return len(values) >= ID_LIKE_MIN_VALUES and bool(values.is_unique)


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"drift: {name}={value!r} must be a positive number.")
    return float(value)


def drift(
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    columns: Hashable | list[Hashable] | None = None,
    psi_threshold: float = 0.2,
    ks_threshold: float = 0.1,
    bins: int = 10,
) -> CheckResult:
    """Compare the distribution of each column of ``current`` with ``reference`` (usually the same
    task's output from the previous successful run, ``ml.previous_artifact(task_id)``).

    Categorical, string and bool columns use the Population Stability Index over their categories
    (null is a category; empty buckets count as ``PSI_EPSILON``) and drift if PSI > ``psi_threshold``.
    Numeric, datetime and timedelta columns use the two-sample Kolmogorov-Smirnov statistic D over
    the non-null values and drift if D > ``ks_threshold``; their details also report the KS p-value
    (when scipy is installed) and a PSI over ``bins`` quantile bins of the reference, for
    information only. A column in only one frame, or whose type changed (numeric <-> text), drifts.

    :param columns: the columns to compare (default: every column of either frame). Without it,
        id-like columns (integer or text columns whose values are all distinct in both frames, with
        at least ``ID_LIKE_MIN_VALUES`` values) are skipped: ids drift by construction. Columns
        listed in ``columns`` are always compared. Values that move by design (a label, event
        timestamps) drift too: leave them out, e.g. ``columns=[c for c in df.columns if c != "label"]``.

    ``details`` is ``{column: {"method": "psi"|"ks"|None, "statistic", "p_value", "drifted", ...}}``
    (``"reason"`` when the column could not be compared; ``"skipped": True`` with the reason for an
    id-like column); ``failing`` is None. Without a reference (``None``: no earlier successful run)
    the result is *skipped* with the reason, not passed; likewise when no column is left to compare.
    """
    if isinstance(current, pd.Series):
        current = current.to_frame()
    if isinstance(reference, pd.Series):
        reference = reference.to_frame()
    _require_frame(current, "drift", "current")
    psi_threshold = _positive(psi_threshold, "psi_threshold")
    ks_threshold = _positive(ks_threshold, "ks_threshold")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 2:
        raise ValueError(f"drift: bins={bins!r} must be an integer >= 2.")
    if reference is None:
        return CheckResult.skip(
            "no reference to compare with (reference is None: no earlier successful run)",
            details={"reference": None},
        )
    _require_frame(reference, "drift", "reference")
    everything = list(dict.fromkeys([*current.columns, *reference.columns]))
    if columns is None:
        names = everything
    else:
        names = _as_list(columns, "drift")
        unknown = [c for c in names if c not in current.columns and c not in reference.columns]
        if unknown:
            raise ValueError(
                f"drift: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                f" in columns (in neither frame); available columns: "
                f"{_shorten([repr(c) for c in everything], 50) or 'none'}."
            )
    details: dict[str, Any] = {}
    drifted: list[str] = []
    skipped: list[str] = []
    for name in names:
        if name not in reference.columns or name not in current.columns:
            added = name not in reference.columns
            entry: dict[str, Any] = {
                "method": None,
                "statistic": None,
                "p_value": None,
                "drifted": True,
                "reason": "column added" if added else "column removed",
            }
        elif columns is None and _id_like(_column(current, name)) and _id_like(_column(reference, name)):
            details[str(name)] = {
                "method": None,
                "statistic": None,
                "p_value": None,
                "drifted": None,
                "skipped": True,
                "reason": ID_LIKE_REASON,
            }
            skipped.append(str(name))
            continue
        else:
            entry = _drift_column(
                _column(current, name), _column(reference, name), psi_threshold, ks_threshold, bins
            )
        details[str(name)] = {key: _plain(value) for key, value in entry.items()}
        if entry["drifted"]:
            if entry.get("reason"):
                drifted.append(f"{name} ({entry['reason']})")
            elif entry["method"] == "ks":
                drifted.append(f"{name} (KS D={entry['statistic']:.3g} > {ks_threshold:g})")
            else:
                drifted.append(f"{name} (PSI={entry['statistic']:.3g} > {psi_threshold:g})")
    compared = len(names) - len(skipped)
    skip_note = (
        f"; skipped {_count(len(skipped), 'id-like column')} ({_names(skipped)}; all values distinct, "
        "pass columns= to compare them)"
        if skipped
        else ""
    )
    if not compared:
        return CheckResult.skip("no columns to compare" + skip_note, details=details)
    if drifted:
        listed = _shorten(drifted, _MAX_COLUMNS_SHOWN)
        message = f"drift in {len(drifted)} of {_count(compared, 'column')}: {listed}{skip_note}"
        return CheckResult(False, message, details=details)
    return CheckResult(
        True,
        f"no drift in {_count(compared, 'column')} "
        f"(KS D <= {ks_threshold:g} for numeric, PSI <= {psi_threshold:g} for categorical columns)"
        + skip_note,
        details=details,
    )


# ------------------------------------------------------------------------------------- freshness


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = pd.Timestamp(value)
        except ValueError as err:
            raise ValueError(f"freshness: {name}={value!r} is not an ISO 8601 timestamp.") from err
        if parsed is pd.NaT:
            raise ValueError(f"freshness: {name}={value!r} is not an ISO 8601 timestamp.")
        value = parsed.to_pydatetime()
    if not isinstance(value, datetime) or value is pd.NaT:
        raise ValueError(f"freshness: {name} must be a datetime or an ISO 8601 string, got {value!r}.")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)  # naive: taken as UTC, as Airflow does
    return value


def _duration(seconds: float) -> str:
    """``93784`` -> ``"1d 2h 3m 4s"``."""
    rest = round(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"


def freshness(
    created_at: datetime | str | None, max_age: timedelta | float, now: datetime | None = None
) -> CheckResult:
    """Check that something (a model, a table, an upstream run) was produced at most ``max_age`` ago.

    :param created_at: when it was produced: a datetime (naive ones are taken as UTC), an ISO 8601
        string, or None when it was never produced (fails).
    :param max_age: a ``timedelta`` or a number of seconds.
    :param now: the reference time (default: the current UTC time).
    """
    if isinstance(max_age, timedelta):
        limit = max_age.total_seconds()
    elif isinstance(max_age, numbers.Real) and not isinstance(max_age, bool):
        limit = float(max_age)
    else:
        raise ValueError(f"freshness: max_age must be a timedelta or a number of seconds, got {max_age!r}.")
    if not math.isfinite(limit) or limit < 0:
        raise ValueError(f"freshness: max_age={max_age!r} must be a non-negative duration.")
    current = _moment(now, "now") if now is not None else datetime.now(timezone.utc)
    details: dict[str, Any] = {
        "age_seconds": None,
        "max_age_seconds": limit,
        "created_at": None,
        "now": current.isoformat(),
    }
    if created_at is None or created_at is pd.NaT:
        return CheckResult(
            False, f"never produced (no creation time), expected within {_duration(limit)}", details=details
        )
    moment = _moment(created_at, "created_at")
    age = current.timestamp() - moment.timestamp()
    details |= {"age_seconds": age, "created_at": moment.isoformat()}
    if age < 0:
        found = f"produced {_duration(age)} in the future ({moment.isoformat()})"
    else:
        found = f"produced {_duration(age)} ago ({moment.isoformat()})"
    passed = age <= limit
    message = f"{found}, {'within' if passed else 'expected within'} {_duration(limit)}"
    return CheckResult(passed, message, details=details)


BUILTIN_CHECKS: dict[str, Callable[..., CheckResult]] = {
    "has_columns": has_columns,
    "not_null": not_null,
    "unique": unique,
    "in_range": in_range,
    "allowed_values": allowed_values,
    "row_count": row_count,
    "drift": drift,
    "freshness": freshness,
}
