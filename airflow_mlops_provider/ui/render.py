"""The Jinja2 environment both front ends render with (FastAPI app and Flask-AppBuilder view).

Autoescaping is always on: previews hold user data (a DataFrame cell may be ``<script>``), and the
templates never mark stored content as safe. Chart data goes into pages through ``tojson``, which
escapes ``<``, ``>``, ``&`` and quotes, so it cannot close the ``<script>`` element it sits in.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from airflow_mlops_provider.ui.service import q

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
#: Files served from ``static/`` (an allow-list: nothing else under the package is reachable).
STATIC_FILES = {
    "uPlot.iife.min.js": "application/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
    "mlops.css": "text/css",
    "mlops.js": "application/javascript",
}


def _dt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _bars(counts: Any, width: float = 100, height: float = 24) -> str:
    """SVG path data of a histogram's bars (one path per chart: a 200-artifact run page draws about
    600 histograms, and one ``<rect>`` per bin made up a third of its HTML)."""
    if not isinstance(counts, list) or not counts:
        return ""
    numbers = [c if isinstance(c, (int, float)) and math.isfinite(c) and c > 0 else 0 for c in counts]
    top, step = max(numbers), width / len(numbers)
    if not top:
        return ""
    parts = []
    for i, count in enumerate(numbers):
        if count:
            bar = height * count / top
            parts.append(f"M{i * step:.4g},{height}v{-bar:.3g}h{step - 1:.3g}v{bar:.3g}z")
    return "".join(parts)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(q=q, dt=_dt, num=_num, size=_size, bars=_bars)
    return env


def render(template: str, base: str, **context: Any) -> str:
    """Render ``template``; ``base`` is the URL prefix of this front end's pages (no trailing ``/``)."""
    return environment().get_template(template).render(base=base.rstrip("/"), **context)
