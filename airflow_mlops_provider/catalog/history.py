"""Each run's earlier runs, recorded when it starts, for lookups from workers.

Airflow 3 workers have no metadata-DB access, and the Task Execution API only finds earlier runs by
logical date, which runs triggered from the UI, the REST API or ``airflow dags trigger`` do not have.
So when a run starts, the scheduler-side listener (which has the DB) writes the ids of the runs that
happened before it, in the catalog's order (:mod:`.runs`), to
``<root>/_runs/dag_id=<dag>/run_id=<run>.json``. A task that needs "the previous successful run of
task X" (regressions, drift, freshness) reads that list and asks the API server, live, which of those
runs had X succeed. ``dag.test()`` runs never pass the "running" transition; for them the worker
falls back to asking the API server for every successful instance of X and ordering the runs itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import hookimpl

from airflow_mlops_provider.artifacts import layout
from airflow_mlops_provider.exceptions import ArtifactError, ArtifactNotFoundError

if TYPE_CHECKING:
    from airflow_mlops_provider.artifacts.store import ArtifactStore

log = logging.getLogger(__name__)

#: Bound on the worker-side fallback (runs without a recorded history): successful runs examined.
FALLBACK_LIMIT = 500


@dataclass(frozen=True)
class RunHistory:
    """The runs of ``dag_id`` that happened before ``run_id``, newest first."""

    dag_id: str
    run_id: str
    started: str | None
    earlier: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RunHistory:
        body = json.loads(data)
        return cls(body["dag_id"], body["run_id"], body.get("started"), list(body.get("earlier") or []))


def history_url(store: ArtifactStore, dag_id: str, run_id: str) -> str:
    return store.url(layout.RunHistoryPath.of(dag_id, run_id).relative)


def record(dag_run: Any, store: ArtifactStore | None = None) -> RunHistory:
    """Write the history of a run that just started (needs the metadata DB).

    ``dag_run`` is the scheduler's own object: its new start date may not be committed yet, so it is
    taken from the object. The earlier runs are read in a session of our own: ``create_session()``
    would hand out the scheduler's thread-local session and close it, detaching the scheduler's
    objects, and a failed statement in its session would abort the scheduler's transaction. (Runs
    of the same DAG started in the same scheduler loop are seen at their ``run_after``.)
    """
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.catalog import runs

    store = store or ArtifactManager.configured().store
    run = {"id": dag_run.id, "start_date": dag_run.start_date, "run_after": dag_run.run_after}
    dag_id, run_id = dag_run.dag_id, dag_run.run_id
    with runs.private_session() as own:
        earlier = runs.earlier_runs(dag_id, run, runs.HISTORY_LIMIT, session=own)
    started = run["start_date"].isoformat() if run["start_date"] else None
    history = RunHistory(dag_id, run_id, started, [r["run_id"] for r in earlier])
    store.put_bytes(history_url(store, dag_id, run_id), history.to_json())
    return history


def read(store: ArtifactStore, dag_id: str, run_id: str) -> RunHistory | None:
    """The recorded history of a run, or ``None`` when none was recorded."""
    try:
        history = RunHistory.from_json(store.get_bytes(history_url(store, dag_id, run_id)))
    except ArtifactNotFoundError:
        return None
    except (ArtifactError, ValueError, KeyError, TypeError):
        log.warning("Could not read the run history of %s / %s", dag_id, run_id, exc_info=True)
        return None
    return history if (history.dag_id, history.run_id) == (dag_id, run_id) else None


class RunHistoryListener:
    """Scheduler-side listener: records each run's history when the run starts (or restarts after
    being cleared). A failure is logged, never raised: the scheduler loop must go on, and the
    worker then falls back to its slower lookup."""

    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        try:
            record(dag_run)
        except Exception:
            log.warning("Could not record the run history of %r", dag_run, exc_info=True)


history_listener = RunHistoryListener()
