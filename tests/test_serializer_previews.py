"""A user serializer's preview is shown by the ML view and by ``airflow mlops artifacts show`` alike.

The DAG below registers its own type and serializer with ``@register_serializer``, as a user's DAG
file would; both faces render the ``<n>.preview.json`` the serializer wrote, without knowing it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from airflow_runner import run_dag
from conftest import DAGS_DIR, requires_provider_cli

if TYPE_CHECKING:
    from collections.abc import Iterator

DAG_ID = "mlops_custom_serializer"
DAG_SOURCE = """
from __future__ import annotations

import json

import pendulum
from airflow.sdk import dag, task

from airflow_mlops_provider import Serializer, register_serializer


class Histogram:
    def __init__(self, edges, counts):
        self.edges, self.counts = list(edges), list(counts)


@register_serializer
class HistogramSerializer(Serializer):
    name = "test.histogram"
    types = (Histogram,)
    format = "histogram.json"
    extension = ".hist.json"

    def write(self, value, sink, settings):
        sink.write(json.dumps({"edges": value.edges, "counts": value.counts}).encode())
        return {"bins": len(value.counts)}

    def read(self, data, reference, settings):
        body = json.loads(bytes(data))
        return Histogram(body["edges"], body["counts"])

    def describe(self, value_type, details):
        return f"Histogram of {details['bins']} bins"

    def preview(self, value, details):
        return {"kind": "histogram", "edges": value.edges, "counts": value.counts, "total": sum(value.counts)}


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def mlops_custom_serializer():
    @task
    def histogram() -> Histogram:
        return Histogram([0, 10, 20, 30], [4, 7, 1])

    @task
    def total(h: Histogram) -> int:
        return sum(h.counts)

    total(histogram())


mlops_custom_serializer()
"""
EXPECTED = {"kind": "histogram", "edges": [0, 10, 20, 30], "counts": [4, 7, 1], "total": 12}


@pytest.fixture(scope="module")
def run() -> Iterator[Any]:
    path = DAGS_DIR / f"{DAG_ID}.py"
    path.write_text(DAG_SOURCE)
    try:
        result = run_dag(DAG_ID)
        assert result.state == "success", result.task_states
        yield result
    finally:
        path.unlink(missing_ok=True)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``airflow ...`` through Airflow's own CLI parser, in this process: (exit code, stdout, stderr)."""
    from airflow.cli import cli_parser

    capsys.readouterr()
    namespace = cli_parser.get_parser().parse_args(list(args))
    try:
        namespace.func(namespace)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_value_round_trips_through_the_user_serializer(run: Any) -> None:
    row = run.row("histogram")
    assert (row["serializer"], row["format"], row["summary"]) == (
        "test.histogram",
        "histogram.json",
        "Histogram of 3 bins",
    )
    assert run.row("total") == 12


def test_the_ml_view_shows_the_user_serializers_preview(run: Any) -> None:
    from airflow_mlops_provider.ui.service import task_page

    (artifact,) = task_page(DAG_ID, run.run_id, "histogram")["artifacts"]
    assert artifact["serializer"] == "test.histogram"
    assert artifact["preview"] == EXPECTED and artifact["preview_error"] is None


@requires_provider_cli
def test_artifacts_show_renders_the_same_preview(run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "mlops", "artifacts", "show", DAG_ID, run.run_id, "histogram")
    assert code == 0, err
    assert "Format:     histogram.json v1 (serializer test.histogram" in out
    preview = out.split("Preview (histogram):\n", 1)[1].splitlines()
    assert preview == ["  edges: [0, 10, 20, 30]", "  counts: [4, 7, 1]", "  total: 12"]

    code, out, err = cli(
        capsys, "mlops", "artifacts", "show", run.row("histogram")["uri"], "--output", "json"
    )
    assert code == 0, err
    assert json.loads(out)["preview"] == EXPECTED
