"""Tasks that return the ArtifactRef handles they received, bare and inside a dict.

A handle must be stored as a reference to the same bytes, never pickled with the manager (whose
settings hold ``[mlops] signing_key``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider import ArtifactRef


class Point:
    """A class no data format holds: stored as a (signed) pickle."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def expected_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"id": np.arange(5_000), "score": rng.random(5_000), "label": ["a", "b"] * 2_500})


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["mlops-test"])
def mlops_secret_handles():
    @task
    def make_frame() -> pd.DataFrame:
        return expected_frame()

    @task
    def make_point() -> Point:
        return Point(3, 4)

    @task
    def echo(frame: ArtifactRef[pd.DataFrame]) -> ArtifactRef[pd.DataFrame]:
        assert isinstance(frame, ArtifactRef)
        return frame

    @task
    def echo_in_dict(frame: ArtifactRef[pd.DataFrame], point: ArtifactRef[Point]) -> dict:
        assert isinstance(frame, ArtifactRef) and isinstance(point, ArtifactRef)
        return {"frame": frame, "point": point, "note": "handles"}

    @task
    def check(bare: pd.DataFrame, wrapped: dict) -> int:
        pd.testing.assert_frame_equal(bare, expected_frame())
        pd.testing.assert_frame_equal(wrapped["frame"], expected_frame())
        assert wrapped["point"] == Point(3, 4), wrapped["point"]
        assert wrapped["note"] == "handles"
        return len(bare)

    frame, point = make_frame(), make_point()
    check(echo(frame), echo_in_dict(frame, point))


mlops_secret_handles()
