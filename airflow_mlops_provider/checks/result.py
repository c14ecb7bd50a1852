"""What a check returns.

A check function may return a bool, a boolean pandas Series (passes only if all true) or a
:class:`CheckResult`; the built-in checks return :class:`CheckResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_FAILING_SAMPLES = 20


@dataclass
class CheckResult:
    """Outcome of one check.

    :param passed: whether the data satisfied the check.
    :param message: one line for people (what was checked, what was found).
    :param failing: rows that failed (a DataFrame, or a list of JSON-able records); at most
        ``max_samples`` of them are stored with the check's record.
    :param failing_count: how many rows failed in total (may exceed the stored samples).
    :param details: small JSON-able facts (observed min/max, PSI per column...).
    """

    passed: bool
    message: str = ""
    failing: Any = None
    failing_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.passed)

    @staticmethod
    def combine(results: dict[str, CheckResult]) -> CheckResult:
        """One result for several named checks: passes only if all pass."""
        failed = {name: r for name, r in results.items() if not r.passed}
        message = "; ".join(f"{name}: {r.message}" for name, r in failed.items()) or "all checks passed"
        samples = next((r.failing for r in failed.values() if r.failing is not None), None)
        return CheckResult(
            passed=not failed,
            message=message,
            failing=samples,
            failing_count=sum(r.failing_count or 0 for r in failed.values()) if failed else 0,
            details={
                name: {"passed": r.passed, "message": r.message, **r.details} for name, r in results.items()
            },
        )
