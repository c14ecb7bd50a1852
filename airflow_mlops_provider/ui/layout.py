"""A layered graph layout computed on the server, so the run page needs no graph library.

Longest-path layering (a task's column is one more than its deepest upstream task). An edge that
skips columns gets a virtual point in each column it crosses, as in dagre: the points take a slot
in their column like a thin node, so the edge passes between the boxes of that column, never
through one. Barycenter sweeps (down, up, down) then order each column, virtual points included,
which removes most edge crossings of typical pipelines. Between columns an edge is a cubic curve
whose control points stay in the gap, where there are no boxes. Cycles cannot occur in DAG
snapshots; if a broken snapshot had one, the remaining tasks are placed in a last column instead of
looping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

NODE_WIDTH = 180
NODE_HEIGHT = 34
COLUMN_GAP = 70
ROW_GAP = 16
MARGIN = 12
#: Height of the slot a virtual point takes in a column (the edge runs along its middle).
VIRTUAL_HEIGHT = 6
#: Barycenter passes over the columns (down, up, down, ...).
SWEEPS = 3

Point = tuple[int, int]


@dataclass
class Layout:
    """Node boxes and edge paths, in SVG user units.

    :param width: width of the drawing, margins included.
    :param height: height of the drawing, margins included.
    :param positions: top-left corner of each node's box (all boxes are ``NODE_WIDTH`` x ``NODE_HEIGHT``).
    :param edges: ``(upstream, downstream, path)``, the path as SVG path data (``M``, ``L`` and ``C``).
    """

    width: int
    height: int
    positions: dict[str, Point] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)


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


# Items of a column are node ids (str) or virtual points, ``(edge index, column)``.
Item = str | tuple[int, int]


def _order(
    columns: dict[int, list[Item]], ups: dict[Item, list[Item]], downs: dict[Item, list[Item]]
) -> None:
    """Barycenter sweeps: sort each column by the mean position of its neighbours in the column
    before (down sweeps) or after it (up sweeps); items without such neighbours keep their place."""
    index = sorted(columns)
    position = {item: i for c in index for i, item in enumerate(columns[c])}
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        for c in index[1:] if down else index[-2::-1]:
            neighbours = ups if down else downs

            def key(item: Item, neighbours: dict[Item, list[Item]] = neighbours) -> float:
                near = neighbours[item]
                return sum(position[n] for n in near) / len(near) if near else float(position[item])

            columns[c].sort(key=key)
            position.update({item: i for i, item in enumerate(columns[c])})


def _path(points: list[Point]) -> str:
    """SVG path through ``points``: pairs are (leave a column, enter the next one); gaps between
    columns are curves with horizontal tangents, runs across a column (virtual points) are lines."""
    (x, y), rest = points[0], points[1:]
    parts = [f"M{x},{y}"]
    for i, (nx, ny) in enumerate(rest):
        if i % 2 == 0:  # across a gap
            bend = max(1, (nx - x) // 2)
            parts.append(f"C{x + bend},{y} {nx - bend},{ny} {nx},{ny}")
        else:  # across a column, along a virtual point's slot
            parts.append(f"L{nx},{ny}")
        x, y = nx, ny
    return " ".join(parts)


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> Layout:
    """Place ``nodes`` in columns by longest path and route each edge between the boxes."""
    layer = layers(nodes, edges)
    columns: dict[int, list[Item]] = defaultdict(list)
    for node in sorted(nodes):
        columns[layer[node]].append(node)
    ups: dict[Item, list[Item]] = defaultdict(list)
    downs: dict[Item, list[Item]] = defaultdict(list)
    chains: list[tuple[str, str, list[Item]]] = []
    for number, (up, down) in enumerate(edges):
        if up not in layer or down not in layer:
            continue
        chain: list[Item] = [up]
        for column in range(layer[up] + 1, layer[down]):  # a skip edge: one virtual point per column
            point = (number, column)
            columns[column].append(point)
            chain.append(point)
        chain.append(down)
        for a, b in pairwise(chain):
            ups[b].append(a)
            downs[a].append(b)
        chains.append((up, down, chain[1:-1]))
    _order(columns, ups, downs)

    def height(item: Item) -> int:
        return NODE_HEIGHT if isinstance(item, str) else VIRTUAL_HEIGHT

    extent = {c: sum(height(i) for i in items) + ROW_GAP * (len(items) - 1) for c, items in columns.items()}
    tallest = max(extent.values(), default=NODE_HEIGHT)
    top: dict[Item, int] = {}
    for c, items in columns.items():  # each column centred on the tallest one
        y = MARGIN + (tallest - extent[c]) // 2
        for item in items:
            top[item] = y
            y += height(item) + ROW_GAP
    result = Layout(
        width=MARGIN * 2 + max(1, len(columns)) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP,
        height=MARGIN * 2 + tallest,
    )
    left = {c: MARGIN + c * (NODE_WIDTH + COLUMN_GAP) for c in columns}
    for node in nodes:
        result.positions[node] = (left[layer[node]], top[node])
    for up, down, points in chains:
        route: list[Point] = [(left[layer[up]] + NODE_WIDTH, top[up] + NODE_HEIGHT // 2)]
        for point in points:
            middle = top[point] + VIRTUAL_HEIGHT // 2
            route += [(left[point[1]], middle), (left[point[1]] + NODE_WIDTH, middle)]
        route.append((left[layer[down]], top[down] + NODE_HEIGHT // 2))
        result.edges.append((up, down, _path(route)))
    return result
