"""Check and metric records: small JSON documents stored as XComs under reserved keys.

Keeping them in XCom rows (always inline: they are small) lets the API server, the UI and
``ml.metric_history`` query them from the metadata DB without touching the object store.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

CHECK_KEY = "mlops.check"
METRICS_KEY = "mlops.metrics"
TASK_KEY = "mlops.task"

Severity = Literal["error", "warning"]
SEVERITIES = ("error", "warning")


def validate_severity(severity: str, task_id: str | None = None) -> None:
    if severity not in SEVERITIES:
        where = f"Task {task_id!r}: " if task_id else ""
        raise ValueError(f"{where}unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}.")


def json_safe(value: Any) -> Any:
    """Plain JSON (no NaN, no numpy scalars, no timestamps) for records shown by the API server."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def frame_samples(frame: Any, limit: int, max_columns: int = 50) -> list[dict[str, Any]]:
    """Up to ``limit`` rows of a DataFrame (index included) as JSON records."""
    head = frame.iloc[:limit, :max_columns].reset_index()
    return json.loads(head.to_json(orient="records", date_format="iso", default_handler=str))
