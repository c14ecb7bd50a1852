"""The run graph's layout: edges are drawn between node boxes, never through one, and the drawing
holds every box. The paths are read back from the SVG path data the run page draws."""

from __future__ import annotations

import re

import pytest

from airflow_mlops_provider.ui.layout import MARGIN, NODE_HEIGHT, NODE_WIDTH, layout

Point = tuple[float, float]


def sample_path(path: str, steps: int = 40) -> list[Point]:
    """Points along SVG path data made of ``M``, ``L`` and cubic ``C`` commands."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]
    commands = re.findall(r"[MLC]", path)
    points: list[Point] = []
    position: Point = (0.0, 0.0)
    for command in commands:
        if command == "M":
            position = (numbers.pop(0), numbers.pop(0))
            points.append(position)
        elif command == "L":
            end = (numbers.pop(0), numbers.pop(0))
            points += [
                (
                    position[0] + (end[0] - position[0]) * t / steps,
                    position[1] + (end[1] - position[1]) * t / steps,
                )
                for t in range(1, steps + 1)
            ]
            position = end
        else:
            c1, c2, end = [(numbers.pop(0), numbers.pop(0)) for _ in range(3)]
            for step in range(1, steps + 1):
                t = step / steps
                a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
                points.append(
                    (
                        a * position[0] + b * c1[0] + c * c2[0] + d * end[0],
                        a * position[1] + b * c1[1] + c * c2[1] + d * end[1],
                    )
                )
            position = end
    assert not numbers, f"unparsed numbers in {path!r}"
    return points


def crossings(nodes: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Every (edge, node) pair whose drawn edge enters the box of a node that is not its end."""
    placed = layout(nodes, edges)
    found = []
    for up, down, path in placed.edges:
        points = sample_path(path)
        for node, (x, y) in placed.positions.items():
            if node in (up, down):
                continue
            inside = [p for p in points if x < p[0] < x + NODE_WIDTH and y < p[1] < y + NODE_HEIGHT]
            if inside:
                found.append(f"{up} -> {down} crosses {node} at {inside[0]}")
    return found


def test_an_edge_that_skips_a_column_goes_around_the_node_in_it() -> None:
    """``extract -> report`` skips the column of ``train``: a straight edge would run through it."""
    nodes = ["extract", "train", "report"]
    edges = [("extract", "train"), ("train", "report"), ("extract", "report")]
    assert crossings(nodes, edges) == []
    placed = layout(nodes, edges)
    skip = next(p for u, d, p in placed.edges if (u, d) == ("extract", "report"))
    train_x = placed.positions["train"][0]
    assert any(train_x <= x <= train_x + NODE_WIDTH for x, _ in sample_path(skip)), (
        "edge did not pass column 1"
    )


@pytest.mark.parametrize("width", [3, 10])
def test_no_edge_crosses_a_node_in_a_layered_pipeline_with_many_skip_edges(width: int) -> None:
    """Layers of ``width`` tasks, each fed by the task above it, its neighbour, and a task two and
    three layers up (the shape of the 200-task benchmark DAG, with skips added)."""
    ids = [f"l{i // width}_t{i % width}" for i in range(width * 6)]
    edges = [(ids[i - width], ids[i]) for i in range(width, len(ids))]
    edges += [(ids[i - width - 1], ids[i]) for i in range(width + 1, len(ids)) if i % width]
    edges += [(ids[i - 2 * width], ids[i]) for i in range(2 * width, len(ids), 2)]
    edges += [(ids[i - 3 * width + 1], ids[i]) for i in range(3 * width, len(ids), 3)]
    assert crossings(ids, edges) == []


def test_the_drawing_holds_every_box_and_every_edge() -> None:
    nodes = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("a", "e"), ("e", "d")]
    placed = layout(nodes, edges)
    for x, y in placed.positions.values():
        assert x >= MARGIN and x + NODE_WIDTH <= placed.width - MARGIN
        assert y >= MARGIN and y + NODE_HEIGHT <= placed.height - MARGIN
    for _, _, path in placed.edges:
        for x, y in sample_path(path):
            assert 0 <= x <= placed.width and 0 <= y <= placed.height, path
    assert len({p for p in placed.positions.values()}) == len(nodes), "two boxes on one place"
