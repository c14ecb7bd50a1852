"""A layered graph layout computed on the server, so the run page needs no graph library.

Longest-path layering (a task's column is one more than its deepest upstream task), then one
barycenter pass to order each column by the positions of the upstream tasks, which removes most
edge crossings of typical pipelines. Cycles cannot occur in DAG snapshots; if a broken snapshot
had one, the remaining tasks are placed in a last column instead of looping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

NODE_WIDTH = 180
NODE_HEIGHT = 34
COLUMN_GAP = 70
ROW_GAP = 16
MARGIN = 12


@dataclass
class Layout:
    """Node boxes (``x``, ``y`` of the top-left corner) and edge paths, in SVG user units."""

    width: int
    height: int
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (upstream, downstream, path)


def layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Column of each node: the length of the longest path from a root to it (Kahn's order)."""
    known = set(nodes)
    downstream: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(nodes, 0)
    for up, down in edges:
        if up in known and down in known:
            downstream[up].append(down)
            indegree[down] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if indegree[n] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for child in downstream[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if seen < len(nodes):  # a cycle: park what is left after the deepest column
        last = max(layer.values(), default=0) + 1
        for node, degree in indegree.items():
            if degree > 0:
                layer[node] = last
    return layer


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> Layout:
    """Place ``nodes`` in columns by longest path and route each edge as a cubic Bézier curve."""
    layer = layers(nodes, edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in sorted(nodes):
        columns[layer[node]].append(node)
    upstream: dict[str, list[str]] = defaultdict(list)
    for up, down in edges:
        if up in layer and down in layer:
            upstream[down].append(up)
    row: dict[str, float] = {}
    for index in sorted(columns):
        column = columns[index]
        if index > 0:  # barycenter of upstream rows; ties keep alphabetical order
            column.sort(
                key=lambda n: sum(row[u] for u in upstream[n]) / len(upstream[n]) if upstream[n] else 0.0
            )
        for position, node in enumerate(column):
            row[node] = position
    result = Layout(
        width=MARGIN * 2 + max(1, len(columns)) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP,
        height=MARGIN * 2
        + max((len(c) for c in columns.values()), default=1) * (NODE_HEIGHT + ROW_GAP)
        - ROW_GAP,
    )
    for node in nodes:
        result.positions[node] = (
            MARGIN + layer[node] * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + int(row[node]) * (NODE_HEIGHT + ROW_GAP),
        )
    for up, down in edges:
        if up not in result.positions or down not in result.positions:
            continue
        (x1, y1), (x2, y2) = result.positions[up], result.positions[down]
        sx, sy = x1 + NODE_WIDTH, y1 + NODE_HEIGHT // 2
        ex, ey = x2, y2 + NODE_HEIGHT // 2
        bend = max(20, (ex - sx) // 2)
        result.edges.append((up, down, f"M{sx},{sy} C{sx + bend},{sy} {ex - bend},{ey} {ex},{ey}"))
    return result
