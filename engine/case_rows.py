"""The rows a task command reads and writes, as plain values: its case and the case's open tasks.

Completing or returning a task is the command officials run most. It reads the case row with all the
case's open-task rows in one Core statement, and writes the case back with one UPDATE of the columns
it changed, ``WHERE id = ? AND revision = ?``: the check the ORM's version counter makes for the
other commands. Through the ORM (loading an ``Instance``, writing it in the unit of work), reading and
writing the case row took 914 µs per command against 576 µs this way (bench/README.md). The other
commands (start, claim, transfer, timers, termination) keep the ORM ``Instance``: they run less often,
and some add rows the ORM orders for them.
"""

from __future__ import annotations

import uuid
from collections import namedtuple
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from engine.errors import CASE_CHANGED, Conflict
from engine.models import Instance, OpenTask

_CASE = Instance.__table__
_OPEN_TASK = OpenTask.__table__
_LARGE_COLUMNS = ("state", "result")  # tens of KB: left out when the case's workflow is live in this process

# An open task as a command reads it or adds it (attribute access by column name).
OpenTaskRow = namedtuple("OpenTaskRow", [column.name for column in _OPEN_TASK.columns])


class CaseRow:
    """An ``instance`` row's columns as attributes; ``state`` and ``result`` are None when not read.

    A command sets attributes as it would on an ``Instance``; ``write_case_row`` writes those that changed.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        for name in _LARGE_COLUMNS:
            setattr(self, name, None)  # unless read with the row
        for name, value in values.items():
            setattr(self, name, value)
        self._as_read = dict(values)

    def changes(self) -> dict[str, Any]:
        """The columns set to a new value since the row was read or written (the revision aside)."""
        return {
            column.name: getattr(self, column.name)
            for column in _CASE.columns
            if column.name != "revision" and getattr(self, column.name) != self._as_read.get(column.name)
        }


def _case_and_open_rows(with_large_columns: bool) -> tuple[Select, list[str]]:
    case_columns = [c for c in _CASE.columns if with_large_columns or c.name not in _LARGE_COLUMNS]
    case_of_task = select(_OPEN_TASK.c.instance_id).where(_OPEN_TASK.c.id == bindparam("task_id")).scalar_subquery()
    statement = (
        select(*case_columns, *_OPEN_TASK.columns)
        .join_from(_CASE, _OPEN_TASK, _OPEN_TASK.c.instance_id == _CASE.c.id)
        .where(_CASE.c.id == case_of_task)
        .order_by(_OPEN_TASK.c.created_at)
    )
    return statement, [c.name for c in case_columns]


# Built once, so SQLAlchemy reuses their compiled form; keyed by whether the state is read with the rows.
_CASE_AND_OPEN_ROWS = {with_state: _case_and_open_rows(with_state) for with_state in (True, False)}
_STATE_OF_CASE = select(_CASE.c.state).where(_CASE.c.id == bindparam("case_id"))


def select_case_of_task(
    session: Session, task_id: uuid.UUID, with_state: bool = True
) -> tuple[CaseRow | None, list[Any]]:
    """The case of the open task ``task_id`` and every open-task row of it, oldest first (None and no rows
    if the task is not open). ``with_state=False`` skips the state, for a case whose workflow is live:
    it is read by ``case_state`` should the case have left the cache meanwhile."""
    statement, names = _CASE_AND_OPEN_ROWS[with_state]
    found = session.connection().execute(statement, {"task_id": task_id}).all()
    if not found:
        return None, []
    width = len(names)
    return CaseRow(dict(zip(names, found[0][:width], strict=True))), [OpenTaskRow(*row[width:]) for row in found]


def case_state(session: Session, case: Instance | CaseRow) -> str:
    """The serialized workflow of ``case``, read now if it was not read with the row."""
    if case.state is None:
        case.state = session.connection().execute(_STATE_OF_CASE, {"case_id": case.id}).scalar_one()
        case._as_read["state"] = case.state
    return case.state


@lru_cache(maxsize=16)
def _update_case(columns: tuple[str, ...]) -> Update:
    new_values = {name: bindparam(f"new_{name}", type_=_CASE.c[name].type) for name in columns}
    at_revision_read = (
        _CASE.c.id == bindparam("case_id", type_=_CASE.c.id.type),
        _CASE.c.revision == bindparam("read_revision"),
    )
    return update(_CASE).where(*at_revision_read).values({**new_values, "revision": bindparam("new_revision")})


def write_case_row(session: Session, case: CaseRow) -> None:
    """Write what the command changed, at the revision it read; Conflict if another command wrote first."""
    changes = case.changes()
    params = {f"new_{name}": value for name, value in changes.items()}
    params.update(case_id=case.id, read_revision=case.revision, new_revision=case.revision + 1)
    if session.connection().execute(_update_case(tuple(changes)), params).rowcount != 1:
        raise Conflict(CASE_CHANGED)
    case.revision += 1
    case._as_read.update(changes)
    # An ORM copy of the row that this session loaded earlier is now out of date.
    loaded = session.identity_map.get(identity_key(Instance, case.id))
    if loaded is not None:
        session.expire(loaded)
