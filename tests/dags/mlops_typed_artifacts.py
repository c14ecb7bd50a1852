"""Every type of the typed-artifact table, passed between tasks with no serialization code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
import polars as pl
import pyarrow as pa
from airflow.sdk import dag, task
from mlops_test_values import frame, plain_values, training_data
from PIL import Image
from sklearn.linear_model import LogisticRegression


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_typed_artifacts():
    @task
    def make_frame() -> pd.DataFrame:
        return frame()

    @task
    def make_series() -> pd.Series:
        return frame()["f"].rename("score")

    @task
    def make_polars() -> pl.DataFrame:
        return pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]})

    @task
    def make_arrow() -> pa.Table:
        return pa.table({"x": [1, 2, 3], "y": ["p", "q", "r"]})

    @task
    def make_array() -> np.ndarray:
        return np.arange(24, dtype=np.float32).reshape(2, 3, 4)

    @task
    def make_object_array() -> np.ndarray:
        return np.array([1, "two", None], dtype=object)

    @task
    def make_image() -> Image.Image:
        image = Image.new("RGB", (8, 6), (10, 20, 30))
        image.putpixel((1, 1), (255, 0, 0))
        return image

    @task
    def train() -> LogisticRegression:
        x, y = training_data()
        return LogisticRegression(C=0.5).fit(x, y)

    @task(multiple_outputs=True)
    def make_plain() -> dict[str, object]:
        return plain_values()

    @task
    def check_all(
        df,
        series,
        pldf,
        table,
        arr,
        objarr,
        image,
        model,
        small_dict,
        nested,
        big_list,
        text,
        looks_like_ref,
        when,
        none,
        raw,
    ):
        expected = frame()
        pd.testing.assert_frame_equal(df, expected)
        assert series.name == "score" and series.dtype == expected["f"].dtype
        assert pldf.equals(pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]}))
        assert table.equals(pa.table({"x": [1, 2, 3], "y": ["p", "q", "r"]}))
        assert arr.dtype == np.float32 and arr.shape == (2, 3, 4) and arr[1, 2, 3] == 23
        assert objarr.dtype == object and list(objarr) == [1, "two", None]
        assert image.size == (8, 6) and image.getpixel((1, 1)) == (255, 0, 0)
        x, y = training_data()
        assert model.C == 0.5 and (model.predict(x) == y).mean() > 0.9
        values = plain_values()
        assert small_dict == values["small_dict"]
        assert nested["t"] == (1, "two", 3.0) and isinstance(nested["t"], tuple)
        assert nested["s"] == {1, 2, 3} and isinstance(nested["f"], frozenset)
        assert np.isnan(nested["nan"])
        assert big_list == values["big_list"]
        assert text == values["text"]
        assert looks_like_ref == values["looks_like_ref"]
        assert when == values["when"]
        assert none is None
        assert raw == values["bytes"]
        return "all types survived"

    plain = make_plain()
    check_all(
        make_frame(),
        make_series(),
        make_polars(),
        make_arrow(),
        make_array(),
        make_object_array(),
        make_image(),
        train(),
        plain["small_dict"],
        plain["nested"],
        plain["big_list"],
        plain["text"],
        plain["looks_like_ref"],
        plain["when"],
        plain["none"],
        plain["bytes"],
    )


mlops_typed_artifacts()
