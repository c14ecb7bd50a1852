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
