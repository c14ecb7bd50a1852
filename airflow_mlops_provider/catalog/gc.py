"""What garbage collection needs from outside the store: the live set from the metadata DB, and the
configured store and retention age.

A write folder is *live* while any XCom row refers to an object inside it. Rows are matched on the
layout below the root (:func:`~airflow_mlops_provider.artifacts.layout.write_folder_of`), so a root
spelled differently on the workers still protects its folders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_mlops_provider.artifacts import codec, layout
from airflow_mlops_provider.catalog._session import state_name, with_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_mlops_provider.artifacts.store import ArtifactStore


@dataclass
class LiveFolders:
    """The write folders XCom rows refer to, with the states of the runs those rows belong to.

    :param states: each referenced folder -> its runs' states (``"unknown"`` for a row without a run).
    :param rows: XCom rows scanned.
    :param referencing: rows that refer to at least one stored artifact.
    """

    states: dict[layout.WriteFolder, set[str]] = field(default_factory=dict)
    rows: int = 0
    referencing: int = 0


def live_folders(session: Session | None = None) -> LiveFolders:
    """Scan every XCom row for artifact references (streamed: the table may be large)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    stmt = (
        select(XComModel.value, DagRun.state)
        .outerjoin(DagRun, DagRun.id == XComModel.dag_run_id)
        .execution_options(yield_per=2000)
    )

    def scan(s: Session) -> LiveFolders:
        states: dict[layout.WriteFolder, set[str]] = defaultdict(set)
        live = LiveFolders(states)
        for value, state in s.execute(stmt):
            live.rows += 1
            found = False
            for _, ref in codec.iter_references(value):
                folder = layout.write_folder_of(str(ref.get("uri", "")))
                if folder is not None:
                    states[folder].add(state_name(state) or "unknown")
                    found = True
            live.referencing += found
        live.states = dict(states)
        return live

    return with_session(session, scan)


def configured_store() -> ArtifactStore:
    """The store of this machine's ``[mlops]`` config: the one the workers write to, if it matches."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    return ArtifactManager.configured().store


def configured_retention() -> timedelta | None:
    """``[mlops] retention_days`` as an age (``None``: off).

    :raises ValueError: the option is negative.
    """
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    days = ArtifactManager.configured().settings.retention_days
    if days < 0:
        raise ValueError(f"[mlops] retention_days must be 0 (off) or a number of days, not {days}.")
    return timedelta(days=days) if days else None
