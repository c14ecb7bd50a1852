"""The read side: the only code that reads Airflow's metadata DB for the ML view, the CLI, the
notebook API and gc.

:mod:`.runs` defines the order runs happened in (previous, latest, history); :mod:`.records` reads
check, metric and task records and XCom rows; :mod:`.history` records each run's predecessors for
lookups from workers; :mod:`.task_logs` says why a task ended; :mod:`.gc` is gc's live set.
"""

from __future__ import annotations

from airflow_mlops_provider.catalog import records, runs

__all__ = ["records", "runs"]
