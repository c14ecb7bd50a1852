"""Metric bounds and regression gates: one evaluation for ``@ml.metric`` and ``MetricCheckOperator``.

A gate with nothing to compare with (no earlier successful run, or fewer than ``min_history``)
is ``skipped`` with its reason, never a pass.
"""

from __future__ import annotations

import math
import numbers
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from airflow_mlops_provider.records import MetricEntry


@dataclass(frozen=True)
class Regression:
    """Compare a metric with its previous successful runs.

    :param window: how many previous successful runs form the baseline.
    :param max_drop: largest allowed drop below the baseline (e.g. ``0.02``); ``None`` = no limit.
    :param max_rise: largest allowed rise above the baseline (for losses and error rates).
    :param relative: ``max_drop``/``max_rise`` are fractions of the baseline (``0.02`` = 2%)
        rather than absolute differences.
    :param baseline: ``"median"``, ``"mean"``, ``"min"``, ``"max"`` or ``"last"`` of the window.
    :param min_history: with fewer previous values than this the gate is ``skipped`` (recorded, with
        the reason), not passed.
    """

    window: int = 5
    max_drop: float | None = None
    max_rise: float | None = None
    relative: bool = True
    baseline: str = "median"
    min_history: int = 1

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_history < 1 or self.min_history > self.window:
            raise ValueError("Regression needs window >= 1 and 1 <= min_history <= window.")
        if self.max_drop is None and self.max_rise is None:
            raise ValueError("Regression needs max_drop or max_rise (or both).")
        for name in ("max_drop", "max_rise"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, numbers.Real) or value < 0):
                raise ValueError(f"Regression {name} must be a number >= 0, got {value!r}.")
        if self.baseline not in ("median", "mean", "min", "max", "last"):
            raise ValueError(
                f"Regression baseline must be median, mean, min, max or last, not {self.baseline!r}."
            )

    def evaluate(self, value: float, history: list[float]) -> dict[str, Any]:
        """The gate's record: ``status`` ok / failed / skipped (with ``skipped``: the reason)."""
        record: dict[str, Any] = {**asdict(self), "history": history}
        if len(history) < self.min_history:
            reason = (
                f"no earlier successful run to compare with (min_history={self.min_history})"
                if not history
                else f"only {len(history)} earlier value(s), min_history={self.min_history}"
            )
            return record | {"status": "skipped", "passed": None, "skipped": reason}
        pick = {
            "median": statistics.median,
            "mean": statistics.fmean,
            "min": min,
            "max": max,
            "last": lambda h: h[0],
        }[self.baseline]
        base = float(pick(history))
        change = value - base
        scale = abs(base) if self.relative else 1.0
        relative_change = (
            change / scale if scale else (0.0 if change == 0 else math.copysign(math.inf, change))
        )
        drop_bad = self.max_drop is not None and -relative_change > self.max_drop
        rise_bad = self.max_rise is not None and relative_change > self.max_rise
        passed = not (drop_bad or rise_bad)
        return record | {
            "status": "ok" if passed else "failed",
            "baseline_value": base,
            "change": change,
            "relative_change": relative_change if math.isfinite(relative_change) else None,
            "passed": passed,
        }


def evaluate_metric(
    name: str,
    value: float,
    *,
    lower: float | None = None,
    upper: float | None = None,
    regression: Regression | None = None,
    history: list[float] | None = None,
    severity: str = "warning",
) -> MetricEntry:
    """Judge ``value``: a breach makes it ``failed`` (severity error) or ``warning``; otherwise a
    regression gate without history makes it ``skipped``; otherwise ``ok``."""
    outcome = MetricEntry(name, value, lower, upper)
    if lower is not None and value < lower:
        outcome.breaches.append(f"{name}={value:g} is below the lower bound {lower:g}")
    if upper is not None and value > upper:
        outcome.breaches.append(f"{name}={value:g} is above the upper bound {upper:g}")
    if regression is not None:
        reg = outcome.regression = regression.evaluate(value, list(history or []))
        if reg["status"] == "failed":
            outcome.breaches.append(
                f"{name}={value:g} regressed from the {reg['baseline']} {reg['baseline_value']:g} "
                f"of the last {len(reg['history'])} successful run(s)"
            )
        outcome.skipped = reg.get("skipped")
    if outcome.breaches:
        outcome.status = "failed" if severity == "error" else "warning"
    elif outcome.skipped:
        outcome.status = "skipped"
    return outcome
