"""Table previews of text columns: top values for pandas 3 ``str``, ``string`` and object columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.artifacts.previews import table_preview


@pytest.mark.parametrize(
    "dtype",
    ["str", pd.StringDtype(), pd.StringDtype("python"), object],
    ids=["str", "string", "python", "object"],
)
def test_text_columns_get_top_values_and_distinct_counts(dtype: object) -> None:
    values = ["b", "a", "c", None, "a", "b", "a"]  # a x3, b x2, c x1 and a null
    frame = pd.DataFrame({"city": pd.Series(values, dtype=dtype)})
    stats = table_preview(frame)["stats"]["city"]
    assert stats["nulls"] == 1 and stats["distinct"] == 3
    assert stats["top"] == [["a", 3], ["b", 2], ["c", 1]]
    json.dumps(stats, allow_nan=False)


def test_top_values_are_the_five_most_frequent_ties_in_order_of_appearance() -> None:
    # What read_sql returns under pandas 3: a str column.
    values = [f"v{i}" for i in range(8)] + ["v7", "v7", "v3"]
    stats = table_preview(pd.DataFrame({"k": pd.Series(values, dtype="str")}))["stats"]["k"]
    assert stats["distinct"] == 8
    assert stats["top"] == [["v7", 3], ["v3", 2], ["v0", 1], ["v1", 1], ["v2", 1]]
    ids = table_preview(pd.DataFrame({"id": np.array([f"id-{i}" for i in range(1000)], dtype=object)}))
    assert ids["stats"]["id"]["distinct"] == 1000 and ids["stats"]["id"]["top"][0] == ["id-0", 1]


def test_large_columns_are_counted_on_a_sample_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting a million distinct strings costs more than writing them: above SAMPLE_ROWS rows the
    top values, distinct counts and histogram counts come from a stratified sample, recorded with
    the entry; nulls, min, max, mean and std still cover every row."""
    from airflow_mlops_provider.artifacts import previews

    monkeypatch.setattr(previews, "SAMPLE_ROWS", 100)
    n = 1000
    frame = pd.DataFrame(
        {
            "id": pd.Series([f"id-{i}" for i in range(n)], dtype="str"),
            "kind": pd.Series(["a" if i % 10 else None for i in range(n)], dtype="str"),
            "x": np.arange(n, dtype="float64"),
            "grade": pd.Categorical([None if i % 4 == 0 else "abc"[i % 3] for i in range(n)]),
        }
    )
    stats = table_preview(frame)["stats"]
    # A categorical column: nulls over every row, its top values counted on the sample.
    assert stats["grade"]["nulls"] == 250 and stats["grade"]["sampled_rows"] == 100
    sample = frame["grade"].iloc[previews._sample_positions(n, 100)]
    expected = sample.value_counts(dropna=True)
    assert stats["grade"]["top"] == [[label, int(expected[label])] for label in expected.index]
    assert stats["id"]["sampled_rows"] == 100 and stats["id"]["distinct"] == 100
    top = [int(name.removeprefix("id-")) for name, count in stats["id"]["top"] if count == 1]
    assert [i // 10 for i in top] == [0, 1, 2, 3, 4]  # one row from each tenth-of-a-stratum, in order
    assert stats["kind"]["nulls"] == 100  # every row
    assert stats["x"]["max"] == n - 1 and stats["x"]["mean"] == (n - 1) / 2  # every row
    histogram = stats["x"]["histogram"]  # over the whole range, counting the sample's rows
    assert histogram["edges"][0] == 0 and histogram["edges"][-1] == n - 1 and sum(histogram["counts"]) == 100
    assert stats["x"]["sampled_rows"] == 100
    small = table_preview(frame.head(100))["stats"]
    assert "sampled_rows" not in small["id"] and small["id"]["distinct"] == 100


def test_a_sample_does_not_alias_with_periodic_rows() -> None:
    """Evenly spaced rows of periodic data are all alike: 1.2M hourly readings sampled every 12th
    row see two hours of the day, an alternating column reads 60/40. One row drawn in each stratum
    keeps the sample's shares near the table's, and the same table always gets the same preview."""
    from airflow_mlops_provider.artifacts.previews import SAMPLE_ROWS

    n = 1_200_000
    hours = np.arange(n) % 24
    frame = pd.DataFrame(
        {"hour": hours.astype("float64"), "side": pd.Categorical(np.where(np.arange(n) % 2, "b", "a"))}
    )
    preview = table_preview(frame)
    side = dict(preview["stats"]["side"]["top"])
    assert abs(side["a"] - SAMPLE_ROWS / 2) < SAMPLE_ROWS * 0.01, side
    counts = preview["stats"]["hour"]["histogram"]["counts"]  # 10 bins over 0-23: 2 or 3 hours each
    edges = preview["stats"]["hour"]["histogram"]["edges"]
    for count, low, high in zip(counts, edges, edges[1:], strict=False):
        hours_in_bin = sum(1 for h in range(24) if low <= h < high or (h == 23 and high == 23))
        assert abs(count - SAMPLE_ROWS * hours_in_bin / 24) < SAMPLE_ROWS * 0.01, (counts, edges)
    assert table_preview(frame)["stats"] == preview["stats"]


def test_numeric_columns_get_a_histogram_of_their_finite_values() -> None:
    values = np.concatenate([np.arange(90, dtype="float64"), [np.nan, np.inf], np.full(8, 89.0)])
    stats = table_preview(pd.DataFrame({"x": values}))["stats"]["x"]
    histogram = stats["histogram"]
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1 == 11
    assert histogram["edges"][0] == 0.0 and histogram["edges"][-1] == 89.0
    assert sum(histogram["counts"]) == 98  # NaN and inf are not counted
    assert histogram["counts"][-1] == 9 + 8  # the last bin holds its right edge
    constant = table_preview(pd.DataFrame({"c": [2.5] * 4}))["stats"]["c"]["histogram"]
    assert constant["counts"] == [4] and constant["edges"][0] == 2.5
    huge = table_preview(pd.DataFrame({"h": [1e308, -1e308]}))["stats"]["h"]
    assert "histogram" not in huge  # the range overflows: no bins rather than wrong ones
    json.dumps(stats, allow_nan=False)


@pytest.mark.parametrize("seed", range(20))
def test_histograms_count_exactly_as_numpy_does(seed: int) -> None:
    """The bins are counted with ``searchsorted``; each count must equal ``numpy.histogram``'s,
    values on an edge included (integers, repeated values and edge values are the hard cases)."""
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [rng.standard_normal(300) * 10.0 ** rng.integers(-3, 6), rng.integers(-7, 7, 200).astype(float)]
    )
    edges = np.linspace(values.min(), values.max(), 11)
    near = np.concatenate([np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    values = np.concatenate([values, edges, near.clip(values.min(), values.max())])  # on and by edges
    histogram = table_preview(pd.DataFrame({"x": values}))["stats"]["x"]["histogram"]
    counts, edges = np.histogram(values, bins=10)
    assert histogram["counts"] == counts.tolist()
    assert histogram["edges"] == edges.tolist()


@pytest.mark.parametrize("seed", range(12))
def test_numeric_statistics_are_numpys_over_the_finite_values(seed: int) -> None:
    """min, max, mean and std are numpy's to the bit, over the finite values only, whatever the mix
    of NaN, infinities, magnitudes and integer or nullable dtypes; a sum that overflows leaves mean
    and std out instead of showing infinity."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 12) + rng.choice([0.0, 1e6, -3.5])
    special = rng.random(n)
    values[special < 0.05 * (seed % 3)] = np.nan
    values[(special > 0.99) & (seed % 2 == 1)] = np.inf
    values[(special > 0.985) & (special <= 0.99) & (seed % 4 == 1)] = -np.inf
    finite = values[np.isfinite(values)]
    columns = {
        "x": pd.Series(values),
        "nullable": pd.Series(values).astype("Float64"),  # NaN becomes a missing value
        "ints": pd.Series(rng.integers(-(2**40), 2**40, n)),
    }
    stats = table_preview(pd.DataFrame(columns))["stats"]
    for name in ("x", "nullable"):
        entry = stats[name]
        assert entry["nulls"] == int(np.isnan(values).sum())
        if not finite.size:
            assert "min" not in entry
            continue
        assert entry["min"] == finite.min() and entry["max"] == finite.max()
        assert entry["mean"] == finite.mean()
        assert entry["std"] == finite.std()
    ints = columns["ints"].to_numpy().astype("float64")
    assert stats["ints"]["mean"] == ints.mean()
    assert stats["ints"]["std"] == ints.std()
    overflow = table_preview(pd.DataFrame({"h": [1.7e308, 1.7e308, 1.0]}))["stats"]["h"]
    assert overflow["max"] == 1.7e308 and overflow["mean"] is None and overflow["std"] is None


@pytest.mark.parametrize(("offset", "spread"), [(0.0, 1.0), (1e9, 1e-3), (-3.5, 1e160)])
def test_the_std_of_a_long_column_is_numpys_within_rounding(offset: float, spread: float) -> None:
    """Past one block of the variance's deviations, the blocks' sums add up to numpy's std within
    rounding, even far from zero; a variance past float64's range leaves the std out (numpy: inf)."""
    from airflow_mlops_provider.artifacts import previews

    rng = np.random.default_rng(7)
    values = offset + spread * rng.standard_normal(3 * previews._VARIANCE_BLOCK + 11)
    entry = table_preview(pd.DataFrame({"x": values}))["stats"]["x"]
    assert entry["mean"] == values.mean()
    with np.errstate(over="ignore"):
        expected = values.std()
    if np.isinf(expected):
        assert entry["std"] is None
    else:
        assert entry["std"] == pytest.approx(expected, rel=1e-13)


def test_columns_that_numbers_cannot_summarize_keep_the_rest_of_the_preview() -> None:
    """A one-row column of a huge value (its bin cannot be 1 wide) used to fail the whole preview;
    complex numbers used to be summarized by their real part alone."""
    frame = pd.DataFrame({"huge": [1e300], "z": [1 + 2j], "x": [1.5]})
    stats = table_preview(frame)["stats"]
    assert stats["huge"]["histogram"]["counts"] == [1] and stats["huge"]["min"] == 1e300
    assert stats["huge"]["histogram"]["edges"][1] > 1e300
    assert stats["z"] == {"dtype": "complex128", "nulls": 0}  # no min/mean of the real part alone
    assert stats["x"]["mean"] == 1.5


def test_a_stored_preview_is_bounded_by_halving_its_rows() -> None:
    from airflow_mlops_provider.artifacts.previews import MAX_PREVIEW_BYTES, MAX_ROWS, encode

    wide = pd.DataFrame({f"c{i}": ["é" * 400] * 100 for i in range(60)})  # cells cut at 200 chars
    preview = table_preview(wide)
    assert len(preview["head"]) == MAX_ROWS
    stored = json.loads(encode(preview))
    assert len(encode(preview)) <= MAX_PREVIEW_BYTES
    assert 0 < len(stored["head"]) < MAX_ROWS and stored["head"] == preview["head"][: len(stored["head"])]
    assert stored["rows"] == 100 and stored["stats"] == preview["stats"]
    small = table_preview(wide.iloc[:, :2])
    assert json.loads(encode(small))["head"] == small["head"]  # what fits is stored whole


def test_two_runs_of_a_table_compare_from_their_previews() -> None:
    from airflow_mlops_provider.artifacts.previews import compare_tables

    before = pd.DataFrame({"id": range(4), "city": ["a", "a", "b", None], "score": [1.0, 2.0, 3.0, 4.0]})
    after = pd.DataFrame(
        {
            "id": [0.5, 1, 2, 3, 4],
            "city": ["c", "c", "c", "a", "b"],
            "score": [1.0, 2.0, 3.0, 4.0, 5.0],
            "new": 1,
        }
    )
    diff = compare_tables(table_preview(before), table_preview(after))
    assert diff["rows"] == {"before": 4, "after": 5, "delta": 1}
    assert diff["added"] == [{"name": "new", "dtype": "int64"}] and diff["removed"] == []
    assert diff["retyped"] == [{"name": "id", "before": "int64", "after": "float64"}]
    city = diff["columns"]["city"]
    assert city["null_rate"] == {"before": 0.25, "after": 0.0, "delta": -0.25}
    assert city["top"]["new"] == ["c"] and city["top"]["gone"] == []
    assert city["distinct"]["delta"] == 1
    assert diff["columns"]["score"]["mean"] == {"before": 2.5, "after": 3.0, "delta": 0.5}
    assert compare_tables(table_preview(before), table_preview(before))["columns"] == {}
