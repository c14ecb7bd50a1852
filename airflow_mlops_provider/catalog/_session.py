"""One session scope for every metadata-DB read of the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

T = TypeVar("T")


def with_session(session: Session | None, fn: Callable[[Any], T]) -> T:
    """``fn(session)`` in the caller's session, or in a new one that is closed afterwards."""
    if session is not None:
        return fn(session)
    from airflow.utils.session import create_session

    with create_session() as new:
        return fn(new)


def state_name(value: Any) -> str | None:
    """An Airflow state enum (or plain string) as its value."""
    return None if value is None else str(getattr(value, "value", value))
