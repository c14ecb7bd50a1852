"""Deterministic values shared by the test DAGs (which return them) and the tests (which compare)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def frame() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "f": [1.5, None, 3.25, -0.0],
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
            "s": ["a", None, "c", "é<script>"],
            "cat": pd.Categorical(["x", "y", "x", None], categories=["x", "y", "z"]),
            "ts": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01"]).tz_localize(
                "Europe/Paris"
            ),
            "b": [True, False, True, False],
        },
        index=pd.Index([10, 20, 30, 40], name="customer_id"),
    )
    return df


def training_data(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return x, y


def plain_values() -> dict[str, object]:
    return {
        "small_dict": {"a": 1, "b": [1, 2, 3], "c": None},
        "nested": {"t": (1, "two", 3.0), "s": {1, 2, 3}, "f": frozenset({"x"}), "nan": float("nan")},
        "big_list": list(range(20_000)),
        "text": "s3://bucket/not/a/reference",
        "looks_like_ref": {"__mlops__": "artifact", "uri": "s3://evil/x", "v": 1},
        "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        "none": None,
        "bytes": b"\x00\x01binary\xff",
    }
