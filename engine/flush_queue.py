"""Statements a command queues to run right after its next flush.

A command writes its case row with a revision check — through the ORM (its version counter), or for a
task command as one UPDATE (engine/case_rows.py) — and the rest — history events, open tasks,
notifications — as prebuilt Core statements, which cost a fraction of the ORM's unit of work. Those rows
refer to the case row, which a new case only gets at the flush (and flushing it earlier would count its
revision twice), so they wait for it in ``session.info``. They run in the flush's ``after_flush`` hook,
inside the same transaction, or when a command calls ``write_queued`` after writing its case row itself.
A rollback, a savepoint's included, drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Executable, event
from sqlalchemy.orm import Session

_QUEUE_KEY = "demozone.after_flush"


def write_at_flush(session: Session, statement: Executable, values: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Run ``statement`` with ``values`` (a list of them: once for each) right after the session's next flush."""
    run_at_flush(session, lambda connection: connection.execute(statement, values))


def run_at_flush(session: Session, write: Callable[[Connection], object]) -> None:
    """Call ``write`` with the session's connection right after its next flush (for writes that depend on
    what an earlier one wrote)."""
    session.info.setdefault(_QUEUE_KEY, []).append(write)


def write_queued(session: Session) -> None:
    """Run the statements queued so far, now."""
    queued = session.info.pop(_QUEUE_KEY, None)
    if queued:
        connection = session.connection()
        for write in queued:
            write(connection)


@event.listens_for(Session, "after_flush")
def _write_queued_after_flush(session: Session, _flush_context: Any) -> None:
    write_queued(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_queued(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_QUEUE_KEY, None)
