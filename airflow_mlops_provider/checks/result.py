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
    :param message: one line for people (what was checked, what was found); for a skipped check,
        why it could not be judged.
    :param failing: rows that failed (a DataFrame, or a list of JSON-able records); at most
        ``max_samples`` of them are stored with the check's record.
    :param failing_count: how many rows failed in total (may exceed the stored samples).
    :param details: small JSON-able facts (observed min/max, PSI per column...).
    :param skipped: the check could not be judged (e.g. a drift check without a reference run).
        It is recorded with status ``skipped``, never as a pass; it does not fail the task, so
        ``bool(result)`` is true. Build one with :meth:`skip`.
    """

    passed: bool
    message: str = ""
    failing: Any = None
    failing_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False

    def __post_init__(self) -> None:
        if self.skipped and not self.passed:
            raise ValueError("A skipped CheckResult cannot also have failed: use passed=True or skip().")

    def __bool__(self) -> bool:
        return bool(self.passed)

    @property
    def status(self) -> str:
        """``"skipped"``, ``"ok"`` or ``"failed"`` (the severity turns a failure into a warning)."""
        if self.skipped:
            return "skipped"
        return "ok" if self.passed else "failed"

    @classmethod
    def skip(cls, reason: str, details: dict[str, Any] | None = None) -> CheckResult:
        """A check that could not be judged, with the reason (recorded as status ``skipped``)."""
        if not reason or not str(reason).strip():
            raise ValueError("CheckResult.skip needs a reason: say why the check could not be judged.")
        return cls(passed=True, message=str(reason), details=dict(details or {}), skipped=True)

    @staticmethod
    def combine(results: dict[str, CheckResult]) -> CheckResult:
        """One result for several named checks.

        Fails if any member failed; skipped if every member was skipped (or there is none);
        otherwise passes. Skipped members never count as passes: the message names them and their
        entry in ``details`` (``{name: {"passed", "status", "message", ...}}``) has status
        ``skipped``.
        """
        if not results:
            return CheckResult.skip("no checks were given")
        failed = {name: r for name, r in results.items() if not r.passed}
        skipped = {name: r for name, r in results.items() if r.skipped}
        details: dict[str, Any] = {
            name: {"passed": None if r.skipped else r.passed, "status": r.status, "message": r.message}
            | r.details
            for name, r in results.items()
        }
        skipped_text = "; ".join(f"{name} skipped: {r.message}" for name, r in skipped.items())
        if failed:
            message = "; ".join(f"{name}: {r.message}" for name, r in failed.items())
            return CheckResult(
                passed=False,
                message=f"{message}; {skipped_text}" if skipped_text else message,
                failing=next((r.failing for r in failed.values() if r.failing is not None), None),
                failing_count=sum(r.failing_count or 0 for r in failed.values()),
                details=details,
            )
        if len(skipped) == len(results):
            return CheckResult(passed=True, message=skipped_text, details=details, skipped=True)
        message = f"{len(results) - len(skipped)} of {len(results)} checks passed"
        return CheckResult(
            passed=True,
            message=f"{message}; {skipped_text}" if skipped_text else "all checks passed",
            failing_count=0,
            details=details,
        )
