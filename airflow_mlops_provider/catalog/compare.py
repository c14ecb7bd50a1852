"""Two runs of a DAG side by side: what the ML view's compare page and ``airflow mlops diff`` show.

Everything comes from what was recorded at write time: the structure snapshots, the ``mlops.*``
records of checks and metrics, and the stored previews of table artifacts (row count, schema and
column statistics). No artifact is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.artifacts.previews import compare_tables
from airflow_mlops_provider.catalog import records
from airflow_mlops_provider.records import CHECK_KEY, METRICS_KEY, CheckRecord, MetricRecord

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.catalog.records import XComEntry


def _where(row: XComEntry) -> str:
    return row.task_id if row.map_index < 0 else f"{row.task_id}[{row.map_index}]"


@dataclass
class RunComparison:
    """What changed from ``run_a`` to ``run_b`` (each list holds dicts ready for JSON).

    :param metrics: per metric (``task``, ``name``): values, delta and statuses of both runs.
    :param checks: per check whose status differs (``ok``, ``warning``, ``failed``, ``skipped``):
        ``task``, ``name``, both statuses, severity and the later message.
    :param tables: per table artifact in both runs (``task``, ``key``, ``path``):
        :func:`~airflow_mlops_provider.artifacts.previews.compare_tables` of their previews.
    :param artifacts_added: / :param artifacts_removed: artifacts in only one of the runs.
    """

    dag_id: str
    run_a: str
    run_b: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    artifacts_added: list[str] = field(default_factory=list)
    artifacts_removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "checks": self.checks,
            "tables": self.tables,
            "artifacts_added": self.artifacts_added,
            "artifacts_removed": self.artifacts_removed,
        }


def _metrics(rows: list[XComEntry]) -> dict[tuple[str, str], Any]:
    return {
        (_where(row), entry.name): entry
        for row in rows
        if row.key == METRICS_KEY
        for entry in MetricRecord.from_row(row.value).metrics
    }


def _checks(rows: list[XComEntry]) -> dict[str, CheckRecord]:
    return {_where(row): CheckRecord.from_row(row.value) for row in rows if row.key == CHECK_KEY}


def _delta(a: Any, b: Any) -> float | None:
    numbers = [x for x in (a, b) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    return b - a if len(numbers) == 2 else None


def _tables(rows: list[XComEntry], manager: ArtifactManager) -> dict[str, dict[str, Any] | None]:
    """Table previews by ``task[map] key path``; ``None`` for artifacts that are not tables."""
    from airflow_mlops_provider.catalog.artifacts import artifact_entries

    found: dict[str, dict[str, Any] | None] = {}
    for entry in artifact_entries(rows, manager, previews=True, raise_store_errors=False):
        if entry.inline:
            continue
        label = f"{_where(entry.xcom)} {entry.xcom.key}{entry.path}"
        preview = entry.preview if isinstance(entry.preview, dict) else None
        found[label] = preview if preview is not None and preview.get("kind") == "table" else None
    return found


def compare_runs(dag_id: str, run_a: str, run_b: str, manager: ArtifactManager) -> RunComparison:
    """Metric deltas, check outcome changes and table statistic changes from ``run_a`` to ``run_b``
    (both run ids of ``dag_id``; resolve ``latest`` / ``previous`` before)."""
    rows_a = records.xcoms(dag_id, run_a)
    rows_b = records.xcoms(dag_id, run_b)
    result = RunComparison(dag_id, run_a, run_b)

    metrics_a, metrics_b = _metrics(rows_a), _metrics(rows_b)
    for task, name in sorted(metrics_a.keys() | metrics_b.keys()):
        a, b = metrics_a.get((task, name)), metrics_b.get((task, name))
        before, after = (a.value if a else None), (b.value if b else None)
        result.metrics.append(
            {
                "task": task,
                "name": name,
                "before": before,
                "after": after,
                "delta": _delta(before, after),
                "status_before": a.status if a else None,
                "status_after": b.status if b else None,
            }
        )

    checks_a, checks_b = _checks(rows_a), _checks(rows_b)
    for task in sorted(checks_a.keys() | checks_b.keys()):
        a, b = checks_a.get(task), checks_b.get(task)
        latest = b or a
        if latest is not None and (a.status if a else None) != (b.status if b else None):
            result.checks.append(
                {
                    "task": task,
                    "name": latest.name,
                    "before": a.status if a else None,
                    "after": b.status if b else None,
                    "severity": latest.severity,
                    "message": b.message if b else None,
                }
            )

    tables_a, tables_b = _tables(rows_a, manager), _tables(rows_b, manager)
    result.artifacts_added = sorted(tables_b.keys() - tables_a.keys())
    result.artifacts_removed = sorted(tables_a.keys() - tables_b.keys())
    for label in sorted(tables_a.keys() & tables_b.keys()):
        a, b = tables_a[label], tables_b[label]
        if a is not None and b is not None:
            result.tables.append({"artifact": label, **compare_tables(a, b)})
    return result
